"""The transactional outbox: a task a state change asks for, written in the change's own transaction.

A side effect that travels through the broker (a notification's fan-out, one delivery) is not
published from inside the transaction: a broker that is down would either fail the change or
lose the message. Its intent is a row here, committed (or rolled back) with the change; after
commit the row is handed to Celery, and a relay re-publishes rows the broker did not take
(governance.outbox). The row is operational state, like NotificationDelivery: the change it
serves already has its audit event.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    """One Celery task to publish: its name and JSON arguments, and how publishing went.

    Invariants: `sent_at` is set once the broker accepted the message (or, with Celery eager,
    once the task ran in-process) and never unset; a row with `sent_at` null is pending and is
    what the relay publishes; `attempts` counts hand-offs tried, `last_error` says why the latest
    failed. Publishing is at least once: the consumer task is idempotent by the facts in `args`.
    """

    task_name = models.CharField(_("Celery task name"), max_length=200)
    args = models.JSONField(_("positional arguments (JSON)"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("handed to the broker at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("hand-offs tried"), default=0)
    last_attempt_at = models.DateTimeField(_("last hand-off tried at"), null=True, blank=True)
    last_error = models.TextField(_("why the last hand-off failed"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            # The relay reads only pending rows, oldest first; sent rows are most of the table.
            models.Index(fields=["id"], condition=Q(sent_at__isnull=True), name="outbox_pending_idx"),
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "pending"
        return f"outbox #{self.pk} {self.task_name} ({state})"
