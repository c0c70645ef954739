"""What Attest knows of an MLflow Model Registry it imports from (governance/mlflow_import.py).

- `MlflowModelVersionLink`: one imported MLflow model version and the Attest model version it
  became. Its key (tracking URI, MLflow name, MLflow version) makes the import idempotent.
- `MlflowAliasState`: where each alias of an imported model pointed when Attest last looked,
  so a *move* is noticed once, not at every import.
- `MlflowAliasAlert`: a critical compliance finding: a governed alias (settings
  ATTEST_MLFLOW_GOVERNED_ALIASES) was moved to a version no approval covers. While one is open
  the gate denies the model with `open_critical_alert`; it resolves when the alias points at
  an approved (or deployed) version again.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import BaseModel


class MlflowModelVersionLink(BaseModel):
    """Invariant: (tracking_uri, mlflow_name, mlflow_version) is unique; the Attest version is never re-pointed."""

    tracking_uri = models.CharField(_("tracking URI"), max_length=500)
    mlflow_name = models.CharField(_("MLflow model name"), max_length=500)
    mlflow_version = models.PositiveIntegerField(_("MLflow version"))
    run_id = models.CharField(_("MLflow run id"), max_length=64, blank=True)
    source = models.CharField(_("MLflow source URI"), max_length=1000, blank=True)
    artifact_files = models.JSONField(_("artifact files (path, size, sha256)"), default=list, blank=True)
    datasets = models.JSONField(_("run's dataset inputs (name, digest, context, source)"), default=list, blank=True)
    model_version = models.OneToOneField("registry.ModelVersion", on_delete=models.PROTECT,
                                         related_name="mlflow_link")

    class Meta:
        verbose_name = _("MLflow model version link")
        constraints = [
            models.UniqueConstraint(fields=["tracking_uri", "mlflow_name", "mlflow_version"],
                                    name="mlflow_link_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.mlflow_name}/{self.mlflow_version} @ {self.tracking_uri}"


class MlflowAliasState(BaseModel):
    """Invariant: one row per (tracking_uri, mlflow_name, alias); `mlflow_version` is where it last pointed."""

    tracking_uri = models.CharField(_("tracking URI"), max_length=500)
    mlflow_name = models.CharField(_("MLflow model name"), max_length=500)
    alias = models.CharField(_("alias"), max_length=255)
    mlflow_version = models.PositiveIntegerField(_("MLflow version"))

    class Meta:
        verbose_name = _("MLflow alias state")
        constraints = [
            models.UniqueConstraint(fields=["tracking_uri", "mlflow_name", "alias"], name="mlflow_alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mlflow_name}@{self.alias} -> {self.mlflow_version}"


class MlflowAliasAlert(BaseModel):
    """Invariant: at most one open alert per (tracking_uri, mlflow_name, alias); severity is critical."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        RESOLVED = "resolved", _("resolved")

    tracking_uri = models.CharField(_("tracking URI"), max_length=500)
    mlflow_name = models.CharField(_("MLflow model name"), max_length=500)
    alias = models.CharField(_("alias"), max_length=255)
    mlflow_version = models.PositiveIntegerField(_("MLflow version"))
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT, related_name="mlflow_alerts")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="mlflow_alerts")
    severity = models.CharField(_("severity"), max_length=16, default="critical")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    message = models.CharField(_("message"), max_length=500)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("MLflow alias alert")
        constraints = [
            models.UniqueConstraint(fields=["tracking_uri", "mlflow_name", "alias"],
                                    condition=models.Q(status="open"), name="mlflow_alias_alert_one_open"),
        ]

    def __str__(self) -> str:
        return self.message
