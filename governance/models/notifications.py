"""Outbound notifications about approval requests: one row per (event, channel, target).

A row is the delivery record the issue asks for: which event went (or did not go) where,
how many attempts it took and how the last one ended. It is operational state about an
outbound message, not governed state: the governed change it reports already has its audit
event (governance.approval.*), whose correlation id the notification carries.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import BaseModel


class NotificationDelivery(BaseModel):
    """One notification of one approval-request event to one webhook URL or one email address.

    Invariants: (notification_id, channel, target) is unique, so fanning an event out twice
    creates no second row and a delivered row is never sent again; status moves
    pending -> sent | failed only; `attempts` counts the attempts made (claims), and
    `last_status_code` / `last_error` describe the latest one and `attempt_log` every one; `lease_until` keeps two
    workers from sending the same row at once.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", _("webhook")
        EMAIL = "email", _("email")

    class Event(models.TextChoices):
        OPENED = "approval_request.opened", _("request opened")
        SIGNED = "approval_request.signed", _("request signed")
        APPROVED = "approval_request.approved", _("request approved")
        REJECTED = "approval_request.rejected", _("request rejected")
        EXPIRED = "approval_request.expired", _("request expired")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    notification_id = models.UUIDField(_("notification id (one per event)"), db_index=True)
    event = models.CharField(_("event"), max_length=40, choices=Event.choices)
    approval_request = models.ForeignKey("governance.ApprovalRequest", on_delete=models.PROTECT,
                                         related_name="notification_deliveries")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    target = models.CharField(_("target (URL or email address)"), max_length=2000)
    payload = models.JSONField(_("facts of the event"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveIntegerField(_("last HTTP status code"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("being sent until"), null=True, blank=True)
    attempt_log = models.JSONField(_("every attempt: number, time, status code, error"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        constraints = [
            models.UniqueConstraint(fields=["notification_id", "channel", "target"],
                                    name="notification_delivery_once"),
            models.CheckConstraint(condition=models.Q(status__in=["pending", "sent", "failed"]),
                                   name="notification_delivery_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "channel"], name="notification_status_idx")]

    def __str__(self) -> str:
        return f"{self.event} #{self.approval_request_id} → {self.channel} {self.target} ({self.status})"
