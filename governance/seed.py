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
