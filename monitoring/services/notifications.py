"""Notifications of compliance-alert events, the way governance sends approval-request ones.

The facts are snapshot inside the transaction of the change and sent after it commits
(through the transactional outbox, governance/outbox.py), by a Celery task retried with
backoff: a signed HMAC webhook to each of ATTEST_WEBHOOK_URLS
(governance.notify: https only, SSRF-checked, no redirects, the same headers and secret) and
an email to the assigned team's members and the compliance officers. A rolled-back change
notifies nobody. Governance's NotificationDelivery rows are keyed to approval requests, so
alert deliveries are logged rather than recorded as rows (docs/monitoring.md).
"""

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db.models import Q
from django.utils import timezone

from governance.canonical import timestamp_canonical
from governance.notify import DeliveryFailed, DeliveryRefused
from governance.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    webhook_signature,
)
from governance.notify.webhook import webhook_post
from governance.outbox import outbox_eager_runner, outbox_enqueue
from mlops_site.common.context import correlation_id_get
from mlops_site.common.roles import Role
from monitoring.models import ComplianceAlert

log = logging.getLogger(__name__)
EVENTS = ("alert.raised", "alert.escalated", "alert.resolved", "alert.dismissed")


def alert_notification_payload(*, alert: ComplianceAlert, event: str, actor: Any = None) -> dict[str, Any]:
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}")
    return {
        "event_id": str(uuid.uuid4()), "event": event, "alert_id": alert.pk, "model": alert.model.name,
        # An `alias_moved` alert has no monitor (so no environment), and no version when the
        # MLflow version it names was never imported; `mlflow` then says which alias moved where.
        "version": alert.model_version.version if alert.model_version is not None else None,
        "environment": alert.monitor.environment if alert.monitor is not None else None, "mlflow": alert.mlflow,
        "kind": alert.kind,
        "severity": alert.severity, "status": alert.status, "title": alert.title,
        "repeat_count": alert.repeat_count, "assigned_team": alert.assigned_team.name,
        "retraining_request": alert.retraining_request_id,
        "actor": actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else None,
        "timestamp": timestamp_canonical(timezone.now()), "correlation_id": correlation_id_get(),
    }


ALERT_NOTIFICATION_TASK = "monitoring.tasks.alert_notification_task"


def alert_notification_schedule(*, alert: ComplianceAlert, event: str, actor: Any = None) -> dict[str, Any]:
    """Snapshot the event and its targets now; each send is an outbox row of the surrounding transaction.

    The rows (governance.outbox) are published when the transaction commits; with the broker
    down they wait for the relay, and the change neither fails nor loses its notifications. A
    rolled-back change leaves no row. Sends are at least once: receivers dedupe by `event_id`.
    """
    payload = alert_notification_payload(alert=alert, event=event, actor=actor)
    for channel, target in alert_notification_targets(payload):
        outbox_enqueue(ALERT_NOTIFICATION_TASK, payload, channel, target)
    return payload


@outbox_eager_runner(ALERT_NOTIFICATION_TASK)
def _send_eager(payload: dict[str, Any], channel: str, target: str) -> None:
    # Eager mode has no worker to retry later: one attempt, a failure logged.
    try:
        alert_notification_send(payload=payload, channel=channel, target=target)
    except DeliveryFailed as exc:
        log.warning("alert notification to %s failed: %s", target, exc)


def alert_email_recipients(*, alert_id: int) -> list[str]:
    """Active users with an email who are in the alert's team or are compliance officers."""
    alert = ComplianceAlert.objects.select_related("assigned_team").get(pk=alert_id)
    users = get_user_model().objects.filter(is_active=True).exclude(email="").filter(
        Q(teams=alert.assigned_team) | Q(groups__name=Role.COMPLIANCE_OFFICER))
    return sorted(set(users.values_list("email", flat=True)))


def _link(alert_id: int) -> str:
    return f"{settings.ATTEST_SITE_URL.rstrip('/')}/admin/monitoring/compliancealert/{alert_id}/change/"


def alert_notification_send(*, payload: dict[str, Any], channel: str, target: str) -> None:
    """Send one notification once; raises DeliveryFailed for a retry, logs and drops a refused one."""
    try:
        if channel == "webhook":
            secret = settings.ATTEST_WEBHOOK_SECRET
            if not secret:
                raise DeliveryRefused("ATTEST_WEBHOOK_SECRET is not set; unsigned webhooks are never sent")
            sent_at = int(timezone.now().timestamp())
            body = json.dumps({**payload, "sent_at": sent_at}, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
            headers = {SIGNATURE_HEADER: webhook_signature(body, secret), TIMESTAMP_HEADER: str(sent_at),
                       EVENT_HEADER: payload["event"], DELIVERY_HEADER: payload["event_id"]}
            webhook_post(target, body, headers, timeout=settings.ATTEST_WEBHOOK_TIMEOUT_SECONDS,
                         allow_private=settings.ATTEST_WEBHOOK_ALLOW_PRIVATE, ca_file=settings.ATTEST_WEBHOOK_CA_FILE)
        else:
            version = f" v{payload['version']}" if payload.get("version") is not None else ""
            where = f" ({payload['environment']})" if payload.get("environment") else ""
            subject = (f"[Attest] {payload['severity'].upper()} alert #{payload['alert_id']} "
                       f"{payload['event'].split('.')[1]}: {payload['model']}{version}")
            lines = [payload["title"], "", f"Model:      {payload['model']}{version}{where}",
                     f"Severity:   {payload['severity']}",
                     f"Status:     {payload['status']}", f"Breaches:   {payload['repeat_count']}",
                     f"Team:       {payload['assigned_team']}"]
            if payload.get("mlflow"):
                mlflow = payload["mlflow"]
                lines.append(f"MLflow:     {mlflow['model_name']}@{mlflow['alias']} -> version {mlflow['version']} "
                             f"({mlflow['tracking_uri']})")
            if payload.get("retraining_request"):
                lines.append(f"Retraining: request #{payload['retraining_request']} awaits sign-off")
            lines += ["", f"Open it: {_link(payload['alert_id'])}"]
            message = EmailMessage(subject=subject, body="\n".join(lines), to=[target],
                                   headers={"X-Attest-Event": payload["event"],
                                            "X-Attest-Delivery": payload["event_id"]})
            if message.send(fail_silently=False) != 1:
                raise DeliveryFailed("the mail backend accepted no message")
    except DeliveryRefused as exc:
        log.warning("alert notification %s to %s refused: %s", payload["event"], target, exc)
    except OSError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    else:
        log.info("alert notification %s #%s sent to %s", payload["event"], payload["alert_id"], target)


def alert_notification_targets(payload: dict[str, Any]) -> list[tuple[str, str]]:
    targets = [("webhook", url) for url in settings.ATTEST_WEBHOOK_URLS]
    targets += [("email", address) for address in alert_email_recipients(alert_id=payload["alert_id"])]
    return targets
