"""Issue 4's scenario on the demo's high-risk model, through the services only.

register → request → three signatures by three different roles → gate allowed → deploy → new
artifact → gate denied with `approval_missing` → rollback; the audit log verifies afterwards.

The demo leaves the model with critical drift alerts and reports that fail the default high-tier
fairness thresholds; the scenario starts the way a compliance officer would: the alerts are signed
resolved and the high-tier policy gets thresholds for this use (a versioned, audited edit).
"""

import hashlib
import io

import pytest
import skops.io
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.management import call_command

from governance.gate import gate_evaluate
from governance.models import ApprovalRequest, Deployment, Report
from governance.selectors import model_live_version
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.deployments import deployment_record
from governance.services.evaluations import dataset_frame, evaluation_request
from governance.services.policies import policy_update
from monitoring.models import ComplianceAlert
from monitoring.services.alerts import compliance_alert_resolve
from registry import services as registry_services
from registry.demo import ARRESTS_MODEL, _arrests_pipeline
from registry.models import DatasetVersion, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

PASSWORDS = {"vera": "attest-demo-challenge", "colm": "attest-demo-regulation", "rita": "attest-demo-appetite"}
ENVIRONMENT = "production"


@pytest.fixture(autouse=True)
def _tasks_in_process(celery_eager, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


def user(username: str) -> User:
    return User.objects.get(username=username)


def failed(decision) -> list[str]:
    return [check["code"] for check in decision.checks if not check["passed"]]


def ask_gate(version: ModelVersion):
    return gate_evaluate(actor=user("ci-bot"), model_name=version.model.name, version=version.version,
                         environment=ENVIRONMENT, artifact_sha256=version.artifact_sha256)


def register_and_evaluate(model: RegisteredModel, *, c: float, capture) -> ModelVersion:
    """Emil trains a logistic regression on the demo's training split, registers it, and asks for its reports."""
    previous = ModelVersion.objects.filter(model=model, version=1).get()
    training, evaluation = previous.training_datasets.get(), previous.evaluation_datasets.get()
    frame = dataset_frame(training)
    features = [column for column in frame.columns if column != "released"]
    estimator, head = _arrests_pipeline("logistic_regression")
    head.set_params(C=c)
    estimator.fit(frame[features], frame["released"])
    artifact = skops.io.dumps(estimator)
    emil = user("emil")
    with capture(execute=True):
        version = registry_services.model_version_register(
            actor=emil, model=model, artifact=ContentFile(artifact, name="model.skops"),
            declared_sha256=hashlib.sha256(artifact).hexdigest(), framework="scikit-learn", task="classification",
            metrics={"accuracy": previous.metrics["accuracy"]}, feature_names=features,
            training_datasets=[training], evaluation_datasets=[evaluation], description=f"logistic regression C={c}")
        evaluation_request(actor=emil, model_version=version, dataset_version=DatasetVersion.objects.get(
            pk=evaluation.pk))
    assert set(Report.objects.filter(model_version=version).values_list("kind", flat=True)) == {
        "fairness", "explainability"}
    return version


def approve(version: ModelVersion, capture) -> ApprovalRequest:
    with capture(execute=True):
        request = approval_request_open(actor=user("emil"), kind="deployment", model_version=version,
                                        environment=ENVIRONMENT, reason="release")
    for username in ("vera", "colm", "rita"):
        with capture(execute=True):
            approval_request_sign(actor=user(username), request=request, password=PASSWORDS[username],
                                  meaning="approve", reason=f"{username} reviewed the evidence")
    request.refresh_from_db()
    return request


def deploy(version: ModelVersion, capture) -> Deployment:
    decision = ask_gate(version)
    assert decision.allowed, failed(decision)
    with capture(execute=True):
        return deployment_record(actor=user("ci-bot"), model_version=version, environment=ENVIRONMENT,
                                 decision_id=decision.decision_id)


def test_the_high_risk_model_from_registration_to_rollback(settings, audit_flush,
                                                           django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    # given: the demo, its critical alerts signed resolved, thresholds the logistic models meet
    settings.DEBUG = True
    with capture(execute=True):
        call_command("create_demo_users", stdout=io.StringIO())
        call_command("load_demo", stdout=io.StringIO())
    model = RegisteredModel.objects.get(name=ARRESTS_MODEL)
    for alert in ComplianceAlert.objects.filter(severity="critical", status="open"):
        compliance_alert_resolve(actor=user("colm"), alert=alert, password=PASSWORDS["colm"],
                                 reason="The shift is the new intake policy; retraining requested.")
    policy_update(actor=user("colm"), risk_tier="high", reason="Thresholds for the release-advice pilot",
                  changes={"thresholds": {"equalized_odds_difference_max": 0.3, "fairness_small_groups": "exclude",
                                          "metric": "accuracy", "metric_min": 0.7}})
    # and the release in production before this one: v1, approved by three roles
    first = ModelVersion.objects.get(model=model, version=1)
    approve(first, capture)
    deploy(first, capture)

    # when: a new version is registered and evaluated
    release = register_and_evaluate(model, c=0.5, capture=capture)
    # then: the gate refuses it until it is signed off, and for nothing else (reports present and within
    # the thresholds, no open alert)
    unsigned = ["approval_missing", "signer_role_missing"]
    assert failed(ask_gate(release)) == unsigned

    # when: a validator, a compliance officer and a risk officer sign
    request = approve(release, capture)
    # then: three signatures by three people in three roles approve it, and the gate allows
    assert request.status == ApprovalRequest.Status.APPROVED
    signatures = list(request.signatures.all())
    assert sorted(s.role for s in signatures) == ["compliance_officer", "model_validator", "risk_officer"]
    assert len({s.signer_id for s in signatures}) == 3
    deployment = deploy(release, capture)
    assert model_live_version(model=model, environment=ENVIRONMENT) == release
    assert deployment.is_rollback is False

    # when: a new artifact is to be shipped
    candidate = register_and_evaluate(model, c=2.0, capture=capture)
    decision = ask_gate(candidate)
    # then: it is denied for want of an approval of its own
    assert decision.allowed is False
    assert failed(decision) == unsigned
    assert model_live_version(model=model, environment=ENVIRONMENT) == release

    # when: production is rolled back to the earlier approved release (a rollback is gated like any deployment)
    rollback = deploy(first, capture)
    # then
    assert rollback.is_rollback is True
    assert model_live_version(model=model, environment=ENVIRONMENT) == first
    audit_flush()
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out)
    assert out.getvalue().startswith("OK ")
