"""Deployments: which model version went live in which environment, when, and on which gate decision."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel


class Deployment(AppendOnlyModel):
    """A model version going live in an environment. Never edited: a rollback is a new row.

    Invariants: it cites an allowing gate decision for the same model version, environment
    and artifact sha256, and a decision is cited by one deployment at most; what is live in
    an environment at time T is, per model, the latest deployment with deployed_at <= T.
    """

    edit_refusal = "Deployments are history; a rollback is a new deployment."
    delete_refusal = "Deployments are history and are never deleted."

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                      related_name="deployments")
    environment = models.CharField(_("environment"), max_length=50)
    artifact_sha256 = models.CharField(_("artifact sha256"), max_length=64)
    decision = models.OneToOneField("governance.GateDecision", on_delete=models.PROTECT,
                                    related_name="deployment")
    approval_request = models.ForeignKey("governance.ApprovalRequest", on_delete=models.PROTECT, null=True,
                                         blank=True, related_name="deployments")
    previous = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="successors")
    is_rollback = models.BooleanField(_("rollback"), default=False)
    deployed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="deployments")
    deployed_at = models.DateTimeField(_("deployed at"), db_index=True)

    class Meta:
        ordering = ["-deployed_at", "-id"]
        verbose_name = _("deployment")
        verbose_name_plural = _("deployments")
        indexes = [models.Index(fields=["environment", "model", "deployed_at"], name="deployment_live_idx")]

    def __str__(self) -> str:
        return f"{self.model_version} → {self.environment} at {self.deployed_at:%Y-%m-%d %H:%M}"
