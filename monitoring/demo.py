"""Monitoring's part of `manage.py load_demo`: a deployed classifier, its monitor, a clean and a drifted batch.

So that a new user sees, right after `make demo`, a critical compliance alert naming the shifted
features, the gate denying the deployed version (`open_critical_alert`), and a retraining
request pending sign-off. Runs after the evaluations (order 10: the high tier needs its reports)
and before the pending deployment request of governance's demo (order 900).

1. Deploy the arrests classifier the way a team would: to production, the ML engineer opens a
   deployment request, the validator, the compliance officer and the risk officer sign it
   (re-authenticating with their demo passwords), CI asks the gate, the engineer records the
   deployment. Under the default high-tier policy the demo classifiers' fairness reports fail
   its thresholds, so the gate would refuse production whatever the signatures; the step then
   deploys to `shadow`, an environment the policy does not cover (the gate allows it without an
   approval), and says so. With a policy the classifier meets, it goes to production.
2. A monitor on it (reference: its training data; critical on breach; retraining on critical;
   dataset drift at a quarter of the features).
3. Two batches from the evaluation split: as it is (clean), and with `age` shifted by 15
   years and the `colour` mix turned around (drifted). Both are seeded, so their bytes (and
   hashes) are the same on every run; each is checked at once.

Idempotent: each step finds what it would create (a deployment, the monitor, a batch by its
sha256, a result per batch) and skips it.
"""

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from governance.gate import gate_checks_compute, gate_evaluate
from governance.models import ApprovalRequest, Deployment
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.deployments import deployment_record
from mlops_site.common.errors import ApplicationError
from monitoring.models import ComplianceAlert, DriftMonitor
from monitoring.services.batches import monitoring_batch_ingest
from monitoring.services.checks import drift_check_run
from monitoring.services.monitors import drift_monitor_create
from registry.demo import ARRESTS_MODEL, DEMO_ML_ENGINEER
from registry.models import ModelVersion

DEMO_STEP_ORDER = 500
ENVIRONMENT = "production"
# Tried in this order; the default policies cover staging and production, not shadow.
ENVIRONMENTS = (ENVIRONMENT, "shadow")
CI_USER = "ci-bot"
# The demo signers and their public demo passwords (governance create_demo_users).
SIGNERS = (("vera", "attest-demo-challenge"), ("colm", "attest-demo-regulation"), ("rita", "attest-demo-appetite"))
# Failing checks that a signed approval (and nothing else) fixes.
APPROVAL_CHECKS = {"approval_missing", "signer_role_missing"}
AGE_SHIFT = 15
DRIFTED_COLOUR_SHARE = {"Black": 0.7, "White": 0.3}
SEED = 6


def _csv(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _users() -> dict[str, Any]:
    names = [DEMO_ML_ENGINEER, CI_USER, *(name for name, _ in SIGNERS)]
    return {user.username: user for user in get_user_model().objects.filter(username__in=names)}


def _failing(version: ModelVersion, environment: str = ENVIRONMENT) -> set[str]:
    checks, _ = gate_checks_compute(model_version=version, environment=environment,
                                    artifact_sha256=version.artifact_sha256)
    return {check["code"] for check in checks if not check["passed"]}


def _approve(*, version: ModelVersion, environment: str, users: dict[str, Any]) -> ApprovalRequest:
    """An approved deployment request: opened by the ML engineer, signed by the three officers."""
    request = (ApprovalRequest.objects.filter(model_version=version, environment=environment,
                                              kind=ApprovalRequest.Kind.DEPLOYMENT,
                                              status=ApprovalRequest.Status.APPROVED).first()
               or approval_request_open(actor=users[DEMO_ML_ENGINEER], kind=ApprovalRequest.Kind.DEPLOYMENT,
                                        model_version=version, environment=environment))
    for name, password in SIGNERS:
        request.refresh_from_db()
        if request.status != ApprovalRequest.Status.PENDING:
            break
        if not request.signatures.filter(signer=users[name]).exists():
            approval_request_sign(actor=users[name], request=request, password=password, meaning="approve",
                                  reason="Demo: evidence reviewed; fit for this environment.")
    return request


def _deploy(*, users: dict[str, Any], log: Callable[[str], None], result: Any) -> tuple[ModelVersion, str] | None:
    """(version, environment) of the arrests classifier's deployment, deploying it when there is none.

    Production first, through the whole sign-off; when the gate would refuse every version there
    for more than a missing approval (the default high-tier policy's fairness thresholds), the
    shadow environment, which that policy does not cover (the gate needs no approval there).
    """
    live = (Deployment.objects.filter(model__name=ARRESTS_MODEL, environment__in=ENVIRONMENTS)
            .select_related("model_version__model").order_by("-deployed_at").first())
    if live is not None:
        result.skipped.append(f"deployment of {live.model_version} to {live.environment}")
        log(f"  already there: {live.model_version} deployed to {live.environment}")
        return live.model_version, live.environment
    versions = list(ModelVersion.objects.filter(model__name=ARRESTS_MODEL).select_related("model").order_by("version"))
    for environment in ENVIRONMENTS:
        for version in versions:
            failing = _failing(version, environment)
            if failing - APPROVAL_CHECKS:
                log(f"  {version} cannot go to {environment}: the gate would still fail "
                    f"{', '.join(sorted(failing - APPROVAL_CHECKS))}")
                continue
            request = _approve(version=version, environment=environment, users=users) if failing else None
            decision = gate_evaluate(actor=users[CI_USER], model_name=version.model.name, version=version.version,
                                     environment=environment, artifact_sha256=version.artifact_sha256)
            if not decision.allowed:
                log(f"  the gate denied {version} for {environment}: "
                    + ", ".join(c["code"] for c in decision.checks if not c["passed"]))
                continue
            deployment_record(actor=users[DEMO_ML_ENGINEER], model_version=version, environment=environment,
                              decision_id=decision.decision_id)
            how = f"approval request #{request.pk}, 3 signatures" if request else "no approval needed there"
            result.created.append(f"deployment of {version} to {environment}")
            log(f"  registered deployment of {version} to {environment} ({how}; gate decision {decision.decision_id})")
            return version, environment
    return None


def _batches(version: ModelVersion) -> list[tuple[str, bytes]]:
    """(label, CSV bytes) of the clean and the drifted batch, from the version's evaluation data."""
    from monitoring.tables import reference_frame

    evaluation = version.evaluation_datasets.order_by("pk").first()
    if evaluation is None:
        raise ValueError(f"{version} has no evaluation dataset to derive the demo batches from")
    frame = reference_frame(evaluation.storage_key, evaluation.sha256).copy()
    rng = np.random.default_rng(SEED)
    drifted = frame.copy()
    drifted["age"] = drifted["age"] + AGE_SHIFT
    weights = drifted["colour"].map(DRIFTED_COLOUR_SHARE).fillna(0.0)
    weights = weights / drifted.groupby("colour")["colour"].transform("count")
    picked = rng.choice(len(drifted), size=len(drifted), replace=True, p=(weights / weights.sum()).to_numpy())
    drifted = drifted.iloc[np.sort(picked)].reset_index(drop=True)
    return [("clean", _csv(frame)), ("drifted", _csv(drifted))]


def demo_monitoring(*, log: Callable[[str], None], result: Any) -> None:
    """Deploy the demo classifier, monitor it, send a clean and a drifted batch (idempotent)."""
    users = _users()
    if DEMO_ML_ENGINEER not in users or CI_USER not in users:
        return
    log("Monitoring: deployment, drift monitor, a clean and a drifted batch")
    deployed = None
    try:
        if all(name in users for name, _ in SIGNERS):
            deployed = _deploy(users=users, log=log, result=result)
    except ApplicationError as exc:
        log(f"  deployment skipped: {exc.code}: {exc.message}")
    if deployed is None:
        version = ModelVersion.objects.filter(model__name=ARRESTS_MODEL).order_by("version").first()
        if version is None:
            return
        environment = ENVIRONMENT
        log(f"  monitoring {version} without a deployment")
    else:
        version, environment = deployed
    engineer = users[DEMO_ML_ENGINEER]
    monitor = DriftMonitor.objects.filter(model_version=version, environment=environment).first()
    if monitor is None:
        monitor = drift_monitor_create(actor=engineer, model_version=version, environment=environment,
                                       breach_severity="critical", retrain_on_critical=True, drift_share=0.25)
        result.created.append(f"drift monitor #{monitor.pk} of {version} @ {environment}")
        log(f"  registered drift monitor #{monitor.pk} of {version} @ {environment} "
            f"({len(monitor.features)} features)")
    else:
        result.skipped.append(f"drift monitor #{monitor.pk}")
        log(f"  already there: drift monitor #{monitor.pk} of {version} @ {environment}")
    sent = False
    for label, content in _batches(version):
        batch, created = monitoring_batch_ingest(actor=engineer, monitor=monitor,
                                                 file=ContentFile(content, name=f"{label}.csv"),
                                                 check_on_commit=False)
        outcome = drift_check_run(monitor=monitor, batch=batch)
        what = f"{label} batch #{batch.pk} ({batch.row_count} rows)"
        (result.created if created else result.skipped).append(what)
        sent = sent or created
        log(f"  {'registered' if created else 'already there:'} {what}: "
            f"{'drift in ' + ', '.join(outcome.drifted_features) if outcome.drifted_features else 'no drift'}"
            + (f", {outcome.severity} alert" if outcome.severity else ""))
    alerts = list(ComplianceAlert.objects.filter(model=version.model, severity="critical",
                                                 status__in=ComplianceAlert.ACTIVE).order_by("pk"))
    if not alerts:
        return
    if sent:
        # What CI would hear now: a stored, audited denial naming the alert.
        decision = gate_evaluate(actor=users[CI_USER], model_name=version.model.name, version=version.version,
                                 environment=environment, artifact_sha256=version.artifact_sha256)
        failing = [c["code"] for c in decision.checks if not c["passed"]]
        log(f"  gate for {version} @ {environment}: {'allowed' if decision.allowed else 'denied'} "
            f"({', '.join(failing)})")
    for alert in alerts:
        log(f"  critical alert #{alert.pk} {alert.status}: {alert.title}"
            + (f"; retraining request #{alert.retraining_request_id} pending" if alert.retraining_request_id
               else ""))
