"""manage.py import_mlflow against a REAL MLflow tracking server started on 127.0.0.1 by the test.

MLflow lives in its own virtualenv (ATTEST_MLFLOW_VENV, default var/bench/mlflow-venv, the one
bench/gate.py uses), installed from the package index on first use. The test creates two
models and five versions through MLflow's REST API (runs with params, metrics and a dataset
input; artifacts uploaded through the artifact proxy), imports twice, then moves an alias: a
critical compliance alert of kind `alias_moved` opens (monitoring's ComplianceAlert, the one the
alerts inbox, the API and the gate read), and only a compliance officer's signature closes it.
"""

import base64
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from governance.audit import AuditAction
from governance.gate import gate_checks_compute
from governance.mlflow_import import canonical_zip_sha256
from governance.models import AuditEvent, MlflowModelVersionLink
from monitoring.models import AlertSignature, ComplianceAlert
from monitoring.services.alerts import compliance_alert_resolve
from registry.models import ModelVersion, RegisteredModel
from tests.governance.workflow_factories import PASSWORD, dataset_version, person, team

REPO = Path(__file__).resolve().parents[2]
SPEC = "mlflow>=3,<4"
# Where MLflow may already be: ATTEST_MLFLOW_VENV, the benchmark's virtualenv in this checkout,
# then a cache outside the checkout (CI runs in a fresh clone, so var/ starts empty there; the
# cache keeps the install for later runs on the same machine).
CANDIDATES = [Path(p) for p in (os.environ.get("ATTEST_MLFLOW_VENV"),) if p] + [
    REPO / "var" / "bench" / "mlflow-venv",
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "attest" / "mlflow-venv",
]


def _mlflow_ready(venv: Path) -> bool:
    python = venv / "bin" / "python"
    return (venv / "bin" / "mlflow").exists() and subprocess.run(
        [str(python), "-c", "import mlflow.server"], capture_output=True, check=False).returncode == 0


def _mlflow_venv() -> Path:
    """A virtualenv with MLflow 3, installed into the first candidate that is not one already."""
    for venv in CANDIDATES:
        if _mlflow_ready(venv):
            return venv
    venv = CANDIDATES[0] if os.environ.get("ATTEST_MLFLOW_VENV") else CANDIDATES[-1]
    started = time.monotonic()
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", SPEC], capture_output=True, text=True,
                          check=False, timeout=1800)
    assert done.returncode == 0 and _mlflow_ready(venv), f"installing {SPEC} failed: {done.stderr[-2000:]}"
    print(f"installed {SPEC} into {venv} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return venv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mlflow:
    def __init__(self, url: str):
        self.url = url

    def call(self, method: str, path: str, body=None, data: bytes | None = None):
        payload = json.dumps(body).encode() if body is not None else data
        request = urllib.request.Request(self.url + path, data=payload, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else {}

    def version(self, experiment: str, name: str, files: dict[str, bytes], *, accuracy: float,
                dataset_digest: str = "d1g35t00") -> str:
        """A run with params, a metric and a dataset input, its artifacts, and a model version of `name`."""
        run = self.call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment, "start_time": 1})
        run_id = run["run"]["info"]["run_id"]
        self.call("POST", "/api/2.0/mlflow/runs/log-batch", {
            "run_id": run_id, "params": [{"key": "C", "value": "0.5"}, {"key": "solver", "value": "lbfgs"}],
            "metrics": [{"key": "accuracy", "value": accuracy, "timestamp": 1, "step": 0}],
            "tags": [{"key": "mlflow.source.git.commit", "value": "0123abcd"}]})
        self.call("POST", "/api/2.0/mlflow/runs/log-inputs", {"run_id": run_id, "datasets": [{
            "dataset": {"name": "loans", "digest": dataset_digest, "source_type": "local",
                        "source": json.dumps({"uri": "/data/loans.csv"})},
            "tags": [{"key": "mlflow.data.context", "value": "training"}]}]})
        for path, content in files.items():
            self.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/model/{path}",
                      data=content)
        created = self.call("POST", "/api/2.0/mlflow/model-versions/create", {
            "name": name, "run_id": run_id, "source": f"mlflow-artifacts:/{experiment}/{run_id}/artifacts/model"})
        return created["model_version"]["version"]

    def alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias, "version": version})


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    venv = _mlflow_venv()
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(venv / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT,
        # Webhooks to the test's own live server on 127.0.0.1 over http, seen within a second.
        env={**os.environ, "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
             "MLFLOW_WEBHOOK_CACHE_TTL": "1"},
        start_new_session=True)  # its own process group: the server and the workers it forks stop together
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, (root / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "MLflow did not start in 180 s"
                time.sleep(0.5)
        yield Mlflow(url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _alias_alerts(**filters):
    return ComplianceAlert.objects.filter(kind=ComplianceAlert.Kind.ALIAS_MOVED, **filters)


def _gate_alert_check(version: ModelVersion) -> dict:
    checks, _ = gate_checks_compute(model_version=version, environment="production",
                                    artifact_sha256=version.artifact_sha256)
    return next(c for c in checks if c["code"] == "open_critical_alert")


def _import(url: str, *extra: str) -> str:
    out = io.StringIO()
    call_command("import_mlflow", "--tracking-uri", url, "--as", "importer", "--team", "ml-platform",
                 *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# Transactional like the webhook test, so pytest-django keeps both together and the module's
# MLflow server (a minute or more to start on a busy machine) is started once.
@pytest.mark.django_db(transaction=True)
def test_import_two_models_five_versions_twice_then_an_alias_move_alerts(mlflow_server, audit_flush):
    # given: the Attest side, and a dataset version whose sha256 an MLflow run cites as its digest
    importer = person("importer", "ml_engineer")
    owning = team("ml-platform", importer)
    data = dataset_version(owner=importer, team_=owning, name="loans")
    # and the MLflow side: 2 models, 5 versions, through MLflow's REST API
    suffix = str(time.monotonic_ns())
    credit, churn = f"credit-{suffix}", f"churn-{suffix}"
    experiment = mlflow_server.call("POST", "/api/2.0/mlflow/experiments/create", {"name": f"e-{suffix}"})
    experiment = experiment["experiment_id"]
    for name in (credit, churn):
        mlflow_server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
    files = {}
    for index in range(3):
        files[(credit, index + 1)] = {"MLmodel": f"flavors: {{sklearn: {{}}}}\nrun: {index}\n".encode(),
                                      "model.skops": os.urandom(2048), "extra/requirements.txt": b"scikit-learn\n"}
        mlflow_server.version(experiment, credit, files[(credit, index + 1)], accuracy=0.8 + index / 100,
                              dataset_digest=data.sha256[:36])
    for index in range(2):
        files[(churn, index + 1)] = {"MLmodel": b"flavors: {}\n", "model.onnx": os.urandom(1024)}
        mlflow_server.version(experiment, churn, files[(churn, index + 1)], accuracy=0.7)
    mlflow_server.alias(credit, "challenger", "3")

    # when: imported
    first = _import(mlflow_server.url, "--risk-tier", "limited", "--model", credit, "--model", churn)
    audit_flush()
    # then: 2 models, 5 versions, with run facts, artifact sha256 and lineage
    assert "2 models created, 5 versions imported, 0 already imported, 0 skipped" in first
    assert RegisteredModel.objects.filter(name__in=[credit, churn]).count() == 2
    versions = ModelVersion.objects.filter(model__name__in=[credit, churn]).order_by("model__name", "version")
    assert versions.count() == 5 == MlflowModelVersionLink.objects.count()
    for link in MlflowModelVersionLink.objects.select_related("model_version__model"):
        mv = link.model_version
        expected = files[(link.mlflow_name, link.mlflow_version)]
        assert mv.artifact_sha256 == canonical_zip_sha256(expected)
        assert sorted((f["path"], f["sha256"]) for f in link.artifact_files) == sorted(
            (path, hashlib.sha256(content).hexdigest()) for path, content in expected.items())
        assert mv.hyperparameters == {"C": 0.5, "solver": "lbfgs"}
        assert mv.code_commit == "0123abcd" and link.run_id and mv.model.risk_tier == "limited"
        assert link.datasets[0]["context"] == "training"
    credit_v2 = MlflowModelVersionLink.objects.get(mlflow_name=credit, mlflow_version=2).model_version
    assert credit_v2.metrics == {"accuracy": 0.81}
    assert list(credit_v2.training_datasets.all()) == [data]
    churn_v1 = MlflowModelVersionLink.objects.get(mlflow_name=churn, mlflow_version=1).model_version
    assert list(churn_v1.training_datasets.all()) == []  # its digest names no Attest dataset version
    assert AuditEvent.objects.filter(action=AuditAction.MLFLOW_VERSION_IMPORTED).count() == 5
    # the ungoverned alias was recorded without an alert
    assert "alias " + credit + "@challenger: - -> 3" in first
    assert _alias_alerts().count() == 0

    # when: imported again
    second = _import(mlflow_server.url, "--model", credit, "--model", churn)
    # then: nothing new
    assert "0 models created, 0 versions imported, 5 already imported, 0 skipped, 0 alias moves" in second
    assert ModelVersion.objects.filter(model__name__in=[credit, churn]).count() == 5
    assert MlflowModelVersionLink.objects.count() == 5

    # when: a new version appears and the champion alias is moved to it (not approved in Attest)
    files[(credit, 4)] = {"MLmodel": b"flavors: {}\n", "model.skops": os.urandom(512)}
    mlflow_server.version(experiment, credit, files[(credit, 4)], accuracy=0.9)
    mlflow_server.alias(credit, "champion", "4")
    third = _import(mlflow_server.url, "--model", credit)
    # then: a critical compliance alert of kind alias_moved, without a monitor, naming the alias
    assert "1 versions imported" in third and "1 critical alerts opened" in third
    alert = ComplianceAlert.objects.get()
    v4 = MlflowModelVersionLink.objects.get(mlflow_name=credit, mlflow_version=4).model_version
    assert (alert.kind, alert.severity, alert.status, alert.monitor, alert.model, alert.model_version) == (
        "alias_moved", "critical", "open", None, v4.model, v4)
    assert alert.mlflow == {"tracking_uri": mlflow_server.url, "model_name": credit, "alias": "champion",
                            "version": 4}
    assert alert.assigned_team.name == "ml-platform"
    # and the gate denies every version of that model with open_critical_alert, naming the alert
    for version in (v4, credit_v2):
        check = _gate_alert_check(version)
        assert not check["passed"] and check["message"] == (
            f"Critical compliance alert #{alert.pk} is open for {credit}: {alert.title}")
    assert "no approval covers" in alert.title
    audit_flush()
    raised = AuditEvent.objects.filter(action=AuditAction.ALERT_RAISED)
    assert [(e.object_type, e.object_id) for e in raised] == [("monitoring.compliancealert", str(alert.pk))]
    # and importing once more neither opens a second alert nor repeats it
    _import(mlflow_server.url, "--model", credit)
    assert _alias_alerts(status="open").count() == 1
    assert ComplianceAlert.objects.get().repeat_count == 1

    # when: the alias goes back to a version Attest approved
    ModelVersion.objects.filter(pk=credit_v2.pk).update(status=ModelVersion.Status.APPROVED)
    mlflow_server.alias(credit, "champion", "2")
    back = _import(mlflow_server.url, "--model", credit)
    # then: the move is recorded, but the critical alert stays open: only a signature closes it
    assert "1 alias moves, 0 critical alerts opened" in back
    alert.refresh_from_db()
    assert alert.status == "open" and not _gate_alert_check(v4)["passed"]

    # when: a compliance officer signs it resolved through the alert sign-off service
    officer = person("officer", "compliance_officer")
    compliance_alert_resolve(actor=officer, alert=alert, reason="champion is back on approved v2", password=PASSWORD)
    # then: resolved with a signature, and the gate's alert check passes for the model
    alert.refresh_from_db()
    signature = AlertSignature.objects.get(alert=alert)
    assert (alert.status, alert.closed_by, signature.role, signature.meaning) == (
        "resolved", officer, "compliance_officer", "resolve")
    assert _gate_alert_check(v4) == {"code": "open_critical_alert", "passed": True,
                                     "message": "No open critical alert."}


@pytest.mark.django_db
def test_import_refuses_an_unreachable_server_with_one_message(make_user):
    # given
    user = make_user("importer", roles=["ml_engineer"])
    team("ml-platform", user)
    port = _free_port()
    # when
    with pytest.raises(CommandError) as caught:
        _import(f"http://127.0.0.1:{port}")
    # then
    assert str(caught.value).startswith("mlflow_unavailable: Cannot reach MLflow at http://127.0.0.1:")
    assert RegisteredModel.objects.count() == 0


def _wait_for(predicate, what: str, seconds: float = 90.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_mlflow_webhooks_register_new_versions_and_alert_on_an_alias_move(mlflow_server, live_server, settings,
                                                                          celery_eager):
    # given: Attest's receiver configured, and a webhook registered in MLflow pointing at it
    importer = person("hook-importer", "ml_engineer")
    team("hook-team", importer)
    secret = "whsec-" + os.urandom(8).hex()
    settings.ATTEST_MLFLOW_WEBHOOK_SECRET = secret
    settings.ATTEST_MLFLOW_TRACKING_URI = mlflow_server.url
    settings.ATTEST_MLFLOW_IMPORT_USER = "hook-importer"
    settings.ATTEST_MLFLOW_TEAM = "hook-team"
    settings.ATTEST_MLFLOW_RISK_TIER = "limited"
    name = f"fraud-{time.monotonic_ns()}"
    mlflow_server.call("POST", "/api/2.0/mlflow/webhooks", {
        "name": f"attest-{name}", "url": f"{live_server.url}/api/v1/mlflow/webhook/", "secret": secret,
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"},
                   {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}]})
    experiment = mlflow_server.call("POST", "/api/2.0/mlflow/experiments/create", {"name": f"e-{name}"})
    mlflow_server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
    time.sleep(1.5)  # MLflow caches the webhook list for MLFLOW_WEBHOOK_CACHE_TTL (1 s here)

    # when: a version is created in MLflow
    mlflow_server.version(experiment["experiment_id"], name, {"MLmodel": b"flavors: {}\n", "m.bin": b"x" * 100},
                          accuracy=0.75)
    # then: MLflow's signed delivery makes Attest import it
    link = _wait_for(lambda: MlflowModelVersionLink.objects.filter(mlflow_name=name, mlflow_version=1).first(),
                     "the webhook import of version 1")
    assert link.model_version.model.name == name and link.model_version.metrics == {"accuracy": 0.75}

    # when: the champion alias is set to that unapproved version
    mlflow_server.alias(name, "champion", "1")
    # then: a critical alert opens
    alert = _wait_for(lambda: _alias_alerts(mlflow_name=name, status="open").first(), "the alias alert")
    assert (alert.severity, alert.mlflow_alias, alert.model_version, alert.monitor) == (
        "critical", "champion", link.model_version, None)


@pytest.mark.django_db
def test_the_webhook_refuses_a_bad_signature_and_changes_nothing(client, settings):
    # given
    settings.ATTEST_MLFLOW_WEBHOOK_SECRET = "right-secret"
    settings.ATTEST_MLFLOW_TRACKING_URI = "http://127.0.0.1:9"
    settings.ATTEST_MLFLOW_IMPORT_USER = "nobody"
    settings.ATTEST_MLFLOW_TEAM = "nobody"
    body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "now",
                       "data": {"name": "m", "version": "1"}}).encode()
    stamp = str(int(time.time()))
    good = "v1," + base64.b64encode(hmac.new(b"wrong-secret", f"d1.{stamp}.".encode() + body,
                                             hashlib.sha256).digest()).decode()
    # when
    wrong = client.post("/api/v1/mlflow/webhook/", body, content_type="application/json",
                        HTTP_X_MLFLOW_SIGNATURE=good, HTTP_X_MLFLOW_TIMESTAMP=stamp, HTTP_X_MLFLOW_DELIVERY_ID="d1")
    missing = client.post("/api/v1/mlflow/webhook/", body, content_type="application/json")
    stale_sig = "v1," + base64.b64encode(
        hmac.new(b"right-secret", b"d2.1000." + body, hashlib.sha256).digest()).decode()
    stale = client.post("/api/v1/mlflow/webhook/", body, content_type="application/json",
                        HTTP_X_MLFLOW_SIGNATURE=stale_sig, HTTP_X_MLFLOW_TIMESTAMP="1000",
                        HTTP_X_MLFLOW_DELIVERY_ID="d2")
    settings.ATTEST_MLFLOW_WEBHOOK_SECRET = None
    disabled = client.post("/api/v1/mlflow/webhook/", body, content_type="application/json")
    # then
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_signature")
    assert "signature mismatch" in wrong.json()["error"]["message"]
    assert (missing.status_code, stale.status_code) == (401, 401)
    assert "tolerance" in stale.json()["error"]["message"]
    assert (disabled.status_code, disabled.json()["error"]["code"]) == (503, "mlflow_webhook_disabled")
    assert MlflowModelVersionLink.objects.count() == 0 and RegisteredModel.objects.count() == 0
