"""Compliance alerts: raised (or repeated) by a breach, acknowledged, resolved or dismissed.

The state machine (guarded here):

    open -> acknowledged -> resolved | dismissed
    open -> resolved | dismissed

Each step names its actor and reason and writes its audit event. Resolving or dismissing a
critical alert is an electronic signature (21 CFR 11.50, 11.200): the signer must be a
compliance officer, re-authenticates with their password through governance's signing
service (failures counted, the fifth locks signing), and the signature manifests printed
name, role, meaning, reason and UTC time, bound by sha256 to the alert's record as signed.
A repeat breach updates the active alert (count, evidence, severity up), never a new one;
a critical alert of a monitor that says so opens a retraining request (governance) with the
alert as its reason.

MLflow alias moves reach the same cases: governance.mlflow_import decides that a governed
alias now points at a version no approval covers and calls the handler monitoring installs at
ready() (`mlflow_alias_alert_handler_set`), `compliance_alert_raise_alias_moved`, which opens
or repeats a critical `alias_moved` alert. Governance never imports monitoring for it.
"""

import hashlib
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from governance.canonical import canonical_bytes, timestamp_canonical
from governance.models import ApprovalRequest
from governance.permissions import Action, user_can
from governance.selectors import user_printed_name
from governance.services.signatures import signing_failures_reset, signing_reauthenticate
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role
from monitoring import errors
from monitoring.access import can_handle_alert, can_sign_alert
from monitoring.models import SEVERITY_RANK, AlertSignature, ComplianceAlert, DriftMonitor, DriftResult, Severity

log = logging.getLogger(__name__)
Status = ComplianceAlert.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.ACKNOWLEDGED, Status.RESOLVED, Status.DISMISSED}),
    Status.ACKNOWLEDGED: frozenset({Status.RESOLVED, Status.DISMISSED}),
    Status.RESOLVED: frozenset(),
    Status.DISMISSED: frozenset(),
}
_CLOSE_ACTIONS: dict[str, AuditAction] = {Status.RESOLVED: AuditAction.ALERT_RESOLVED,
                                          Status.DISMISSED: AuditAction.ALERT_DISMISSED}
_MEANING: dict[str, str] = {Status.RESOLVED: AlertSignature.Meaning.RESOLVE,
                            Status.DISMISSED: AlertSignature.Meaning.DISMISS}
RETRAINING_REASON = "Compliance alert #{pk} ({severity}): {title}"


# --- raising ---------------------------------------------------------------------------------------

def compliance_alert_raise(*, monitor: DriftMonitor, kind: str, severity: str, title: str,
                           evidence: dict[str, Any], result: DriftResult | None, actor: Any = None
                           ) -> tuple[ComplianceAlert, bool]:
    """Open an alert for a breach, or repeat the active one of the same monitor and kind; (alert, created).

    Runs in the caller's transaction (the drift check's). A repeat adds one to the count,
    keeps the latest evidence and raises the severity when this breach is worse. Writes
    ALERT_RAISED or ALERT_REPEATED; a critical alert of a monitor with `retrain_on_critical`
    opens a retraining request; notifications go out on commit.
    """
    now = timezone.now()
    version = monitor.model_version
    active = (ComplianceAlert.objects.select_for_update()
              .filter(monitor=monitor, kind=kind, status__in=ComplianceAlert.ACTIVE).first())
    if active is None:
        alert = ComplianceAlert(
            model=version.model, model_version=version, monitor=monitor, kind=kind, severity=severity,
            title=title[:300], evidence=evidence, first_seen_at=now, last_seen_at=now, last_result=result,
            assigned_team=version.model.team,
        )
        alert.full_clean(validate_unique=False, validate_constraints=False)
        alert.save()
        audit_event_record(actor=actor, system="monitoring", action=AuditAction.ALERT_RAISED, target=alert,
                           after={"status": alert.status, "severity": severity, "kind": kind, "title": alert.title,
                                  "model": version.model.name, "version": version.version,
                                  "environment": monitor.environment, "assigned_team": version.model.team.name},
                           payload={"evidence": evidence})
        created, escalated = True, severity == Severity.CRITICAL
    else:
        alert = active
        before = {"repeat_count": alert.repeat_count, "severity": alert.severity}
        escalated = SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
        if escalated:
            alert.severity = severity
            alert.title = title[:300]
        alert.repeat_count += 1
        alert.evidence = evidence
        alert.last_seen_at = now
        alert.last_result = result
        alert.save(update_fields=["severity", "title", "repeat_count", "evidence", "last_seen_at", "last_result",
                                  "updated_at"])
        audit_event_record(actor=actor, system="monitoring", action=AuditAction.ALERT_REPEATED, target=alert,
                           before=before, after={"repeat_count": alert.repeat_count, "severity": alert.severity},
                           payload={"evidence": evidence})
        created = False
        escalated = escalated and alert.severity == Severity.CRITICAL
    if alert.severity == Severity.CRITICAL and monitor.retrain_on_critical and alert.retraining_request_id is None:
        _retraining_open(alert=alert, monitor=monitor)
    from monitoring.services.notifications import alert_notification_schedule

    if created or escalated:
        alert_notification_schedule(alert=alert, event="alert.raised" if created else "alert.escalated")
    return alert, created


@transaction.atomic
def compliance_alert_raise_alias_moved(*, actor: Any, tracking_uri: str, mlflow_name: str, alias: str,
                                       mlflow_version: int, previous_version: int | None, model: Any,
                                       model_version: Any = None, system: str = "mlflow_import"
                                       ) -> tuple[ComplianceAlert, bool]:
    """Open a critical `alias_moved` alert, or repeat the active one of the same alias; (alert, created).

    Called (through governance.mlflow_import's hook) when a governed MLflow alias moved to a
    version that Attest has not approved; `model_version` is the Attest version that MLflow
    version became, None when it was never imported. A repeat (the alias moved again, to
    another unapproved version, before anyone closed the case) adds one to the count and
    records where the alias points now. Only a compliance officer's signature closes it (the
    alias moving back to an approved version does not: someone shipped from an unapproved
    version meanwhile, and that is what the officer signs off). Writes ALERT_RAISED or
    ALERT_REPEATED like a drift breach; a new alert is notified on commit.
    """
    now = timezone.now()
    what = (f"{model.name} v{model_version.version} ({model_version.status})" if model_version is not None
            else f"MLflow version {mlflow_version}, not imported into Attest")
    title = f"MLflow alias {mlflow_name}@{alias} moved to {what}, which no approval covers."[:300]
    evidence = {"source": "mlflow", "tracking_uri": tracking_uri, "mlflow_name": mlflow_name, "alias": alias,
                "mlflow_version": mlflow_version, "previous_version": previous_version,
                "model_version": model_version.pk if model_version is not None else None,
                "version": model_version.version if model_version is not None else None,
                "attest_status": model_version.status if model_version is not None else None}
    active = (ComplianceAlert.objects.select_for_update()
              .filter(kind=ComplianceAlert.Kind.ALIAS_MOVED, mlflow_tracking_uri=tracking_uri,
                      mlflow_name=mlflow_name, mlflow_alias=alias, status__in=ComplianceAlert.ACTIVE).first())
    if active is None:
        alert = ComplianceAlert(
            model=model, model_version=model_version, monitor=None, kind=ComplianceAlert.Kind.ALIAS_MOVED,
            severity=Severity.CRITICAL, title=title, evidence=evidence, first_seen_at=now, last_seen_at=now,
            assigned_team=model.team, mlflow_tracking_uri=tracking_uri, mlflow_name=mlflow_name, mlflow_alias=alias,
            mlflow_version=mlflow_version,
        )
        alert.full_clean(validate_unique=False, validate_constraints=False)
        alert.save()
        audit_event_record(actor=actor, system=system, action=AuditAction.ALERT_RAISED, target=alert,
                           after={"status": alert.status, "severity": alert.severity, "kind": alert.kind,
                                  "title": alert.title, "model": model.name,
                                  "version": evidence["version"], "assigned_team": model.team.name,
                                  "mlflow": alert.mlflow},
                           payload={"evidence": evidence})
        from monitoring.services.notifications import alert_notification_schedule

        alert_notification_schedule(alert=alert, event="alert.raised")
        return alert, True
    alert = active
    before = {"repeat_count": alert.repeat_count, "mlflow_version": alert.mlflow_version,
              "model_version": alert.model_version_id}
    alert.repeat_count += 1
    alert.mlflow_version = mlflow_version
    alert.model_version = model_version
    alert.title = title
    alert.evidence = evidence
    alert.last_seen_at = now
    alert.save(update_fields=["repeat_count", "mlflow_version", "model_version", "title", "evidence", "last_seen_at",
                              "updated_at"])
    audit_event_record(actor=actor, system=system, action=AuditAction.ALERT_REPEATED, target=alert, before=before,
                       after={"repeat_count": alert.repeat_count, "severity": alert.severity,
                              "mlflow_version": mlflow_version, "model_version": alert.model_version_id},
                       payload={"evidence": evidence})
    return alert, False


def _retraining_open(*, alert: ComplianceAlert, monitor: DriftMonitor) -> None:
    """Open (or join) the model's pending retraining request, with the alert as its reason.

    The requester is the monitor's creator: they asked for this when they set
    `retrain_on_critical`. When they may not open requests (left the team, lost the role) the
    alert says why and the breach is still recorded (a savepoint keeps a refusal from undoing it).
    """
    from governance.services.approvals import approval_request_open

    model = alert.model
    pending = ApprovalRequest.objects.filter(model=model, kind=ApprovalRequest.Kind.RETRAINING,
                                             status=ApprovalRequest.Status.PENDING).order_by("created_at").first()
    request, note = pending, ""
    requester = monitor.created_by
    if request is None:
        if requester is None or not user_can(requester, Action.APPROVAL_REQUEST, model):
            note = "retraining request not opened: the monitor's creator may not request approvals for this model"
        else:
            try:
                with transaction.atomic():
                    request = approval_request_open(
                        actor=requester, kind=ApprovalRequest.Kind.RETRAINING, model=model,
                        reason=RETRAINING_REASON.format(pk=alert.pk, severity=alert.severity, title=alert.title),
                    )
            except ApplicationError as exc:
                note = f"retraining request not opened: {exc.code}: {exc.message}"
    if request is not None:
        alert.retraining_request = request
        alert.save(update_fields=["retraining_request", "updated_at"])
    elif note:
        alert.evidence = {**alert.evidence, "retraining": note}
        alert.save(update_fields=["evidence", "updated_at"])
        log.warning("alert %s: %s", alert.pk, note)


# --- the lifecycle ---------------------------------------------------------------------------------

def _locked(alert: ComplianceAlert) -> ComplianceAlert:
    return ComplianceAlert.objects.select_for_update(of=("self",)).select_related(
        "model", "model_version", "monitor").get(pk=alert.pk)


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise errors.reason_required()
    return reason.strip()


@transaction.atomic
def compliance_alert_acknowledge(*, actor: Any, alert: ComplianceAlert, reason: str) -> ComplianceAlert:
    """Someone owns the case now: open -> acknowledged. Writes ALERT_ACKNOWLEDGED.

    Refuses: someone outside the model's team without `alert.manage` (403), no reason (400
    `reason_required`), an alert not open (409 `invalid_transition`).
    """
    reason = _reason(reason)
    alert = _locked(alert)
    if not can_handle_alert(actor, alert):
        raise errors.not_allowed(user=actor, action=f"acknowledge alert #{alert.pk}")
    if Status.ACKNOWLEDGED not in TRANSITIONS[alert.status]:
        raise errors.invalid_transition(pk=alert.pk, status=alert.status, target=Status.ACKNOWLEDGED)
    before = {"status": alert.status}
    alert.status = Status.ACKNOWLEDGED
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.acknowledge_reason = reason
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "acknowledge_reason", "updated_at"])
    audit_event_record(actor=actor, action=AuditAction.ALERT_ACKNOWLEDGED, target=alert, before=before,
                       after={"status": alert.status, "acknowledged_at": alert.acknowledged_at}, reason=reason)
    return alert


def alert_record(alert: ComplianceAlert, *, meaning: str) -> dict[str, Any]:
    """What a signer closing an alert signs: the alert, its evidence and count, and what they mean by it."""
    return {
        "alert_id": alert.pk, "model_id": alert.model_id, "model_version_id": alert.model_version_id,
        "monitor_id": alert.monitor_id, "kind": alert.kind, "severity": alert.severity,
        "title": alert.title, "evidence": alert.evidence, "repeat_count": alert.repeat_count,
        "first_seen_at": timestamp_canonical(alert.first_seen_at),
        "last_seen_at": timestamp_canonical(alert.last_seen_at), "meaning": meaning,
    }


def alert_record_sha256(alert: ComplianceAlert, *, meaning: str) -> str:
    return hashlib.sha256(canonical_bytes(alert_record(alert, meaning=meaning))).hexdigest()


def alert_signature_verify(signature: AlertSignature) -> bool:
    """Whether the signature still binds to its alert's record, byte for byte."""
    return signature.record_sha256 == alert_record_sha256(signature.alert, meaning=signature.meaning)


def _close(*, actor: Any, alert: ComplianceAlert, target: str, reason: Any, password: str | None) -> ComplianceAlert:
    reason = _reason(reason)
    if not can_handle_alert(actor, alert):
        raise errors.not_allowed(user=actor, action=f"{target[:-1]} alert #{alert.pk}")
    critical = alert.severity == Severity.CRITICAL
    if critical:
        if not can_sign_alert(actor):
            raise errors.not_allowed(user=actor, action=f"sign off critical alert #{alert.pk} (compliance officers "
                                     "sign)", code="signer_role_missing")
        if not password:
            raise errors.signature_required(pk=alert.pk)
        # Outside the transaction below: a failure's count and lock commit although we refuse.
        signing_reauthenticate(actor=actor, password=password)
    with transaction.atomic():
        alert = _locked(alert)
        if target not in TRANSITIONS[alert.status]:
            raise errors.invalid_transition(pk=alert.pk, status=alert.status, target=target)
        # The severity may have risen to critical since the caller looked (a repeat breach).
        if alert.severity == Severity.CRITICAL and not critical:
            raise errors.signature_required(pk=alert.pk)
        now = timezone.now()
        signature = None
        if critical:
            meaning = _MEANING[target]
            record_sha = alert_record_sha256(alert, meaning=meaning)
            printed_name = user_printed_name(actor)
            signature = AlertSignature(alert=alert, signer=actor, printed_name=printed_name,
                                       role=Role.COMPLIANCE_OFFICER, meaning=meaning, reason=reason, signed_at=now,
                                       record_sha256=record_sha)
            signature.full_clean()
            signature.save()
            signing_failures_reset(actor=actor)
            audit_event_record(actor=actor, action=AuditAction.ALERT_SIGNED, target=alert,
                               after={"signature_id": signature.pk, "printed_name": printed_name,
                                      "role": signature.role, "meaning": meaning, "signed_at": now,
                                      "record_sha256": record_sha}, reason=reason)
        before = {"status": alert.status}
        alert.status = target
        alert.closed_by = actor
        alert.closed_at = now
        alert.close_reason = reason
        alert.save(update_fields=["status", "closed_by", "closed_at", "close_reason", "updated_at"])
        audit_event_record(actor=actor, action=_CLOSE_ACTIONS[target], target=alert, before=before,
                           after={"status": target, "closed_at": now,
                                  "signature_id": signature.pk if signature else None}, reason=reason)
        from monitoring.services.notifications import alert_notification_schedule

        alert_notification_schedule(alert=alert, event=f"alert.{target}", actor=actor)
    return alert


def compliance_alert_resolve(*, actor: Any, alert: ComplianceAlert, reason: str,
                             password: str | None = None) -> ComplianceAlert:
    """Close the case as dealt with. A critical alert needs a compliance officer's signature (password).

    Refuses: outside the team without `alert.manage` (403 `permission_denied`); a critical
    alert by anyone but a compliance officer (403 `signer_role_missing`) or without the
    password (403 `signature_required`), with a wrong one (403 `reauthentication_failed`,
    counted) or while signing is locked (403 `signing_locked`); no reason (400
    `reason_required`); an alert already closed (409 `invalid_transition`). Writes
    ALERT_SIGNED (critical) and ALERT_RESOLVED in one transaction.
    """
    return _close(actor=actor, alert=alert, target=Status.RESOLVED, reason=reason, password=password)


def compliance_alert_dismiss(*, actor: Any, alert: ComplianceAlert, reason: str,
                             password: str | None = None) -> ComplianceAlert:
    """Close the case as not a problem (a false alarm, an expected change); as resolve otherwise."""
    return _close(actor=actor, alert=alert, target=Status.DISMISSED, reason=reason, password=password)
