from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.gate import gate_alert_check_register
        from monitoring.selectors import open_critical_alert_message, open_critical_alert_statement

        # The gate learns of open critical alerts through the hook governance offers (and reads
        # the alert with its other reads, in one round trip).
        gate_alert_check_register(open_critical_alert_message, statement=open_critical_alert_statement)

        from governance.mlflow_import import mlflow_alias_alert_handler_set
        from monitoring.services.alerts import compliance_alert_raise_alias_moved

        # An MLflow alias moved to an unapproved version is a compliance alert like a drift breach.
        mlflow_alias_alert_handler_set(compliance_alert_raise_alias_moved)

        from monitoring.demo import DEMO_STEP_ORDER, demo_monitoring
        from registry.demo import demo_step_add

        # load_demo: after the evaluations (the high tier needs reports), before governance's pending request.
        demo_step_add(demo_monitoring, order=DEMO_STEP_ORDER)
