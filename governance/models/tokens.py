"""API tokens for machines: stored only as a sha256, shown once, scoped, expiring, revocable."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """A bearer token. Invariant: the secret itself is never stored, only its sha256."""

    class Scope(models.TextChoices):
        REGISTRY_READ = "registry:read", _("read the registry")
        REGISTRY_WRITE = "registry:write", _("register datasets, models and versions")
        GATE_CHECK = "gate:check", _("ask the deployment gate")
        DEPLOYMENTS_WRITE = "deployments:write", _("record deployments")
        APPROVALS_WRITE = "approvals:write", _("open approval requests")
        MONITORING_WRITE = "monitoring:write", _("send monitoring batches")
        AUDIT_READ = "audit:read", _("read and verify the audit log")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True)
    key_sha256 = models.CharField(_("key sha256"), max_length=64, unique=True)
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
