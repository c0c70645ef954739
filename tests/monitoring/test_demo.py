"""The demo end to end: load_demo leaves a critical alert naming the shifted features, a denied gate and a
pending retraining request; a compliance officer's signature closes the alerts and the gate's alert check
passes; the audit log verifies; a second load_demo changes nothing."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from governance.gate import gate_checks_compute
from governance.models import ApprovalRequest, Deployment, GateDecision
from monitoring.demo import ENVIRONMENT
from monitoring.models import AlertSignature, ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch
from monitoring.services.alerts import alert_signature_verify, compliance_alert_resolve
from registry.demo import ARRESTS_MODEL

pytestmark = pytest.mark.django_db


def _demo() -> str:
    out = io.StringIO()
    call_command("create_demo_users", stdout=out)
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _checks(version, environment) -> list[dict]:
    checks, _ = gate_checks_compute(model_version=version, environment=environment,
                                    artifact_sha256=version.artifact_sha256)
    return checks


def _alert_check(version, environment=ENVIRONMENT) -> dict:
    return next(c for c in _checks(version, environment) if c["code"] == "open_critical_alert")


def test_the_demo_shows_a_critical_alert_a_denied_gate_and_a_pending_retraining(settings, audit_flush,
                                                                                storage_root):
    # given
    settings.DEBUG = True
    # when
    output = _demo()
    # then: the arrests classifier is deployed (shadow: the default high-tier policy's fairness thresholds
    # keep it out of production) and watched there
    monitor = DriftMonitor.objects.get()
    version = monitor.model_version
    assert version.model.name == ARRESTS_MODEL
    deployment = Deployment.objects.get(model_version=version)
    assert deployment.environment == monitor.environment == "shadow"
    assert GateDecision.objects.get(decision_id=deployment.decision.decision_id).allowed is True
    assert MonitoringBatch.objects.filter(monitor=monitor).count() == 2
    clean, drifted = DriftResult.objects.order_by("batch_id")
    assert (clean.dataset_drift, clean.severity) == (False, "")
    assert drifted.dataset_drift is True
    assert {"age", "colour"} <= set(drifted.drifted_features)
    # the critical alert names the shifted features
    alert = ComplianceAlert.objects.get(kind="data_drift")
    assert (alert.severity, alert.status) == ("critical", "open")
    assert "age" in alert.title and "colour" in alert.title
    assert {"age", "colour"} <= {f["feature"] for f in alert.evidence["features"]}
    age = next(f for f in alert.evidence["features"] if f["feature"] == "age")
    assert age["statistic"] > age["threshold"]
    # the gate answers open_critical_alert, and a denial is on record
    check = _alert_check(version)
    first_critical = ComplianceAlert.objects.filter(severity="critical").order_by("first_seen_at", "pk").first()
    assert check["passed"] is False
    assert check["message"].startswith(f"Critical compliance alert #{first_critical.pk} is open")
    denial = GateDecision.objects.filter(model_version=version, environment="shadow", allowed=False).get()
    assert [c["code"] for c in denial.checks if not c["passed"]] == ["open_critical_alert"]
    # a retraining request is pending, with the alert as its reason
    request = alert.retraining_request
    assert (request.kind, request.status) == ("retraining", "pending")
    assert request.reason.startswith(f"Compliance alert #{alert.pk} (critical)")
    assert f"critical alert #{alert.pk} open" in output

    # when: the compliance officer signs each open critical alert resolved
    colm = User.objects.get(username="colm")
    for open_alert in ComplianceAlert.objects.filter(severity="critical", status="open"):
        compliance_alert_resolve(actor=colm, alert=open_alert, reason="Reviewed: the shift is the new intake "
                                 "policy; retraining requested.", password="attest-demo-regulation")
    # then: the gate's alert check passes, the signatures bind, the log verifies
    assert _alert_check(version) == {"code": "open_critical_alert", "passed": True,
                                     "message": "No open critical alert."}
    assert [c["code"] for c in _checks(version, "shadow") if not c["passed"]] == []  # the gate allows again
    assert all(alert_signature_verify(s) for s in AlertSignature.objects.all())
    assert AlertSignature.objects.filter(signer=colm, meaning="resolve").count() >= 1
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"  # retraining is still gated
    audit_flush()
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out)
    assert out.getvalue().startswith("OK ")

    # and a second load_demo adds nothing of monitoring's
    counts = (DriftMonitor.objects.count(), MonitoringBatch.objects.count(), DriftResult.objects.count(),
              ComplianceAlert.objects.count())
    call_command("load_demo", stdout=io.StringIO())
    assert (DriftMonitor.objects.count(), MonitoringBatch.objects.count(), DriftResult.objects.count(),
            ComplianceAlert.objects.count()) == counts
