"""`attest`: the command line for CI pipelines, a thin client over Attest's REST API.

Exit codes of `attest gate` (CONTRACT.md): 0 allowed, 1 denied, 2 could not ask.
Only the standard library is used, so the CLI works in any CI image with Python.
"""

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

EXIT_ALLOWED, EXIT_DENIED, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """Anything that stops the CLI from getting an answer: printed as one line, exit 2."""


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def _post_json(url: str, token: str, path: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
                 "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL given by the operator
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read().decode("utf-8"))["error"]
            raise CliError(f"HTTP {exc.code} {error['code']}: {error['message']}") from exc
        except (ValueError, KeyError, TypeError):
            raise CliError(f"HTTP {exc.code} from {url}") from exc
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {url}: {exc.reason}") from exc
    except (TimeoutError, ValueError) as exc:
        raise CliError(f"no usable answer from {url}: {exc}") from exc


def cmd_gate(args) -> int:
    sha256 = args.sha256 or _sha256_of(args.artifact)
    answer = _post_json(args.url, args.token, "/api/v1/gate/", {
        "model": args.model, "version": args.version, "environment": args.environment,
        "artifact_sha256": sha256,
    }, args.timeout)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    allowed = answer.get("allowed") is True
    if not args.json:
        verdict = "ALLOWED" if allowed else "DENIED"
        print(f"{verdict}: {args.model} v{args.version} -> {args.environment} "
              f"(decision {answer.get('decision_id')}, audit seq {answer.get('audit_seq')})")
        for check in answer.get("checks", []):
            if not check.get("passed"):
                print(f"  x {check.get('code')}: {check.get('message')}")
    return EXIT_ALLOWED if allowed else EXIT_DENIED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ATTEST_URL"), help="Attest base URL (ATTEST_URL)")
    parser.add_argument("--token", default=os.environ.get("ATTEST_TOKEN"), help="API token (ATTEST_TOKEN)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    commands = parser.add_subparsers(dest="command", required=True)

    gate = commands.add_parser("gate", help="ask whether an artifact may go to an environment")
    for name in ("--url", "--token"):
        gate.add_argument(name, default=argparse.SUPPRESS)
    gate.add_argument("--model", required=True)
    gate.add_argument("--version", required=True, type=int)
    gate.add_argument("--environment", required=True)
    source = gate.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifact", help="the file about to ship (hashed locally)")
    source.add_argument("--sha256", help="its sha256, when the file is elsewhere")
    gate.add_argument("--json", action="store_true", help="print the gate's answer as JSON")
    gate.set_defaults(func=cmd_gate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, which is also "could not ask"
        return EXIT_ERROR if exc.code else EXIT_ALLOWED
    if not args.url or not args.token:
        print("attest: error: --url and --token (or ATTEST_URL and ATTEST_TOKEN) are required", file=sys.stderr)
        return EXIT_ERROR
    if getattr(args, "sha256", None) and len(args.sha256) != 64:
        print("attest: error: --sha256 must be 64 hex characters", file=sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args)
    except CliError as exc:
        print(f"attest: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
