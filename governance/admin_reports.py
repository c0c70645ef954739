"""Read-only admin of evaluations and reports: results, charts as images, and the policy's thresholds.

Reports are evidence: never added, changed or deleted here. A user sees the reports of the
models of their teams (governance roles and administrators see all), as in the API.
"""

import json
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from governance.models import Evaluation, Report
from governance.report_selectors import report_thresholds, scoped_to_user
from mlops_site.common.admin import ReadOnlyAdmin


def _pre(data: Any):
    return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto; margin: 0">{}</pre>',
                       json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str))


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ["id", "model_version", "dataset_version", "status", "progress", "failure_code", "requested_by",
                    "created_at", "finished_at"]
    list_filter = ["status", "task", "predictions"]
    search_fields = ["model_version__model__name", "failure_code"]
    fields = readonly_fields = ("model_version", "dataset_version", "sensitive_features", "task", "target_column",
                                "positive_label", "predictions", "options", "status", "progress", "failure_code",
                                "failure_reason", "requested_by", "created_at", "started_at", "finished_at",
                                "report_links")

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("model_version__model", "dataset_version__dataset",
                                                          "requested_by")
        return scoped_to_user(qs, request.user, "model_version__")

    @admin.display(description=_("reports"))
    def report_links(self, obj: Evaluation):
        reports = list(obj.reports.all())
        if not reports:
            return "—"
        return format_html_join(", ", '<a href="{}">{} report #{}</a>',
                                ((reverse("admin:governance_report_change", args=[r.pk]), r.kind, r.pk)
                                 for r in reports))


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "model_version", "evaluation", "short_sha256", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["model_version__model__name", "sha256", "artifact_sha256", "dataset_sha256"]
    fields = readonly_fields = ("kind", "model_version", "evaluation", "sha256", "artifact_sha256", "dataset_sha256",
                                "created_at", "library_versions", "threshold_results", "chart_images", "summary",
                                "results_json")

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("model_version__model", "evaluation")
        return scoped_to_user(qs, request.user, "model_version__").prefetch_related("charts")

    @admin.display(description=_("sha256"), ordering="sha256")
    def short_sha256(self, obj: Report) -> str:
        return f"{obj.sha256[:12]}…"

    @admin.display(description=_("thresholds of the policy in force"))
    def threshold_results(self, obj: Report):
        rows = report_thresholds(obj)
        if not rows:
            return "No threshold applies to this report." if obj.kind == Report.Kind.FAIRNESS else "—"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (row["metric"], row["limit"], "—" if row["value"] is None else f"{row['value']:.4f}",
             "" if not row["where"] else f"{row['where'].get('feature')}={row['where'].get('group')}",
             format_html('<strong style="color:{}">{}</strong>', "#2e7d32" if row["passed"] else "#c62828",
                         "pass" if row["passed"] else "FAIL"))
            for row in rows))
        return format_html("<table><tr><th>metric</th><th>limit</th><th>value</th><th>where</th><th>verdict</th>"
                           "</tr>{}</table><p>{}</p>", body, rows[0]["policy"])

    @admin.display(description=_("charts"))
    def chart_images(self, obj: Report):
        charts = list(obj.charts.all())
        if not charts:
            return "—"
        return format_html_join(
            "", '<figure style="margin: 0 0 1.5em 0"><img src="{}" alt="{}" width="960" '
                'style="max-width: 100%; border: 1px solid #ddd"><figcaption>{} — sha256 <code>{}</code>'
                "</figcaption></figure>",
            ((reverse("governance:report-chart", kwargs={"pk": obj.pk, "name": c.name}), c.title or c.name,
              c.title or c.name, c.sha256) for c in charts))

    @admin.display(description=_("summary"))
    def summary(self, obj: Report):
        results = obj.results or {}
        if obj.kind == Report.Kind.FAIRNESS:
            return _pre({"headline": results.get("headline"), "overall": results.get("overall"),
                         "binning": results.get("binning"), "min_group_size": results.get("min_group_size")})
        return _pre({key: results.get(key) for key in ("explainer_class", "model_class", "output", "sample",
                                                        "top_features", "proxy_check")})

    @admin.display(description=_("results (JSON)"))
    def results_json(self, obj: Report):
        return _pre(obj.results)
