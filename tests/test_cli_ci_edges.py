"""The `attest` CLI as CI runs it (docs/ci/*.yml), on the edges a QA pass found.

- `attest gate … --json > gate.json` exited 1 and printed nothing: the failed checks go to stderr;
- `attest gate --timeout 5 …` was "unrecognized arguments" (exit 2);
- an upper-case `--sha256` was refused by the gate's pattern (exit 2): it is sent lower-cased;
- NaN / Infinity in --metric, --param or --metrics-json are refused before any request.
"""

import json

import pytest

from attest_cli.main import main
from governance.models import GateDecision
from tests.governance.workflow_factories import World, token_for
from tests.test_cli_ci_sequence import attest

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def world(transactional_db):
    return World()


def _gate(world: World, *extra: str) -> list[str]:
    return ["gate", "--model", world.model.name, "--version", "1", "--environment", "production", *extra]


@pytest.mark.django_db(transaction=True)
def test_gate_json_denied_prints_the_answer_on_stdout_and_each_failed_check_on_stderr(live_server, world):
    # when: the CI template's command, stdout redirected to gate.json
    result = attest(live_server, token_for(world.ci), *_gate(world, "--sha256", world.v1.artifact_sha256, "--json"))

    # then: exit 1, stdout is the answer alone, and the log shows why
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    failed = [check for check in answer["checks"] if not check["passed"]]
    assert answer["allowed"] is False and failed
    assert result.stderr.splitlines() == [
        f"DENIED: {world.model.name} v1 -> production (decision {answer['decision_id']}, "
        f"audit seq {answer['audit_seq']})",
        *(f"  x {check['code']}: {check['message']}" for check in failed),
    ]
    assert "approval_missing" in {check["code"] for check in failed}


@pytest.mark.django_db(transaction=True)
def test_gate_takes_timeout_after_the_command_like_every_other_command(live_server, world):
    # when
    result = attest(live_server, token_for(world.ci),
                    *_gate(world, "--timeout", "5", "--sha256", world.v1.artifact_sha256))

    # then: asked and denied, not a usage error
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(f"DENIED: {world.model.name} v1 -> production")


@pytest.mark.django_db(transaction=True)
def test_gate_sends_an_upper_case_sha256_lower_cased(live_server, world):
    # when: the digest as some tools print it
    result = attest(live_server, token_for(world.ci),
                    *_gate(world, "--sha256", world.v1.artifact_sha256.upper(), "--json"))

    # then: the server answered (no "does not match the required pattern"), and the hash matched
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    assert {check["code"]: check["passed"] for check in answer["checks"]}["artifact_hash_mismatch"] is True
    assert GateDecision.objects.get().artifact_sha256 == world.v1.artifact_sha256


def test_gate_refuses_a_non_hex_sha256_before_asking(capsys):
    assert main(["--url", UNREACHABLE, "--token", "t", "gate", "--model", "m", "--version", "1",
                 "--environment", "production", "--sha256", "z" * 64]) == 2
    assert capsys.readouterr().err == "attest: error: --sha256 must be 64 hex characters\n"


@pytest.mark.parametrize("flags, message", [
    (["--metric", "auc=NaN"], "--metric: auc is NaN"),
    (["--metric", "auc=nan"], "--metric: auc is nan"),
    (["--metric", "loss=-Infinity"], "--metric: loss is -Infinity"),
    (["--metric", "loss=1e999"], "--metric: loss is 1e999"),
    (["--param", "C=Infinity"], "--param: C is Infinity"),
    (["--metrics-json", '{"accuracy": 0.9, "auc": NaN}'], "--metrics-json: auc is NaN"),
    (["--metrics-json", '{"per_class": [0.5, -Infinity]}'], "--metrics-json: per_class[1] is -Infinity"),
    (["--params-json", '{"alpha": 1e999}'], "--params-json: alpha is 1e999"),
])
def test_non_finite_metrics_and_params_are_refused_before_any_request(capsys, tmp_path, flags, message):
    # given an artifact, and a server that is not there: an attempted request would say "cannot reach"
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(b"model")

    # when
    code = main(["--url", UNREACHABLE, "--token", "t", "register-model-version", "--model", "credit",
                 "--artifact", str(artifact), "--no-progress", *flags])

    # then
    assert code == 2
    assert capsys.readouterr().err == (f"attest: error: {message}, not a finite number (NaN and Infinity are "
                                       "not JSON); give a number, or leave it out\n")


def test_metrics_json_from_a_file_written_by_json_dump_is_refused(capsys, tmp_path):
    # given metrics as Python's json.dump writes a NaN
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"auc": float("nan")}))
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(b"model")

    # when
    code = main(["--url", UNREACHABLE, "--token", "t", "register-model-version", "--model", "credit",
                 "--artifact", str(artifact), "--no-progress", "--metrics-json", f"@{metrics}"])

    # then
    assert code == 2
    assert capsys.readouterr().err.startswith("attest: error: --metrics-json: auc is NaN, not a finite number")


def test_text_and_finite_values_still_parse_as_before():
    from attest_cli.main import _json_object, _key_values

    assert _key_values(["a=0.5", "b=3", "c=true", "d=null", "e=adam", "f=nan-free"], "--param") == {
        "a": 0.5, "b": 3, "c": True, "d": None, "e": "adam", "f": "nan-free"}
    assert _key_values(["activation=inf"], "--param") == {"activation": "inf"}  # text, as before
    assert _json_object('{"auc": 0.9, "n": [1, 2.5e-3]}', "--metrics-json") == {"auc": 0.9, "n": [1, 2.5e-3]}
