from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.seed import grant_admin_permissions, seed_defaults

        post_migrate.connect(seed_defaults, sender=self, dispatch_uid="governance_seed_defaults")
        # No sender: it runs after each app's permissions exist (auth's handler is connected first).
        post_migrate.connect(grant_admin_permissions, dispatch_uid="governance_admin_permissions")
