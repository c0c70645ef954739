"""Rows the service cannot run without: the roles, the audit chain head, version 1 of each policy.

They are created by data migrations (0002, 0007). The same idempotent functions also run on
post_migrate, which Django sends after `migrate` and after a `flush` (pytest-django empties the
database between transactional tests), so the rows are back whenever the tables are.
"""

import importlib

from django.apps import apps as global_apps

_SEED_MIGRATIONS = ("0002_chain_head_and_roles", "0007_default_approval_policies")


def seed_defaults(sender=None, *, using: str = "default", apps=global_apps, **kwargs) -> None:
    for name in _SEED_MIGRATIONS:
        importlib.import_module(f"governance.migrations.{name}").forwards(apps, None)


# Django's model permissions, which the admin checks before Attest's own rules (team scoping
# in the querysets, the permission matrix in the services) narrow them down further.
_ADMIN_APPS = ("registry", "governance", "monitoring")
_REGISTRY_WRITERS = ("data_scientist", "ml_engineer")
# The audit log is read by the roles that review the whole registry (as in the API); tokens only by admins.
_AUDIT_READERS = ("model_validator", "compliance_officer", "risk_officer", "auditor")
_AUDIT_MODELS = ("auditevent", "auditcheckpoint", "auditqueueentry", "auditmerklenode")
_ROLES = ("data_scientist", "ml_engineer", "model_validator", "compliance_officer", "risk_officer", "auditor",
          "ci_service")


def grant_admin_permissions(sender=None, *, apps=global_apps, **kwargs) -> None:
    """Every role may view the governed records in the admin; registry authors may add and change."""
    if sender is None or sender.label not in _ADMIN_APPS:
        return
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    app_permissions = Permission.objects.filter(content_type__app_label=sender.label)
    view = app_permissions.filter(codename__startswith="view_").exclude(codename="view_apitoken")
    for group in Group.objects.filter(name__in=_ROLES):
        visible = view if group.name in _AUDIT_READERS else view.exclude(content_type__model__in=_AUDIT_MODELS)
        group.permissions.add(*visible)
        if group.name in _REGISTRY_WRITERS and sender.label == "registry":
            group.permissions.add(*app_permissions.filter(codename__regex=r"^(add|change)_"))
