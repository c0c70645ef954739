"""Attest's admin site: the index is the officers' dashboard; one extra page verifies the audit log.

`AttestAdminSite` is the project's default admin site (mlops_site/admin_apps.py names it), so
every `@admin.register` lands here. The index keeps Django's app list and adds, above it, what
governance_dashboard_selectors read for the logged-in user: what waits for their signature,
open alerts, models by tier and status, recent gate denials, the audit log's state and KPIs.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from mlops_site.common.errors import ApplicationError


class AttestAdminSite(admin.AdminSite):
    site_header = "Attest"
    site_title = "Attest"
    index_title = "Dashboard"
    index_template = "admin/attest/dashboard.html"
    # The app list beside every page took 270 of a 1400px window's pixels and pushed the audit log's
    # object and hash columns out of sight; the dashboard and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False

    def index(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        from governance.dashboard_selectors import dashboard_context

        context = {**dashboard_context(user=request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)

    def get_urls(self):
        return [
            path("audit-log/verify/", self.admin_view(self.audit_verify_view), name="audit_log_verify"),
            path("report-chart/<int:pk>.png", self.admin_view(self.report_chart_view), name="report_chart_png"),
            *super().get_urls(),
        ]

    def audit_verify_view(self, request: HttpRequest) -> HttpResponse:
        """POST only (admin_view adds CSRF protection): verify the whole log now and record the verification."""
        from governance.services.audit_review import audit_log_verification_record

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("governance.view_auditevent"):
            raise PermissionDenied("Verifying the audit log needs a role that reads it.")
        try:
            result = audit_log_verification_record(actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"Audit log verified: {result.as_line()} "
                                       f"({result.checkpoints_checked} signed checkpoint(s) checked).", level)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            target = reverse("admin:index")
        return HttpResponseRedirect(target)

    def report_chart_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A report's chart (PNG bytes stored with the report), if the user may read its model version."""
        from governance.models import ReportChart
        from registry.selectors import model_version_list

        visible = model_version_list(user=request.user).order_by().values("pk")
        chart = ReportChart.objects.filter(pk=pk, report__model_version__in=visible).only("png").first()
        if chart is None:
            raise Http404("No such chart.")
        response = HttpResponse(bytes(chart.png), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"  # immutable evidence, but only for this user
        return response

    def message_user(self, request: HttpRequest, message: str, level: int) -> None:
        messages.add_message(request, level, message)
