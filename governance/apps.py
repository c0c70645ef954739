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

        from governance.demo_approvals import DEMO_STEP_ORDER, demo_pending_request
        from registry.demo import demo_step_add

        demo_step_add(demo_pending_request, order=DEMO_STEP_ORDER)  # after reports and monitoring

        # Reports (docs/reports.md): the gate and approvals read a version's reports through the
        # provider; load_demo evaluates the demo models.
        from governance.demo_evaluations import demo_evaluations
        from governance.report_selectors import model_version_reports_latest
        from governance.selectors import report_provider_set

        report_provider_set(model_version_reports_latest)
        demo_step_add(demo_evaluations, order=10)

        # MLflow (issue 8): importing the module registers the webhook's import task in every
        # process, the worker's too. An unapproved alias move is a monitoring ComplianceAlert,
        # which the gate's alert check (installed by monitoring) already reads.
        import governance.mlflow_import  # noqa: F401

        post_migrate.connect(seed_defaults, sender=self, dispatch_uid="governance_seed_defaults")
        # No sender: it runs after each app's permissions exist (auth's handler is connected first).
        post_migrate.connect(grant_admin_permissions, dispatch_uid="governance_admin_permissions")
