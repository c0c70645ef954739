from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.seed import grant_admin_permissions, seed_defaults
        from governance.selectors import lineage_deployments_add
        from governance.services.approvals import retraining_registration_check
        from registry.hooks import model_version_register_guard_add
        from registry.selectors import lineage_downstream_provider_register

        # Governance adds its rules and nodes to registry use cases through the registry's hooks.
        model_version_register_guard_add(retraining_registration_check)
        lineage_downstream_provider_register(lineage_deployments_add)

        post_migrate.connect(seed_defaults, sender=self, dispatch_uid="governance_seed_defaults")
        # No sender: it runs after each app's permissions exist (auth's handler is connected first).
        post_migrate.connect(grant_admin_permissions, dispatch_uid="governance_admin_permissions")
