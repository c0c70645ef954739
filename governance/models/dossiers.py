"""Dossiers: each generated PDF, kept as evidence of what a regulator was given."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel


class Dossier(AppendOnlyModel):
    """One generated dossier PDF of a model (all versions, or one). Never edited, never deleted.

    Invariants: `sha256` and `size` are those of the stored PDF bytes (content-addressed under
    `storage_key`); `manifest_sha256` is the evidence-manifest hash printed on its cover;
    `checkpoint_size` / `checkpoint_root` name the signed checkpoint it was built against.
    """

    edit_refusal = "Dossiers are evidence of what was issued; generate a new one instead."
    delete_refusal = "Dossiers are never deleted."

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT, related_name="dossiers")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="dossiers")
    sha256 = models.CharField(_("PDF sha256"), max_length=64, db_index=True)
    size = models.BigIntegerField(_("PDF size in bytes"))
    pages = models.PositiveIntegerField(_("pages"))
    storage_key = models.CharField(_("storage key"), max_length=200)
    manifest_sha256 = models.CharField(_("evidence manifest sha256"), max_length=64)
    checkpoint_size = models.BigIntegerField(_("checkpoint size"), default=0)
    checkpoint_root = models.CharField(_("checkpoint root"), max_length=64, blank=True)
    audit_events = models.PositiveIntegerField(_("audit events of the model"), default=0)
    generated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="dossiers_generated")
    generated_at = models.DateTimeField(_("generated at"), db_index=True)

    class Meta:
        ordering = ["-generated_at", "-id"]
        verbose_name = _("dossier")
        verbose_name_plural = _("dossiers")

    def __str__(self) -> str:
        scope = f"v{self.model_version.version}" if self.model_version is not None else "all versions"
        return f"dossier of {self.model.name} ({scope}) {self.sha256[:12]}"
