"""The admin app with Attest's site (governance/admin_dashboard.py) as its default site.

Listed in INSTALLED_APPS instead of "django.contrib.admin": the documented way to replace
the default site (Django: "Overriding the default admin site"). Being the project's admin, it
is also where monitoring's readers are handed to governance's dashboard: governance never
imports monitoring (monitoring -> governance -> registry).
"""

from django.contrib.admin.apps import AdminConfig
from django.urls import NoReverseMatch, reverse

_MONITORING_ADMIN = {"ComplianceAlert": "monitoring_compliancealert", "DriftMonitor": "monitoring_driftmonitor"}


def monitoring_admin_url(obj, *, chart: bool = False) -> str:
    """The admin page of an alert or monitor (None: the open alerts inbox), or a monitor's drift chart; "" if none."""
    try:
        if obj is None:
            return reverse("admin:monitoring_compliancealert_inbox")
        if chart:
            return reverse("admin:monitoring_driftmonitor_chart", args=[obj.pk])
        return reverse(f"admin:{_MONITORING_ADMIN[type(obj).__name__]}_change", args=[obj.pk])
    except (NoReverseMatch, KeyError):
        return ""


class AttestAdminConfig(AdminConfig):
    default_site = "governance.admin_dashboard.AttestAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.apps import apps

        from governance.dashboard_selectors import monitoring_readers_set

        if not apps.is_installed("monitoring"):
            return
        from monitoring.access import can_handle_alert
        from monitoring.selectors import compliance_alert_list, drift_monitor_list

        monitoring_readers_set(alert_list=compliance_alert_list, monitor_list=drift_monitor_list,
                               admin_url=monitoring_admin_url, can_handle_alert=can_handle_alert)
