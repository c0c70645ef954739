"""The admin app with Attest's site (governance/admin_dashboard.py) as its default site.

Listed in INSTALLED_APPS instead of "django.contrib.admin": the documented way to replace
the default site (Django: "Overriding the default admin site").
"""

from django.contrib.admin.apps import AdminConfig


class AttestAdminConfig(AdminConfig):
    default_site = "governance.admin_dashboard.AttestAdminSite"
