"""Notifications of approval-request events: scheduled after commit, fanned out, delivered, recorded.

The flow:

1. The approvals service calls `approval_notification_schedule` inside the transaction of the
   change. It snapshots the facts (status, signer, the roles still to sign) as they are in
   that transaction and writes the fan-out task as an outbox row (governance.outbox) in it,
   published on commit or, if the broker is down then, by the relay when it is back. A
   rolled-back change notifies nobody; a committed one is described as it was, not as it is
   when a worker gets to it.
2. `notification_fanout` (Celery) creates one NotificationDelivery per webhook URL and per
   email recipient, keyed by (notification id, channel, target): a second run of the same
   fan-out creates nothing new. It then queues one delivery task per pending row (again
   through the outbox, in the fan-out's transaction).
3. `notification_deliver` (Celery, retried with backoff) claims the row, sends once, and
   records the attempt. A row already sent or failed is left alone, so a retried or
   redelivered task never sends twice (email: at least once only if a worker dies between
   the SMTP server's acceptance and the row's update; webhook receivers dedupe by `event_id`).

Delivery rows are operational records about outbound messages, not governed state: the
change they report already has its audit event, and its correlation id is in the payload.
"""

import datetime as dt
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from governance.canonical import timestamp_canonical
from governance.models import ApprovalRequest, NotificationDelivery, Signature
from governance.notify import DeliveryFailed, DeliveryRefused
from governance.notify.email import email_render
from governance.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    webhook_signature,
)
from governance.notify.webhook import webhook_post
from governance.selectors import user_printed_name
from mlops_site.common.context import correlation_id_get

log = logging.getLogger(__name__)

Event = NotificationDelivery.Event
Channel = NotificationDelivery.Channel
DeliveryStatus = NotificationDelivery.Status

# Long enough for one attempt to finish (timeout + slack); a worker that died mid-send frees the row after it.
_LEASE_SLACK = dt.timedelta(seconds=30)


class NotificationBusy(Exception):
    """Another worker holds the row's lease; try again later."""


# --- 1. in the transaction of the change ----------------------------------------------------------

def _awaiting_roles(request: ApprovalRequest) -> list[str]:
    """Required roles whose approvals are not complete (for a decided request: those that never came)."""
    counts: dict[str, int] = {}
    for role in request.signatures.filter(meaning=Signature.Meaning.APPROVE).values_list("role", flat=True):
        counts[role] = counts.get(role, 0) + 1
    return sorted(role for role, needed in request.policy.required_roles.items() if counts.get(role, 0) < needed)


def approval_notification_payload(*, request: ApprovalRequest, event: str, actor: Any = None,
                                  signature: Signature | None = None) -> dict[str, Any]:
    """The facts of one event, as JSON: what the webhook body carries and the email says."""
    signer = None
    if signature is not None:
        signer = {"username": signature.signer.get_username(), "printed_name": signature.printed_name,
                  "role": signature.role, "meaning": signature.meaning, "reason": signature.reason}
    elif actor is not None and getattr(actor, "is_authenticated", False):
        signer = {"username": actor.get_username(),
                  "printed_name": user_printed_name(actor)}
    version = request.model_version
    return {
        "event_id": str(uuid.uuid4()),
        "event": str(Event(event)),
        "request_id": request.pk,
        "kind": request.kind,
        "model": request.model.name,
        "version": version.version if version is not None else None,
        "environment": request.environment or None,
        "status": request.status,
        "requested_by": request.requested_by.get_username(),
        "signer": signer,
        "awaiting_roles": _awaiting_roles(request),
        "timestamp": timestamp_canonical(timezone.now()),
        "correlation_id": correlation_id_get(),
    }


def approval_notification_schedule(*, request: ApprovalRequest, event: str, actor: Any = None,
                                   signature: Signature | None = None) -> dict[str, Any]:
    """Snapshot the event now; fan it out after the surrounding transaction commits.

    Called by the approvals service inside its transaction. The fan-out is an outbox row
    (governance.outbox) written in that transaction and published on commit: a broker that is
    down leaves the row for the relay instead of failing the approval or losing its
    notification, and a rolled-back change leaves no row.
    """
    from governance.tasks import notification_fanout_queue

    payload = approval_notification_payload(request=request, event=event, actor=actor, signature=signature)
    notification_fanout_queue(payload)
    return payload


# --- 2. fan-out -----------------------------------------------------------------------------------

def notification_email_recipients(*, request: ApprovalRequest, awaiting_roles: list[str]) -> list[str]:
    """The requester and the active holders of the roles still to sign, minus who already signed decisively.

    Someone who approved or rejected already cannot sign again (one person, one required
    role), so they are not asked to. Users without an email address are skipped.
    """
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    signed = request.signatures.exclude(meaning=Signature.Meaning.REVIEWED).values_list("signer_id", flat=True)
    holders = users.filter(groups__name__in=awaiting_roles).exclude(pk__in=list(signed))
    emails = set(holders.values_list("email", flat=True))
    emails.update(users.filter(pk=request.requested_by_id).values_list("email", flat=True))
    return sorted(emails)


@transaction.atomic
def notification_fanout(*, payload: dict[str, Any]) -> list[NotificationDelivery]:
    """Create the deliveries of one event (idempotent) and return those still pending."""
    request = ApprovalRequest.objects.get(pk=payload["request_id"])
    targets = [(Channel.WEBHOOK, url) for url in settings.ATTEST_WEBHOOK_URLS]
    targets += [(Channel.EMAIL, address) for address in
                notification_email_recipients(request=request, awaiting_roles=payload["awaiting_roles"])]
    pending = []
    for channel, target in targets:
        delivery, _ = NotificationDelivery.objects.get_or_create(
            notification_id=payload["event_id"], channel=channel, target=target,
            defaults={"event": payload["event"], "approval_request": request, "payload": payload},
        )
        if delivery.status == DeliveryStatus.PENDING:
            pending.append(delivery)
    return pending


# --- 3. one delivery ------------------------------------------------------------------------------

def approval_request_admin_link(request_id: int) -> str:
    try:
        path = reverse("admin:governance_approvalrequest_change", args=[request_id])
    except NoReverseMatch:
        # The sign-off admin may not be registered in every deployment; the URL is Django's convention.
        path = f"/admin/governance/approvalrequest/{request_id}/change/"
    return settings.ATTEST_SITE_URL.rstrip("/") + path


def webhook_body(delivery: NotificationDelivery, *, sent_at: int) -> bytes:
    """The raw bytes signed and sent: the event's facts plus the send time (also in X-Attest-Timestamp)."""
    return json.dumps({**delivery.payload, "sent_at": sent_at}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _send_webhook(delivery: NotificationDelivery) -> int:
    secret = settings.ATTEST_WEBHOOK_SECRET
    if not secret:
        raise DeliveryRefused("ATTEST_WEBHOOK_SECRET is not set; unsigned webhooks are never sent")
    sent_at = int(timezone.now().timestamp())
    body = webhook_body(delivery, sent_at=sent_at)
    headers = {
        SIGNATURE_HEADER: webhook_signature(body, secret),
        TIMESTAMP_HEADER: str(sent_at),
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.notification_id),
    }
    return webhook_post(delivery.target, body, headers, timeout=settings.ATTEST_WEBHOOK_TIMEOUT_SECONDS,
                        allow_private=settings.ATTEST_WEBHOOK_ALLOW_PRIVATE,
                        ca_file=settings.ATTEST_WEBHOOK_CA_FILE)


def _send_email(delivery: NotificationDelivery) -> None:
    subject, body = email_render(delivery.payload, link=approval_request_admin_link(delivery.approval_request_id))
    message = EmailMessage(subject=subject, body=body, to=[delivery.target],
                           headers={"X-Attest-Event": delivery.event,
                                    "X-Attest-Delivery": str(delivery.notification_id)})
    try:
        if message.send(fail_silently=False) != 1:
            raise DeliveryFailed("the mail backend accepted no message")
    except OSError as exc:  # smtplib's errors are OSErrors
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take the row's lease and count the attempt, unless it is done or another worker holds it."""
    lease = now + dt.timedelta(seconds=settings.ATTEST_WEBHOOK_TIMEOUT_SECONDS) + _LEASE_SLACK
    return bool(NotificationDelivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now), pk=delivery_id, status=DeliveryStatus.PENDING,
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, lease_until=lease, updated_at=now))


def _record(delivery_id: int, *, status: str, status_code: int | None, error: str, at: dt.datetime) -> None:
    delivery = NotificationDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.status = status
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.lease_until = None
    if status == DeliveryStatus.SENT:
        delivery.sent_at = at
    delivery.attempt_log = [*delivery.attempt_log, {"attempt": delivery.attempts, "at": timestamp_canonical(at),
                                                    "status_code": status_code, "error": error}]
    delivery.full_clean()
    delivery.save(update_fields=["status", "last_status_code", "last_error", "lease_until", "sent_at",
                                 "attempt_log", "updated_at"])


def notification_deliver(*, delivery_id: int, final_attempt: bool) -> NotificationDelivery:
    """Make one attempt at one delivery and record it; returns the row as it ends.

    A row already sent or failed is returned untouched (nothing is sent twice). A refused
    delivery (blocked URL, redirect, no secret) is marked failed at once. A failed attempt
    leaves the row pending and raises DeliveryFailed for the task to retry, unless it was
    the last attempt, which marks the row failed. Raises NotificationBusy while another
    worker holds the row.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = _claim(delivery_id, now)
    delivery = NotificationDelivery.objects.get(pk=delivery_id)
    if not claimed:
        if delivery.status != DeliveryStatus.PENDING:
            return delivery
        raise NotificationBusy(f"delivery {delivery_id} is being sent by another worker")
    status_code = None
    try:
        if delivery.channel == Channel.WEBHOOK:
            status_code = _send_webhook(delivery)
        else:
            _send_email(delivery)
    except DeliveryRefused as exc:
        log.warning("notification %s to %s refused: %s", delivery.event, delivery.target, exc)
        with transaction.atomic():
            _record(delivery_id, status=DeliveryStatus.FAILED, status_code=exc.status_code, error=str(exc),
                    at=timezone.now())
        return NotificationDelivery.objects.get(pk=delivery_id)
    except DeliveryFailed as exc:
        outcome = DeliveryStatus.FAILED if final_attempt else DeliveryStatus.PENDING
        log.warning("notification %s to %s attempt %s failed: %s", delivery.event, delivery.target,
                    delivery.attempts, exc)
        with transaction.atomic():
            _record(delivery_id, status=outcome, status_code=exc.status_code, error=str(exc), at=timezone.now())
        if final_attempt:
            return NotificationDelivery.objects.get(pk=delivery_id)
        raise
    with transaction.atomic():
        _record(delivery_id, status=DeliveryStatus.SENT, status_code=status_code, error="", at=timezone.now())
    return NotificationDelivery.objects.get(pk=delivery_id)
