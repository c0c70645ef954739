"""Celery tasks of the governance app: each loads what it needs and calls one service.

The beat schedule (settings.CELERY_BEAT_SCHEDULE) runs the sequencer every few seconds and the
checkpoint every few minutes; the sequencer task also asks for a checkpoint as soon as
ATTEST_CHECKPOINT_EVERY_EVENTS events are past the latest one. Both are idempotent.
"""

from celery import shared_task

from governance.audit import audit_log_sequence
from governance.checkpoints import audit_checkpoint_create, audit_checkpoint_due


@shared_task(name="governance.tasks.audit_log_sequence_task")
def audit_log_sequence_task() -> int:
    """Chain queued audit entries (a safety net: they are chained on commit already)."""
    appended = audit_log_sequence()
    if audit_checkpoint_due():
        audit_checkpoint_create_task.delay()
    return appended


@shared_task(name="governance.tasks.audit_checkpoint_create_task")
def audit_checkpoint_create_task() -> int:
    """Sign a checkpoint over every event so far; returns its size."""
    return audit_checkpoint_create().size


# --- notifications and expiry (docs/notifications.md) ------------------------------------------

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from governance.notify import DeliveryFailed  # noqa: E402
from governance.outbox import outbox_eager_runner, outbox_enqueue, outbox_prune, outbox_relay  # noqa: E402
from governance.services.approvals import approval_requests_expire_due  # noqa: E402
from governance.services.notifications import (  # noqa: E402
    NotificationBusy,
    notification_deliver,
    notification_fanout,
)


@shared_task(name="governance.tasks.notification_fanout_task")
def notification_fanout_task(payload: dict) -> int:
    """Create the deliveries of one approval-request event and queue each; returns how many are pending.

    Idempotent by the event id in the payload (written once, in the outbox row that carried
    it here): a second run creates no delivery and re-queues only those still pending, which
    the delivery task sends at most once each.
    """
    with transaction.atomic():
        pending = notification_fanout(payload=payload)
        for delivery in pending:
            # An outbox row per delivery, in the fan-out's transaction: queued once it commits
            # (the worker that picks a delivery up must see its row) and kept if the broker is down.
            outbox_enqueue(notification_deliver_task.name, delivery.pk)
    return len(pending)


def notification_fanout_queue(payload: dict) -> None:
    """Queue the fan-out of one event: an outbox row in the caller's transaction, published on commit."""
    outbox_enqueue(notification_fanout_task.name, payload)


@outbox_eager_runner("governance.tasks.notification_deliver_task")
def _deliver_eager(delivery_id: int) -> None:
    # Eager mode (no broker: development and the embedded test run) has no worker to come back
    # later, and with task_eager_propagates Celery raises its Retry instead of re-running the
    # task. Make the same attempts here, at once: there is nobody to wait for a backoff.
    limit = notification_deliver_task.max_retries
    for attempt in range(limit + 1):
        try:
            notification_deliver(delivery_id=delivery_id, final_attempt=attempt == limit)
            return
        except (DeliveryFailed, NotificationBusy):
            continue


@shared_task(name="governance.tasks.notification_deliver_task", bind=True,
             autoretry_for=(DeliveryFailed, NotificationBusy), retry_backoff=True,
             retry_backoff_max=settings.ATTEST_NOTIFY_RETRY_BACKOFF_MAX_SECONDS, retry_jitter=True,
             max_retries=settings.ATTEST_NOTIFY_MAX_RETRIES)
def notification_deliver_task(self, delivery_id: int) -> str:
    """One attempt at one delivery; retried with exponential backoff; returns the row's status."""
    final = self.request.retries >= self.max_retries
    return notification_deliver(delivery_id=delivery_id, final_attempt=final).status


@shared_task(name="governance.tasks.outbox_relay_task")
def outbox_relay_task() -> int:
    """Publish outbox rows the broker did not take on commit (the beat schedule); returns how many were sent."""
    return outbox_relay().sent


@shared_task(name="governance.tasks.outbox_prune_task")
def outbox_prune_task() -> int:
    """Delete outbox rows sent more than ATTEST_OUTBOX_KEEP_DAYS ago (the beat schedule); returns how many."""
    return outbox_prune(keep_days=settings.ATTEST_OUTBOX_KEEP_DAYS)


@shared_task(name="governance.tasks.approval_requests_expire_task")
def approval_requests_expire_task() -> int:
    """Expire every pending approval request past its policy's maximum age; returns how many."""
    return approval_requests_expire_due()


# --- evaluations (docs/reports.md) ------------------------------------------------------------------

from governance.services.evaluations import evaluation_run, evaluations_stale_fail  # noqa: E402


@shared_task(name="governance.tasks.evaluation_run_task", acks_late=True)
def evaluation_run_task(evaluation_id: int) -> str:
    """Compute one evaluation's reports; a second delivery of a finished evaluation does nothing. Returns the status."""
    return evaluation_run(evaluation_id=evaluation_id).status


@shared_task(name="governance.tasks.evaluations_stale_fail_task")
def evaluations_stale_fail_task() -> int:
    """Fail evaluations left `running` by a lost worker whose task never came back (the beat schedule)."""
    return len(evaluations_stale_fail())


# --- dossiers (docs/dossier.md) ----------------------------------------------------------------------

@shared_task(name="governance.tasks.dossier_generate_task", acks_late=True)
def dossier_generate_task(model_id: int, version: int | None = None, actor_id: int | None = None) -> str:
    """Generate and store one dossier (after the transaction that asked for it committed); returns its sha256."""
    from django.contrib.auth import get_user_model

    from governance.services.dossiers import dossier_generate
    from registry.models import RegisteredModel

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    model = RegisteredModel.objects.get(pk=model_id)
    return dossier_generate(actor=actor, model=model, version=version).dossier.sha256
