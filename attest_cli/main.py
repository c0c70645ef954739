"""`attest`: the command line for CI pipelines, a thin client over Attest's REST API.

Commands: gate, register-dataset, register-model-version, evaluate, record-deployment,
verify-log (docs/cli.md). The URL and token come from --url/--token or ATTEST_URL/ATTEST_TOKEN.

Exit codes of `attest gate` (CONTRACT.md): 0 allowed, 1 denied, 2 could not ask. The other
commands: 0 done, 1 a negative answer (evaluation failed, log broken), 2 could not do it.
Every error is one line on stderr, never a traceback. Only the standard library is used, so
the CLI works in any CI image with Python.
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

from attest_cli.client import AttestClient, AttestError, sha256_file

EXIT_ALLOWED, EXIT_DENIED, EXIT_ERROR = 0, 1, 2
EXIT_OK, EXIT_NEGATIVE = 0, 1


class CliError(Exception):
    """Anything that stops the CLI from getting an answer: printed as one line, exit 2."""


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, every 25 % in a CI log."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_step: object = -1
        self.started = time.monotonic()

    def bytes(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        fraction = done / total if total else 1.0
        width = 30
        bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
        rate = done / max(time.monotonic() - self.started, 1e-6) / 2**20
        line = f"{self.label} [{bar}] {fraction:6.1%} {done / 2**20:.1f}/{total / 2**20:.1f} MiB {rate:.1f} MiB/s"
        self._emit(line, int(fraction * 4), done >= total)

    def percent(self, percent: int, status: str) -> None:
        if not self.enabled:
            return
        width = 30
        bar = "#" * (percent * width // 100) + "-" * (width - percent * width // 100)
        self._emit(f"{self.label} [{bar}] {percent:3d}% {status}", (percent // 25, status),
                   status in ("succeeded", "failed"))

    def _emit(self, line: str, step: object, final: bool) -> None:
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
            sys.stderr.flush()
        elif step != self.last_step or final:
            print(line, file=sys.stderr, flush=True)
        self.last_step = step


def _client(args) -> AttestClient:
    return AttestClient(args.url, args.token, timeout=args.timeout)


def _sha256(path: str, show: bool) -> str:
    progress = Progress(f"sha256 {os.path.basename(path)}", show)
    try:
        return sha256_file(path, progress.bytes)
    except AttestError as exc:
        raise CliError(exc.message) from exc


class _NonFinite:
    """Stands for NaN, Infinity, -Infinity or 1e999 in a parsed document until its place is known."""

    def __init__(self, token: str):
        self.token = token


def _number(token: str) -> float | _NonFinite:
    value = float(token)
    return value if math.isfinite(value) else _NonFinite(token)


def _non_finite_place(value, where: str = "") -> tuple[str, str] | None:
    if isinstance(value, _NonFinite):
        return where, value.token
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite_place(item, f"{where}[{key}]" if isinstance(key, int) else
                                  f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _non_finite_error(flag: str, where: str, token: str) -> CliError:
    # Python's json.dump writes NaN and Infinity, but they are not JSON and the server refuses them.
    return CliError(f"{flag}: {where} is {token}, not a finite number (NaN and Infinity are not JSON); "
                    "give a number, or leave it out")


def _key_values(pairs: list[str], flag: str) -> dict:
    """`k=v` pairs; values that parse as JSON numbers/booleans/null are taken as such.

    NaN, Infinity, -Infinity and 1e999 are refused: json would send them as numbers that are not
    JSON. A metric is a number, so Python's spellings (`nan`, `inf`) are refused there too, where
    as text they would hide a broken metric.
    """
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            parsed = json.loads(value, parse_constant=_NonFinite, parse_float=_number)
        except ValueError:
            parsed = value
        if isinstance(parsed, _NonFinite) or (flag == "--metric" and isinstance(parsed, str)
                                              and _python_non_finite(value)):
            raise _non_finite_error(flag, key, value)
        result[key] = parsed if isinstance(parsed, int | float | bool) or parsed is None else value
    return result


def _python_non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _json_object(text: str | None, flag: str) -> dict:
    if not text:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {text[1:]}: {exc.strerror}") from exc
    try:
        value = json.loads(text, parse_constant=_NonFinite, parse_float=_number)
        refused = _non_finite_place(value)
    except RecursionError as exc:
        raise CliError(f"{flag} is nested too deeply") from exc
    except ValueError as exc:
        raise CliError(f"{flag} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CliError(f"{flag} must be a JSON object")
    if refused is not None:
        raise _non_finite_error(flag, *refused)
    return value


def _print(args, answer, line: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print(line)


# --- commands -------------------------------------------------------------------------------------

def cmd_gate(args) -> int:
    # The server's pattern is lower-case hex; sha256sum prints lower case, other tools upper.
    sha256 = (args.sha256 or _sha256(args.artifact, show=False)).lower()
    answer = _client(args).gate(model=args.model, version=args.version, environment=args.environment,
                                artifact_sha256=sha256)
    allowed = answer.get("allowed") is True
    # With --json, stdout is the answer alone (`> gate.json` in the CI templates), and the report
    # goes to stderr, so the CI log still shows why the gate denied.
    report = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    verdict = "ALLOWED" if allowed else "DENIED"
    print(f"{verdict}: {args.model} v{args.version} -> {args.environment} "
          f"(decision {answer.get('decision_id')}, audit seq {answer.get('audit_seq')})", file=report)
    for check in answer.get("checks", []):
        if not check.get("passed"):
            print(f"  x {check.get('code')}: {check.get('message')}", file=report)
    return EXIT_ALLOWED if allowed else EXIT_DENIED


def cmd_register_dataset(args) -> int:
    client = _client(args)
    sha256 = _sha256(args.file, show=not args.no_progress)
    if client.dataset_get(args.name) is None:
        if not args.team:
            raise CliError(f"dataset {args.name!r} does not exist yet; give --team to create it")
        client.dataset_create(name=args.name, team=args.team, description=args.description)
    progress = Progress(f"upload {os.path.basename(args.file)}", not args.no_progress)
    version = client.dataset_version_upload(
        dataset=args.name, file_path=args.file, sha256=sha256, progress=progress.bytes,
        target_column=args.target_column, source_uri=args.source_uri, license=args.license,
        provenance=args.provenance, sensitive_columns=args.sensitive_column or None)
    if args.quiet:
        print(version["id"])
        return EXIT_OK
    _print(args, version, f"registered dataset {version['dataset']} v{version['version']} "
                          f"(id {version['id']}, sha256 {version['sha256']}, {version.get('row_count')} rows)")
    return EXIT_OK


def cmd_register_model_version(args) -> int:
    # Bad metrics or parameters stop the command before it hashes, asks or creates anything.
    metrics = {**_json_object(args.metrics_json, "--metrics-json"), **_key_values(args.metric, "--metric")}
    params = {**_json_object(args.params_json, "--params-json"), **_key_values(args.param, "--param")}
    client = _client(args)
    sha256 = _sha256(args.artifact, show=not args.no_progress)  # first, so a corrupt upload is caught
    if client.model_get(args.model) is None:
        if not (args.team and args.risk_tier):
            raise CliError(f"model {args.model!r} does not exist yet; give --team and --risk-tier to create it")
        client.model_create(name=args.model, team=args.team, risk_tier=args.risk_tier)
    fields = {
        "framework": args.framework, "framework_version": args.framework_version, "task": args.task,
        "code_repository": args.code_repository, "code_commit": args.code_commit,
        "description": args.description, "hyperparameters": params, "metrics": metrics,
        "training_datasets": args.training_dataset or [], "evaluation_datasets": args.evaluation_dataset or [],
        "feature_names": args.feature or [], "parent": args.parent,
    }
    progress = Progress(f"upload {os.path.basename(args.artifact)}", not args.no_progress)
    version = client.model_version_upload(model=args.model, file_path=args.artifact, artifact_sha256=sha256,
                                          progress=progress.bytes,
                                          **{k: v for k, v in fields.items() if v not in (None, "")})
    if args.quiet:
        print(version["version"])
        return EXIT_OK
    _print(args, version, f"registered {version['model']} v{version['version']} "
                          f"(id {version['id']}, sha256 {version['artifact_sha256']}, status {version['status']})")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    client = _client(args)
    model_version = client.model_version_get(model=args.model, version=args.version)
    body = {"model_version": model_version["id"], "dataset_version": args.dataset_version,
            "sensitive_features": args.sensitive_feature or None, "target_column": args.target_column}
    evaluation = client.evaluation_create(**body)
    print(f"evaluation {evaluation['id']} of {args.model} v{args.version} on dataset version "
          f"{args.dataset_version}: {evaluation.get('status')}", file=sys.stderr)
    if args.no_wait:
        _print(args, evaluation, f"evaluation {evaluation['id']} {evaluation.get('status')}")
        return EXIT_OK
    progress = Progress(f"evaluation {evaluation['id']}", not args.no_progress)
    evaluation = client.evaluation_wait(
        evaluation["id"], timeout=args.wait_timeout, interval=args.poll_interval,
        progress=lambda e: progress.percent(int(e.get("progress") or 0), str(e.get("status"))))
    succeeded = evaluation.get("status") == "succeeded"
    line = f"evaluation {evaluation['id']} {evaluation.get('status')}"
    if not succeeded:
        line += f": {evaluation.get('failure_code') or ''} {evaluation.get('failure_reason') or ''}".rstrip()
    _print(args, evaluation, line)
    return EXIT_OK if succeeded else EXIT_NEGATIVE


def cmd_record_deployment(args) -> int:
    deployment = _client(args).deployment_record(model=args.model, version=args.version,
                                                 environment=args.environment, decision_id=args.decision_id)
    _print(args, deployment, f"recorded deployment of {deployment.get('model')} v{deployment.get('version')} "
                             f"to {deployment.get('environment')} at {deployment.get('deployed_at')} "
                             f"(decision {deployment.get('decision_id')})")
    return EXIT_OK


def _verifier_path(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("ATTEST_VERIFIER"):
        candidates.append(Path(os.environ["ATTEST_VERIFIER"]))
    candidates.append(Path(__file__).resolve().parent.parent / "docs" / "verify_attest_log.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CliError("the stand-alone verifier docs/verify_attest_log.py was not found; pass --verifier PATH")


def cmd_verify_log(args) -> int:
    path = _verifier_path(args.verifier)
    if not Path(args.export).is_file():
        raise CliError(f"cannot read {args.export}: no such file")
    spec = importlib.util.spec_from_file_location("attest_verify_log", path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot load the verifier {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise CliError(f"the verifier needs {exc.name}: pip install cryptography") from exc
    argv = [args.export]
    if args.public_key:
        argv += ["--public-key", args.public_key]
    if args.anchor:
        argv += ["--anchor", args.anchor]
    if args.manifest:
        argv += ["--manifest", args.manifest]
    return EXIT_OK if module.main(argv) == 0 else EXIT_NEGATIVE


# --- parser ---------------------------------------------------------------------------------------

def _connection_options(parser) -> None:
    # Accepted before or after the command name; after wins.
    parser.add_argument("--url", default=argparse.SUPPRESS, help="Attest base URL (ATTEST_URL)")
    parser.add_argument("--token", default=argparse.SUPPRESS, help="API token (ATTEST_TOKEN)")
    parser.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds per request")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ATTEST_URL"), help="Attest base URL (ATTEST_URL)")
    parser.add_argument("--token", default=os.environ.get("ATTEST_TOKEN"), help="API token (ATTEST_TOKEN)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    commands = parser.add_subparsers(dest="command", required=True)

    gate = commands.add_parser("gate", help="ask whether an artifact may go to an environment")
    _connection_options(gate)
    gate.add_argument("--model", required=True)
    gate.add_argument("--version", required=True, type=int)
    gate.add_argument("--environment", required=True)
    source = gate.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifact", help="the file about to ship (hashed locally)")
    source.add_argument("--sha256", help="its sha256, when the file is elsewhere")
    gate.add_argument("--json", action="store_true", help="print the gate's answer as JSON")
    gate.set_defaults(func=cmd_gate)

    dataset = commands.add_parser("register-dataset", help="upload a dataset version (CSV or Parquet)")
    _connection_options(dataset)
    dataset.add_argument("--name", required=True, help="the dataset's name")
    dataset.add_argument("--file", required=True, help="the CSV or Parquet file")
    dataset.add_argument("--team", help="owning team; needed when the dataset does not exist yet")
    dataset.add_argument("--description", default="")
    dataset.add_argument("--target-column", default="")
    dataset.add_argument("--sensitive-column", action="append", metavar="COLUMN",
                         help="repeatable: a column fairness reports group by (e.g. sex)")
    dataset.add_argument("--source-uri", default="")
    dataset.add_argument("--license", default="")
    dataset.add_argument("--provenance", default="")
    dataset.add_argument("--json", action="store_true", help="print the registered version as JSON")
    dataset.add_argument("-q", "--quiet", action="store_true", help="print only the new dataset version's id")
    dataset.add_argument("--no-progress", action="store_true")
    dataset.set_defaults(func=cmd_register_dataset)

    model = commands.add_parser("register-model-version", help="hash locally, then upload a model artifact")
    _connection_options(model)
    model.add_argument("--model", required=True, help="the registered model's name")
    model.add_argument("--artifact", required=True, help="the artifact file (e.g. .skops)")
    model.add_argument("--team", help="owning team; with --risk-tier when the model does not exist yet")
    model.add_argument("--risk-tier", choices=["minimal", "limited", "high", "unacceptable"])
    model.add_argument("--framework", default="")
    model.add_argument("--framework-version", default="")
    model.add_argument("--task", default="")
    model.add_argument("--code-repository", default="")
    model.add_argument("--code-commit", default="")
    model.add_argument("--description", default="")
    model.add_argument("--metric", action="append", metavar="NAME=VALUE", help="repeatable, e.g. accuracy=0.91")
    model.add_argument("--metrics-json", help="a JSON object of metrics, or @FILE")
    model.add_argument("--param", action="append", metavar="NAME=VALUE", help="repeatable hyperparameter")
    model.add_argument("--params-json", help="a JSON object of hyperparameters, or @FILE")
    model.add_argument("--training-dataset", action="append", type=int, metavar="ID", help="dataset version id")
    model.add_argument("--evaluation-dataset", action="append", type=int, metavar="ID",
                       help="dataset version id")
    model.add_argument("--feature", action="append", metavar="NAME", help="repeatable feature name")
    model.add_argument("--parent", type=int, help="the model version id this one derives from")
    model.add_argument("--json", action="store_true", help="print the registered version as JSON")
    model.add_argument("-q", "--quiet", action="store_true", help="print only the new version number")
    model.add_argument("--no-progress", action="store_true")
    model.set_defaults(func=cmd_register_model_version)

    evaluate = commands.add_parser("evaluate", help="evaluate a model version on a dataset version and wait")
    _connection_options(evaluate)
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--version", required=True, type=int)
    evaluate.add_argument("--dataset-version", required=True, type=int, metavar="ID")
    evaluate.add_argument("--sensitive-feature", action="append", metavar="COLUMN")
    evaluate.add_argument("--target-column")
    evaluate.add_argument("--no-wait", action="store_true", help="return once the evaluation is queued")
    evaluate.add_argument("--wait-timeout", type=float, default=1800.0, help="seconds (default 1800)")
    evaluate.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    deploy = commands.add_parser("record-deployment", help="record that a version went live")
    _connection_options(deploy)
    deploy.add_argument("--model", required=True)
    deploy.add_argument("--version", required=True, type=int)
    deploy.add_argument("--environment", required=True)
    deploy.add_argument("--decision-id", required=True, help="the allowing gate decision's id")
    deploy.add_argument("--json", action="store_true")
    deploy.set_defaults(func=cmd_record_deployment)

    verify = commands.add_parser("verify-log", help="verify an audit-log export or evidence bundle offline")
    verify.add_argument("export", help="the JSON Lines export (manage.py export_audit_log) or evidence .zip")
    verify.add_argument("--public-key", help="hex Ed25519 public key the checkpoint must carry")
    verify.add_argument("--anchor", help="a checkpoint JSON kept outside the database")
    verify.add_argument("--manifest", help="an evidence bundle's manifest sha256, as the dossier's cover prints it")
    verify.add_argument("--verifier", help="path to verify_attest_log.py (default: docs/ of this checkout)")
    verify.set_defaults(func=cmd_verify_log, offline=True)
    return parser


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, which is also "could not ask"
        return EXIT_ERROR if exc.code else EXIT_ALLOWED
    if not getattr(args, "offline", False) and (not args.url or not args.token):
        print("attest: error: --url and --token (or ATTEST_URL and ATTEST_TOKEN) are required", file=sys.stderr)
        return EXIT_ERROR
    if getattr(args, "sha256", None) and (len(args.sha256) != 64 or not _is_hex(args.sha256)):
        print("attest: error: --sha256 must be 64 hex characters", file=sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args)
    except (CliError, AttestError) as exc:
        print(f"attest: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("attest: error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback (issue 8)
        print(f"attest: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
