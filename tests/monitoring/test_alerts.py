"""Compliance alerts: lifecycle, e-signed closing of critical alerts, the gate, retraining requests."""

import pytest

from governance.audit import AuditAction
from governance.gate import gate_checks_compute
from governance.models import ApprovalRequest, AuditQueueEntry, SigningCredentialState
from mlops_site.common.errors import ApplicationError
from monitoring.models import AlertSignature, ComplianceAlert
from monitoring.services.alerts import (
    alert_signature_verify,
    compliance_alert_acknowledge,
    compliance_alert_dismiss,
    compliance_alert_resolve,
)
from monitoring.services.checks import drift_check_run
from tests.governance.workflow_factories import PASSWORD, person
from tests.monitoring.conftest import Shop, sample
from tests.monitoring.test_checks import ingest


def drifted(shop: Shop, seed: int = 3) -> ComplianceAlert:
    batch = ingest(shop, sample(400, seed=seed, age_shift=15, colour_mix=(0.2, 0.3, 0.5)))
    drift_check_run(monitor=shop.monitor, batch=batch)
    return ComplianceAlert.objects.get(monitor=shop.monitor, kind="data_drift", status__in=["open", "acknowledged"])


def gate_alert_check(shop: Shop) -> dict:
    checks, _ = gate_checks_compute(model_version=shop.version, environment="production",
                                    artifact_sha256=shop.version.artifact_sha256)
    return next(c for c in checks if c["code"] == "open_critical_alert")


def refused(call, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    return caught.value


def events(action) -> int:
    return AuditQueueEntry.objects.filter(action=action).count()


def test_a_critical_alert_fails_the_gate_until_a_compliance_officer_signs_it_resolved(shop):
    # given
    alert = drifted(shop)
    before = gate_alert_check(shop)
    # when
    compliance_alert_resolve(actor=shop.world.compliance, alert=alert, reason="Retrained on 2026 data; shift "
                             "explained by the new branch network.", password=PASSWORD)
    # then
    after = gate_alert_check(shop)
    assert before["passed"] is False
    assert before["message"].startswith(f"Critical compliance alert #{alert.pk} is open for {shop.world.model.name}")
    assert after == {"code": "open_critical_alert", "passed": True, "message": "No open critical alert."}
    alert.refresh_from_db()
    assert (alert.status, alert.closed_by) == ("resolved", shop.world.compliance)
    signature = AlertSignature.objects.get(alert=alert)
    assert (signature.printed_name, signature.role, signature.meaning) == ("Comp Tester", "compliance_officer",
                                                                           "resolve")
    assert signature.reason.startswith("Retrained on 2026 data")
    assert signature.signed_at.tzinfo is not None
    assert alert_signature_verify(signature) is True
    assert events(AuditAction.ALERT_SIGNED) == 1
    assert events(AuditAction.ALERT_RESOLVED) == 1


def test_a_signature_no_longer_verifies_when_the_record_changes(shop):
    alert = drifted(shop)
    compliance_alert_dismiss(actor=shop.world.compliance, alert=alert, reason="Known seasonal shift.",
                             password=PASSWORD)
    ComplianceAlert.objects.filter(pk=alert.pk).update(evidence={"forged": True})
    assert alert_signature_verify(AlertSignature.objects.get(alert=alert)) is False


def test_an_acknowledged_critical_alert_still_fails_the_gate(shop):
    alert = drifted(shop)
    compliance_alert_acknowledge(actor=shop.world.engineer, alert=alert, reason="Looking into it.")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledge_reason) == ("acknowledged", shop.world.engineer,
                                                                               "Looking into it.")
    assert gate_alert_check(shop)["passed"] is False


def test_only_a_compliance_officer_with_a_password_closes_a_critical_alert(shop):
    alert = drifted(shop)
    w = shop.world
    # a team member, a risk officer: not compliance officers
    assert refused(compliance_alert_resolve, actor=w.engineer, alert=alert, reason="fine",
                   password=PASSWORD).code == "signer_role_missing"
    assert refused(compliance_alert_dismiss, actor=w.risk, alert=alert, reason="fine",
                   password=PASSWORD).code == "signer_role_missing"
    # the auditor writes nothing
    assert refused(compliance_alert_resolve, actor=w.auditor, alert=alert, reason="fine",
                   password=PASSWORD).code == "permission_denied"
    # no password, a wrong one
    assert refused(compliance_alert_resolve, actor=w.compliance, alert=alert, reason="fine").code == (
        "signature_required")
    assert refused(compliance_alert_resolve, actor=w.compliance, alert=alert, reason="fine",
                   password="wrong").code == "reauthentication_failed"
    # no reason
    assert refused(compliance_alert_resolve, actor=w.compliance, alert=alert, reason=" ",
                   password=PASSWORD).code == "reason_required"
    alert.refresh_from_db()
    assert alert.status == "open"
    assert not AlertSignature.objects.exists()
    assert events(AuditAction.ALERT_RESOLVED) == events(AuditAction.ALERT_DISMISSED) == 0
    assert SigningCredentialState.objects.get(user=w.compliance).failed_attempts == 1
    assert events(AuditAction.SIGNING_REAUTH_FAILED) == 1


def test_five_wrong_passwords_lock_signing(shop):
    alert = drifted(shop)
    for _ in range(4):
        refused(compliance_alert_resolve, actor=shop.world.compliance, alert=alert, reason="x", password="bad")
    assert refused(compliance_alert_resolve, actor=shop.world.compliance, alert=alert, reason="x",
                   password="bad").code == "signing_locked"
    assert refused(compliance_alert_resolve, actor=shop.world.compliance, alert=alert, reason="x",
                   password=PASSWORD).code == "signing_locked"


def test_a_closed_alert_cannot_move_again(shop):
    alert = drifted(shop)
    compliance_alert_resolve(actor=shop.world.compliance, alert=alert, reason="done", password=PASSWORD)
    error = refused(compliance_alert_dismiss, actor=shop.world.compliance, alert=alert, reason="again",
                    password=PASSWORD)
    assert (error.code, error.status) == ("invalid_transition", 409)
    assert refused(compliance_alert_acknowledge, actor=shop.world.engineer, alert=alert, reason="late").code == (
        "invalid_transition")


def test_a_warning_alert_is_closed_by_the_team_without_a_signature(db):
    shop = Shop(breach_severity="warning", retrain_on_critical=False)
    alert = drifted(shop)
    assert alert.severity == "warning"
    assert gate_alert_check(shop)["passed"] is True
    compliance_alert_dismiss(actor=shop.world.engineer, alert=alert, reason="Expected: new market opened.")
    alert.refresh_from_db()
    assert alert.status == "dismissed"
    assert not AlertSignature.objects.exists()


def test_someone_of_another_team_cannot_touch_the_alert(shop):
    alert = drifted(shop)
    stranger = person("stranger", "ml_engineer")
    assert refused(compliance_alert_acknowledge, actor=stranger, alert=alert, reason="mine now").code == (
        "permission_denied")


def test_a_critical_breach_opens_a_retraining_request_with_the_alert_as_its_reason(shop):
    alert = drifted(shop)
    request = alert.retraining_request
    assert request is not None
    assert (request.kind, request.status, request.model) == ("retraining", "pending", shop.world.model)
    assert request.reason.startswith(f"Compliance alert #{alert.pk} (critical): Dataset drift on")
    assert request.requested_by == shop.world.engineer
    # a repeat breach joins the same request
    again = drifted(shop, seed=5)
    assert again.pk == alert.pk and again.repeat_count == 2
    assert ApprovalRequest.objects.filter(kind="retraining").count() == 1


def test_a_monitor_that_does_not_ask_opens_no_retraining(db):
    shop = Shop(retrain_on_critical=False)
    alert = drifted(shop)
    assert alert.severity == "critical"
    assert alert.retraining_request is None
    assert not ApprovalRequest.objects.exists()


def test_raising_and_closing_alerts_emails_the_team_and_the_compliance_officers(db, settings, mailoutbox,
                                                                                django_capture_on_commit_callbacks,
                                                                                celery_eager):
    # given: people with addresses
    shop = Shop(retrain_on_critical=False)
    w = shop.world
    for user, address in ((w.engineer, "eng@example.com"), (w.compliance, "comp@example.com"),
                          (w.auditor, "aud@example.com")):
        user.email = address
        user.save(update_fields=["email"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        alert = drifted(shop)
    with django_capture_on_commit_callbacks(execute=True):
        compliance_alert_resolve(actor=w.compliance, alert=alert, reason="ok", password=PASSWORD)
    # then
    raised = [m for m in mailoutbox if m.extra_headers["X-Attest-Event"] == "alert.raised"]
    resolved = [m for m in mailoutbox if m.extra_headers["X-Attest-Event"] == "alert.resolved"]
    assert sorted(m.to[0] for m in raised) == ["comp@example.com", "eng@example.com"]
    assert sorted(m.to[0] for m in resolved) == ["comp@example.com", "eng@example.com"]
    assert raised[0].subject.startswith(f"[Attest] CRITICAL alert #{alert.pk} raised: {w.model.name} v")
    assert f"/admin/monitoring/compliancealert/{alert.pk}/change/" in raised[0].body
