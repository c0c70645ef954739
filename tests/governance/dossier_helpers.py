"""The demo database with governance on top, for the dossier tests: real signatures, gate, deployments.

`demo_governed()` loads the demo (create_demo_users + registry.demo.demo_load) and, through the
services only:
- the high-risk arrests model: v2's production request approved by Vera (validator), Colm
  (compliance) and Rita (risk), each re-authenticating with the demo password; gate asked by CI;
- the limited diabetes model: a staging request signed only by Colm ("reviewed"), so it has no
  independent validator's signature;
then signs a checkpoint over everything.
"""

import io
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import TestCase, override_settings

from governance.audit import audit_log_sequence
from governance.checkpoints import audit_checkpoint_create
from governance.gate import gate_evaluate
from governance.models import ApprovalRequest
from governance.services.approvals import approval_request_open, approval_request_sign, approval_request_withdraw
from governance.services.deployments import deployment_record
from governance.services.signatures import approval_request_evidence_changes
from registry.demo import ARRESTS_MODEL, DIABETES_MODEL, demo_load
from registry.models import ModelVersion, RegisteredModel

PASSWORDS = {"vera": "attest-demo-challenge", "colm": "attest-demo-regulation", "rita": "attest-demo-appetite"}
SIGNERS = (("vera", "Vera Lindqvist", "approve", "Validated the v2 gradient boosting against the holdout."),
           ("colm", "Colm Byrne", "approve", "Documentation and data provenance complete."),
           ("rita", "Rita Okafor", "approve", "Within the risk appetite for pre-trial release advice."))


@dataclass
class DemoGoverned:
    arrests: RegisteredModel
    diabetes: RegisteredModel
    approved: ApprovalRequest
    unvalidated: ApprovalRequest


def _pending_or_open(version: ModelVersion, environment: str) -> ApprovalRequest:
    """The demo's own pending request for this target (load_demo may open one), else a new one by Emil."""
    pending = ApprovalRequest.objects.filter(model_version=version, environment=environment,
                                             status=ApprovalRequest.Status.PENDING).first()
    if pending is not None and approval_request_evidence_changes(pending):
        # Opened by load_demo before the reports the tests compute after it (on-commit work) existed.
        approval_request_withdraw(actor=pending.requested_by, request=pending, reason="reports computed since")
        pending = None
    return pending or approval_request_open(actor=User.objects.get(username="emil"), kind="deployment",
                                            model_version=version, environment=environment)


def demo_users_create() -> None:
    with override_settings(DEBUG=True):  # create_demo_users refuses to run without DEBUG
        call_command("create_demo_users", stdout=io.StringIO())


def demo_governed() -> DemoGoverned:
    demo_users_create()
    # load_demo's later steps (evaluations, monitoring) run tasks after commit: let them run here too,
    # in this process even in .ci/run's PostgreSQL pass with a real broker (where no worker would
    # take them, and the demo would have no reports): these tests are about the dossier, not transport.
    from mlops_site.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            demo_load()
    finally:
        app.conf.task_always_eager = eager
    user = User.objects.get
    arrests = RegisteredModel.objects.get(name=ARRESTS_MODEL)
    diabetes = RegisteredModel.objects.get(name=DIABETES_MODEL)
    v2 = ModelVersion.objects.get(model=arrests, version=2)
    request = _pending_or_open(v2, "production")
    for username, _name, meaning, reason in SIGNERS:
        approval_request_sign(actor=user(username=username), request=request, password=PASSWORDS[username],
                              meaning=meaning, reason=reason)
    ci = user(username="ci-bot")
    decision = gate_evaluate(actor=ci, model_name=arrests.name, version=2, environment="production",
                             artifact_sha256=v2.artifact_sha256)
    if decision.allowed:  # once the demo computes the reports the high-risk policy requires
        deployment_record(actor=ci, model_version=v2, environment="production", decision_id=decision.decision_id)
    regressor = ModelVersion.objects.get(model=diabetes, version=1)
    unvalidated = _pending_or_open(regressor, "staging")
    approval_request_sign(actor=user(username="colm"), request=unvalidated, password=PASSWORDS["colm"],
                          meaning="reviewed", reason="Read the model card; validation still to come.")
    audit_log_sequence()
    audit_checkpoint_create()
    request.refresh_from_db()
    return DemoGoverned(arrests=arrests, diabetes=diabetes, approved=request, unvalidated=unvalidated)


def storage_under(path) -> dict:
    """The STORAGES setting that puts stored blobs (PDFs, artifacts) under `path`."""
    return {**django_settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(path)}}}


def storage_in(settings, path) -> None:
    """Stored blobs (PDFs, artifacts) go under `path` for this test."""
    settings.STORAGES = storage_under(path)
