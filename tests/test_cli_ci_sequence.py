"""The CI sequence of docs/ci/*.yml, run as real `attest` processes against a live server (issue 8).

register the datasets and the model version -> evaluate (waits for the reports) -> gate denied
(exit 1, failing checks printed) -> approval opened and signed through the API by the signer users
-> gate allowed (exit 0) -> record the deployment -> export the audit log and verify it with `attest verify-log`.
A wrong token exits 2 with one line on stderr.
"""

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from attest_cli.client import AttestClient
from governance.models import Deployment, GateDecision
from registry.models import DatasetVersion, ModelVersion
from tests.governance.workflow_factories import PASSWORD, person, team, token_for


def attest(live_server, token: str, *args: str) -> subprocess.CompletedProcess:
    """Run the installed CLI module as CI would, with the URL and token from the environment."""
    env = {**os.environ, "ATTEST_URL": live_server.url, "ATTEST_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "attest_cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def people(transactional_db):
    ci = person("ci-bot", "ci_service")
    engineer = person("eng", "ml_engineer")
    validator = person("val", "model_validator")
    compliance = person("comp", "compliance_officer")
    team("credit-team", ci, engineer)
    return {"ci": ci, "engineer": engineer, "validator": validator, "compliance": compliance}


def test_ci_sequence_register_evaluate_gate_sign_gate_deploy_verify(live_server, people, tmp_path, celery_worker):
    # given: what the training job produced (a real pipeline, stored as skops), and the pipeline's token
    import skops.io as sio

    from tests.governance.evaluation_factories import FEATURES, credit_frame, credit_pipeline, csv_of

    ci_token = token_for(people["ci"])
    frame = credit_frame(n=300)
    train, test = frame.iloc[:200].reset_index(drop=True), frame.iloc[200:].reset_index(drop=True)
    (tmp_path / "train.csv").write_bytes(csv_of(train))
    (tmp_path / "test.csv").write_bytes(csv_of(test))
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(sio.dumps(credit_pipeline().fit(train[FEATURES], train["approved"])))

    # when: register the training and evaluation data and the model version
    ids = {}
    for split in ("train", "test"):
        dataset = attest(live_server, ci_token, "register-dataset", "--name", "loans", "--team", "credit-team",
                         "--file", str(tmp_path / f"{split}.csv"), "--target-column", "approved",
                         "--sensitive-column", "sex", "--sensitive-column", "age", "--quiet")
        assert dataset.returncode == 0, dataset.stderr
        ids[split] = int(dataset.stdout.strip())
    registered = attest(live_server, ci_token, "register-model-version", "--model", "credit",
                        "--team", "credit-team", "--risk-tier", "limited", "--artifact", str(artifact),
                        "--framework", "scikit-learn", "--task", "classification", "--metric", "accuracy=0.91",
                        "--param", "C=1.0", *sum((["--feature", f] for f in FEATURES), []),
                        "--training-dataset", str(ids["train"]), "--evaluation-dataset", str(ids["test"]),
                        "--code-commit", "abc123", "--json")
    # then
    assert registered.returncode == 0, registered.stderr
    version = json.loads(registered.stdout)
    mv = ModelVersion.objects.get(pk=version["id"])
    assert (mv.model.name, mv.version, mv.metrics, mv.hyperparameters) == ("credit", 1, {"accuracy": 0.91},
                                                                           {"C": 1.0})
    assert list(mv.training_datasets.values_list("pk", flat=True)) == [ids["train"]]
    assert DatasetVersion.objects.get(pk=ids["test"]).sensitive_columns == ["sex", "age"]
    assert mv.artifact_sha256 == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert "sha256 model.skops" in registered.stderr and "upload model.skops" in registered.stderr

    # when: evaluated, waiting for the reports (a real Celery worker computes them)
    evaluated = attest(live_server, ci_token, "evaluate", "--model", "credit", "--version", "1",
                       "--dataset-version", str(ids["test"]), "--sensitive-feature", "sex",
                       "--poll-interval", "0.5", "--wait-timeout", "300")
    # then
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert evaluated.stdout.strip().endswith("succeeded")
    assert "100% succeeded" in evaluated.stderr

    # when: the gate before any approval
    denied = attest(live_server, ci_token, "gate", "--model", "credit", "--version", "1",
                    "--environment", "production", "--artifact", str(artifact))
    # then: denied, exit 1, each failed check printed
    assert denied.returncode == 1, denied.stderr
    assert denied.stdout.startswith("DENIED: credit v1 -> production")
    assert "  x approval_missing: " in denied.stdout

    # when: the engineer opens the approval request and the officers sign it, all over the API
    opened = AttestClient(live_server.url, token_for(people["engineer"], "approvals:write")).approval_request_open(
        model_version=version["id"], environment="production")
    for signer in ("validator", "compliance"):
        signed = AttestClient(live_server.url, token_for(people[signer])).request(
            "POST", f"/api/v1/approval-requests/{opened['id']}/sign/",
            body={"password": PASSWORD, "meaning": "approve", "reason": "validated in CI test"})
        assert signed["signatures"][-1]["signer_name"]
    # and the gate is asked again
    allowed = attest(live_server, ci_token, "gate", "--model", "credit", "--version", "1",
                     "--environment", "production", "--artifact", str(artifact), "--json")
    # then
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    answer = json.loads(allowed.stdout)
    assert answer["allowed"] is True and all(check["passed"] for check in answer["checks"])

    # when: the deployment is recorded with the allowing decision
    deployed = attest(live_server, ci_token, "record-deployment", "--model", "credit", "--version", "1",
                      "--environment", "production", "--decision-id", answer["decision_id"])
    # then
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.startswith("recorded deployment of credit v1 to production")
    deployment = Deployment.objects.get()
    assert str(deployment.decision.decision_id) == answer["decision_id"]
    assert GateDecision.objects.filter(allowed=False).count() == 1

    # when: the audit log is exported and verified offline with the CLI
    export = tmp_path / "audit.jsonl"
    call_command("audit_checkpoint", stdout=io.StringIO())
    call_command("export_audit_log", "--out", str(export), stdout=io.StringIO())
    verified = attest(live_server, "unused", "verify-log", str(export))
    # then
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK ")
    # and a tampered copy is refused with exit 1
    lines = export.read_text().splitlines()
    lines[0] = lines[0].replace('"seq":1', '"seq":1 ', 1).replace("credit", "CREDIT")
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    broken = attest(live_server, "unused", "verify-log", str(tampered))
    assert broken.returncode == 1
    assert broken.stdout.startswith("BROKEN")


def test_wrong_token_exits_2_with_one_line(live_server, people, tmp_path):
    # when
    result = attest(live_server, "att_not-a-real-token", "gate", "--model", "credit", "--version", "1",
                    "--environment", "production", "--sha256", "a" * 64)
    # then
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("attest: error: HTTP 401 authentication_failed: ")
    assert "Traceback" not in result.stderr
