"""Approval requests and the electronic signatures on them (21 CFR 11.50, 11.70)."""

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel

if TYPE_CHECKING:
    from governance.models.audit import AuditQueueEntry


class ApprovalRequest(models.Model):
    """A request to deploy a model version to an environment, or to retrain a model.

    Invariants: status moves only pending -> approved | rejected | withdrawn | expired
    (governance.services.approvals guards it); `evidence` is the record people sign (the
    artifact, dataset and report hashes and the policy version at opening) and
    `evidence_sha256` is sha256 of its canonical JSON; both are written once at opening;
    `policy` is the version the request was opened under and stays so when the tier's
    policy gets a new version.
    """

    class Kind(models.TextChoices):
        DEPLOYMENT = "deployment", _("deployment")
        RETRAINING = "retraining", _("retraining")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        WITHDRAWN = "withdrawn", _("withdrawn")
        EXPIRED = "expired", _("expired")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT, related_name="approval_requests")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="approval_requests")
    environment = models.CharField(_("environment"), max_length=50, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    policy = models.ForeignKey("governance.ApprovalPolicy", on_delete=models.PROTECT, related_name="requests")
    evidence = models.JSONField(_("evidence signed"))
    evidence_sha256 = models.CharField(_("evidence sha256"), max_length=64)
    report_refs = models.JSONField(_("reports (id and sha256)"), default=list, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="approval_requests_made")
    created_at = models.DateTimeField(_("opened at"), auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.TextField(_("decision reason"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        indexes = [
            models.Index(fields=["model_version", "environment", "status"], name="approval_req_gate_idx"),
            models.Index(fields=["model", "kind", "status"], name="approval_req_model_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="deployment", model_version__isnull=False) & ~models.Q(environment=""))
                | models.Q(kind="retraining"),
                name="approval_req_deployment_has_target",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "rejected", "withdrawn", "expired"]),
                name="approval_req_status_valid",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DEPLOYMENT:
            return f"deployment request #{self.pk} ({self.evidence.get('model')} "\
                   f"v{self.evidence.get('version')} → {self.environment})"
        return f"retraining request #{self.pk} ({self.evidence.get('model')})"


class Signature(AppendOnlyModel):
    """One electronic signature on an approval request. Never edited, never deleted.

    Invariants: `record_sha256` is the sha256 of the canonical record of the request it was
    made on (governance.services.signatures.approval_request_record_sha256), so a signature
    moved to another request, or kept after a byte of the record changed, no longer verifies;
    `printed_name`, `role`, `meaning` and `signed_at` (UTC) are its manifestation; a
    rejection carries a reason.
    """

    edit_refusal = "Signatures are never edited; a new decision is a new signature."
    delete_refusal = "Signatures are never deleted."

    class Meaning(models.TextChoices):
        APPROVE = "approve", _("approve")
        REJECT = "reject", _("reject")
        REVIEWED = "reviewed", _("reviewed")

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(_("printed name"), max_length=300)
    role = models.CharField(_("role signed as"), max_length=32)
    meaning = models.CharField(_("meaning"), max_length=16, choices=Meaning.choices)
    reason = models.TextField(_("reason"), blank=True)
    signed_at = models.DateTimeField(_("signed at (UTC)"))
    record_sha256 = models.CharField(_("sha256 of the record signed"), max_length=64)

    class Meta:
        ordering = ["signed_at", "id"]
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        constraints = [
            models.CheckConstraint(condition=~models.Q(meaning="reject", reason=""),
                                   name="signature_reject_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.printed_name} ({self.role}) {self.meaning} #{self.request_id}"


class SigningCredentialState(models.Model):
    """A user's failed signing re-authentications and, after five in a row, the lock.

    Invariant: `locked_at` is set once `failed_attempts` reaches the limit and only a
    compliance officer or an administrator clears it (governance.services.signatures).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="signing_state")
    failed_attempts = models.PositiveIntegerField(_("failed re-authentications in a row"), default=0)
    locked_at = models.DateTimeField(_("signing locked at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("signing credential state")
        verbose_name_plural = _("signing credential states")

    def __str__(self) -> str:
        return f"signing state of {self.user} ({'locked' if self.locked_at else self.failed_attempts})"


def _decision_id() -> uuid.UUID:
    return uuid.uuid4()


class GateDecision(AppendOnlyModel):
    """One answer of the deployment gate, kept as evidence. Never edited.

    Invariants: `allowed` is true only when every check in `checks` passed; `inputs` are what
    the caller asked with; `decision_id` is what a deployment record cites.
    """

    edit_refusal = "Gate decisions are evidence; they are never edited."

    decision_id = models.UUIDField(_("decision id"), default=_decision_id, unique=True, editable=False)
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                      related_name="gate_decisions")
    environment = models.CharField(_("environment"), max_length=50)
    artifact_sha256 = models.CharField(_("artifact sha256 asked about"), max_length=64)
    allowed = models.BooleanField(_("allowed"))
    checks = models.JSONField(_("checks"))
    approval_request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="gate_decisions")
    evaluated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="gate_decisions")
    evaluated_at = models.DateTimeField(_("evaluated at"))
    # Not a column: gate_evaluate sets it to the decision's queued audit event, whose seq the answer
    # carries once the event is chained.
    audit_entry: "AuditQueueEntry"

    class Meta:
        ordering = ["-evaluated_at"]
        verbose_name = _("gate decision")
        verbose_name_plural = _("gate decisions")

    def __str__(self) -> str:
        return f"gate {'allowed' if self.allowed else 'denied'} {self.decision_id}"
