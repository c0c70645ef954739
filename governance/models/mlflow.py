"""What Attest knows of an MLflow Model Registry it imports from (governance/mlflow_import.py).

- `MlflowModelVersionLink`: one imported MLflow model version and the Attest model version it
  became. Its key (tracking URI, MLflow name, MLflow version) makes the import idempotent.
- `MlflowAliasState`: where each alias of an imported model pointed when Attest last looked,
  so a *move* is noticed once, not at every import.

A governed alias (settings ATTEST_MLFLOW_GOVERNED_ALIASES) moved to a version no approval
covers raises a critical compliance alert of kind `alias_moved`: monitoring's
`ComplianceAlert`, like a drift breach (it replaced this module's `MlflowAliasAlert`, whose rows
migration monitoring 0003 copied over before governance 0013 dropped its table).
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

