"""Back-office for monitoring: monitors with their drift over time, an alerts inbox, read-only evidence.

- A monitor's page shows, per watched feature, its statistic over time against its threshold
  (a matplotlib PNG drawn with the Agg backend, served to those who may read the monitor) and
  the model's active alerts.
- The alerts inbox lists active alerts, critical first, for compliance officers (and whoever
  may read them); each alert has a page where it is acknowledged, resolved or dismissed. The
  form collects input; the services decide (a critical alert needs a compliance officer's
  password: the e-signature), and refusals are shown in words.
- An `alias_moved` alert (an MLflow alias moved to an unapproved version) has no monitor: its
  pages show where the alias went instead of a drift chart.
- Batches and results are evidence: read-only.
Querysets are the API's selectors, so a user reads here what the API would show them.
"""

import datetime as dt
import io
import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from governance.selectors import user_printed_name
from mlops_site.common.admin import ReadOnlyAdmin
from mlops_site.common.errors import ApplicationError
from monitoring import selectors
from monitoring.access import can_handle_alert, can_sign_alert
from monitoring.models import ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch, Severity
from monitoring.services.alerts import (
    TRANSITIONS,
    alert_signature_verify,
    compliance_alert_acknowledge,
    compliance_alert_dismiss,
    compliance_alert_resolve,
)

CHART_RESULTS = 200  # the latest results drawn


def _utc(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _watched(monitor: DriftMonitor) -> str:
    return f"{monitor.model_version} @ {monitor.environment}"


def _pre(data: Any):
    return format_html('<pre style="white-space: pre-wrap; word-break: break-all; margin: 0">{}</pre>',
                       json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def drift_chart_figure(monitor: DriftMonitor):
    """One panel per watched feature over time against its threshold, drifted checks in red.

    What is drawn is what the threshold is compared with: the p-value for the p-value tests (ks,
    chisquare: drifted below the threshold, on a log axis since p-values span decades), the
    distance for the others (drifted at or above it).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    from monitoring.stats import P_VALUE_TESTS  # numpy and scipy: only when a chart is drawn

    results = list(monitor.results.order_by("-checked_at", "-id")[:CHART_RESULTS])[::-1]
    names = monitor.feature_names
    figure = Figure(figsize=(8, max(2.0, 1.9 * len(names))), dpi=100, layout="constrained")
    # One time axis for all panels (the same checks), labelled once at the bottom.
    axes = figure.subplots(len(names), 1, squeeze=False, sharex=True)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        points = []
        for result in results:
            row = next((f for f in result.features if f.get("feature") == name), None)
            if row is None:
                continue
            value = row.get("p_value" if row.get("test") in P_VALUE_TESTS else "statistic")
            if value is not None:
                points.append((result.checked_at, value, row.get("threshold"), row.get("drifted"), row.get("test")))
        ax.set_title(f"{name}" + (f" ({points[-1][4]})" if points else " (no result yet)"), fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if not points:
            continue
        times = [p[0] for p in points]
        ax.plot(times, [p[1] for p in points], color="#1f4e79", marker="o", markersize=3, linewidth=1)
        drifted = [p for p in points if p[3]]
        if drifted:
            ax.scatter([p[0] for p in drifted], [p[1] for p in drifted], color="#c0392b", zorder=3, s=18,
                       label="drifted")
        thresholds = [p[2] for p in points if p[2] is not None]
        if thresholds:
            ax.axhline(thresholds[-1], color="#888888", linestyle="--", linewidth=1, label="threshold")
        if points[-1][4] in P_VALUE_TESTS:
            if all(p[1] > 0 for p in points) and thresholds and thresholds[-1] > 0:
                ax.set_yscale("log")
            ax.set_ylabel("p-value", fontsize=7)
        else:
            ax.set_ylabel("distance", fontsize=7)
        ax.legend(fontsize=7, loc="upper left")
    if results:
        # Matplotlib's default date ticks print "03:53.540000" for checks seconds apart, with no date;
        # the concise formatter puts the date (and the rest of what the ticks share) in the axis offset.
        locator = AutoDateLocator(tz=dt.UTC)
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=dt.UTC))
        axes[-1].xaxis.get_offset_text().set_fontsize(8)
        axes[-1].set_xlabel("checked at (UTC)", fontsize=7)
    figure.suptitle(f"Drift of {monitor.model_version} @ {monitor.environment}", fontsize=10)
    return figure


def drift_chart_png(monitor: DriftMonitor) -> bytes:
    buffer = io.BytesIO()
    drift_chart_figure(monitor).savefig(buffer, format="png")
    return buffer.getvalue()


_MONITOR_FIELDS = (
    "model_version", "environment", "reference", "features_display", "drift_share", "interval_minutes",
    "breach_severity", "retrain_on_critical", "label_column", "prediction_column", "metric_tolerance",
    "fairness_tolerance", "is_active", "last_checked_utc", "created_by", "chart", "alerts_display",
    "results_display",
)


@admin.register(DriftMonitor)
class DriftMonitorAdmin(ReadOnlyAdmin):
    # What an officer scans fits a 1400px window beside the nav and the filters; the configuration
    # (features, breach severity, retraining) is on the monitor's page.
    list_display = ["id", "watched", "is_active", "last_checked_utc", "active_alerts"]
    list_filter = ["environment", "breach_severity", "is_active"]
    search_fields = ["model_version__model__name", "environment"]
    fields = readonly_fields = _MONITOR_FIELDS

    def get_queryset(self, request):
        return selectors.drift_monitor_list(user=request.user)

    def get_urls(self):
        return [path("<int:pk>/drift.png", self.admin_site.admin_view(self.chart_view),
                     name="monitoring_driftmonitor_chart"), *super().get_urls()]

    @admin.display(description="model @ environment", ordering="model_version__model__name")
    def watched(self, obj: DriftMonitor) -> str:
        return _watched(obj)

    @admin.display(description="last checked", ordering="last_checked_at")
    def last_checked_utc(self, obj: DriftMonitor) -> str:
        return _utc(obj.last_checked_at)

    @admin.display(description="active alerts")
    def active_alerts(self, obj: DriftMonitor) -> int:
        return obj.alerts.filter(status__in=ComplianceAlert.ACTIVE).count()

    @admin.display(description="features watched (test, threshold; empty = default)")
    def features_display(self, obj: DriftMonitor):
        return format_html_join("", "<div>{} <small>({}, {}, {})</small></div>",
                                ((f["name"], f["kind"], f.get("test") or "default",
                                  f.get("threshold") if f.get("threshold") is not None else "default")
                                 for f in obj.features))

    @admin.display(description="drift over time")
    def chart(self, obj: DriftMonitor):
        url = reverse("admin:monitoring_driftmonitor_chart", args=[obj.pk])
        return format_html('<img src="{}" alt="drift of each feature over time" style="max-width: 100%">', url)

    @admin.display(description="active alerts of the model")
    def alerts_display(self, obj: DriftMonitor):
        alerts = ComplianceAlert.objects.filter(model_id=obj.model_version.model_id,
                                                status__in=ComplianceAlert.ACTIVE).order_by("-last_seen_at")
        if not alerts:
            return "None."
        return format_html_join("", '<div><a href="{}">#{} {}</a> <b>{}</b> ×{}</div>', (
            (reverse("admin:monitoring_compliancealert_change", args=[a.pk]), a.pk, a.title, a.severity,
             a.repeat_count) for a in alerts))

    @admin.display(description="latest results")
    def results_display(self, obj: DriftMonitor):
        results = obj.results.select_related("batch").order_by("-checked_at", "-id")[:10]
        return format_html_join("", "<div>{} — batch #{} ({} rows): {} {}</div>", (
            (_utc(r.checked_at), r.batch_id, r.batch.row_count,
             "DRIFT" if r.dataset_drift else "no drift", ", ".join(r.drifted_features)) for r in results))

    def chart_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        monitor = self.get_queryset(request).filter(pk=pk).first()
        if monitor is None or not self.has_view_permission(request, monitor):
            raise Http404("No such monitor.")
        response = HttpResponse(drift_chart_png(monitor), content_type="image/png")
        response["Cache-Control"] = "private, max-age=60"
        return response


ACTION_NOT_OFFERED = "You may not %(value)s this alert now."
_CLOSING = {"resolve": ComplianceAlert.Status.RESOLVED, "dismiss": ComplianceAlert.Status.DISMISSED}


def alert_actions_for(user: Any, alert: ComplianceAlert) -> list[str]:
    """What `user` may do with `alert` in its current state, by the rules the alert services enforce,
    so that the form offers no step the service would refuse only after it is submitted."""
    if not can_handle_alert(user, alert):
        return []
    allowed = TRANSITIONS[alert.status]
    actions = ["acknowledge"] if ComplianceAlert.Status.ACKNOWLEDGED in allowed else []
    if alert.severity != Severity.CRITICAL or can_sign_alert(user):
        actions += [action for action, status in _CLOSING.items() if status in allowed]
    return actions


def alert_button_label(actions: list[str], *, critical: bool) -> str:
    """The inbox button: it names the e-signature only to those who may sign."""
    if not actions:
        return ""
    if actions == ["acknowledge"]:
        return "Acknowledge…"
    return "Sign off…" if critical else "Handle…"


class AlertActionForm(forms.Form):
    action = forms.ChoiceField(error_messages={"invalid_choice": ACTION_NOT_OFFERED})
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Recorded with the step and in the audit log.")
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               required=False, label="your password",
                               help_text="Resolving or dismissing a critical alert is an electronic signature "
                                         "(21 CFR 11.200): a compliance officer re-authenticates.")

    def __init__(self, *args: Any, actions: list[str], signs: bool, **kwargs: Any) -> None:
        """`actions` from alert_actions_for; `signs`: a closing step here is an e-signature (asks the password)."""
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["action"]).choices = [(action, action) for action in actions]
        if not signs:
            del self.fields["password"]


class AlertStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active (open or acknowledged)"), *ComplianceAlert.Status.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "active":
            return queryset.filter(status__in=ComplianceAlert.ACTIVE)
        if value in ComplianceAlert.Status.values:
            return queryset.filter(status=value)
        return queryset


# What the page shows, all read-only (the alert's changes go through services, not this form).
_ALERT_FIELDS = (
    "model", "model_version", "monitor", "kind", "severity", "status", "title", "mlflow_display",
    "repeat_count", "first_seen_utc", "last_seen_utc", "assigned_team", "retraining_request",
    "acknowledged_by", "acknowledge_reason", "closed_by", "close_reason", "signatures_display",
    "evidence_display", "act_link",
)


@admin.register(ComplianceAlert)
class ComplianceAlertAdmin(ReadOnlyAdmin):
    # The kind and the team are in the title and the filters, and on the alert's page.
    list_display = ["id", "severity_badge", "status", "model", "title", "repeat_count", "last_seen_utc"]
    list_filter = [AlertStatusFilter, "severity", "kind"]
    search_fields = ["title", "model__name", "mlflow_name", "mlflow_alias"]
    fields = readonly_fields = _ALERT_FIELDS

    def get_queryset(self, request):
        return selectors.compliance_alert_list(user=request.user)

    def get_fields(self, request, obj=None):
        # The act link is a control: shown only to whoever may act on this alert (never the auditor,
        # who reads everything and writes nothing), like the button on top of the page.
        fields = super().get_fields(request, obj)
        if obj is None or not alert_actions_for(request.user, obj):
            fields = [f for f in fields if f != "act_link"]
        return fields

    def get_urls(self):
        return [
            path("inbox/", self.admin_site.admin_view(self.inbox_view), name="monitoring_compliancealert_inbox"),
            path("<int:pk>/act/", self.admin_site.admin_view(self.act_view), name="monitoring_compliancealert_act"),
            *super().get_urls(),
        ]

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, obj: ComplianceAlert):
        colour = {"critical": "#c0392b", "warning": "#d68910", "info": "#5d6d7e"}[obj.severity]
        return format_html('<b style="color: {}">{}</b>', colour, obj.severity)

    @admin.display(description="first breach")
    def first_seen_utc(self, obj: ComplianceAlert) -> str:
        return _utc(obj.first_seen_at)

    @admin.display(description="last breach", ordering="last_seen_at")
    def last_seen_utc(self, obj: ComplianceAlert) -> str:
        return _utc(obj.last_seen_at)

    @admin.display(description="MLflow alias")
    def mlflow_display(self, obj: ComplianceAlert):
        if not obj.is_alias_moved:
            return "—"
        return format_html("{}@<b>{}</b> → version {} <small>({})</small>", obj.mlflow_name, obj.mlflow_alias,
                           obj.mlflow_version, obj.mlflow_tracking_uri)

    @admin.display(description="evidence")
    def evidence_display(self, obj: ComplianceAlert):
        return _pre(obj.evidence)

    @admin.display(description="signatures (21 CFR 11.50)")
    def signatures_display(self, obj: ComplianceAlert):
        signatures = obj.signatures.all()
        if not signatures:
            return "None."
        return format_html_join("", "<div><b>{}</b> ({}) — {} — “{}” — {} — sha256 {} — {}</div>", (
            (s.printed_name, s.role, s.meaning, s.reason, _utc(s.signed_at), s.record_sha256[:16] + "…",
             "verifies" if alert_signature_verify(s) else "DOES NOT VERIFY") for s in signatures))

    @admin.display(description="act")
    def act_link(self, obj: ComplianceAlert):
        if not obj.is_active:
            return "Closed."
        return format_html('<a class="button" href="{}">Acknowledge, resolve or dismiss…</a>',
                           reverse("admin:monitoring_compliancealert_act", args=[obj.pk]))

    def inbox_view(self, request: HttpRequest) -> HttpResponse:
        """Active alerts, critical first, then by last breach: what a compliance officer handles next."""
        rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
        alerts = sorted(self.get_queryset(request).filter(status__in=ComplianceAlert.ACTIVE),
                        key=lambda a: (rank[a.severity], -a.last_seen_at.timestamp()))
        rows = [{"alert": a, "last_seen": _utc(a.last_seen_at),
                 "url": reverse("admin:monitoring_compliancealert_act", args=[a.pk]),
                 "button": alert_button_label(alert_actions_for(request.user, a),
                                              critical=a.severity == Severity.CRITICAL)} for a in alerts]
        return TemplateResponse(request, "admin/monitoring/compliancealert/inbox.html", {
            **self.admin_site.each_context(request), "title": "Alerts inbox", "rows": rows, "opts": self.model._meta,
            "can_sign": can_sign_alert(request.user)})

    def act_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        alert = self.get_queryset(request).filter(pk=pk).first()
        if alert is None:
            raise Http404("No such alert.")
        actions = alert_actions_for(request.user, alert)
        critical = alert.severity == Severity.CRITICAL
        form = AlertActionForm(request.POST or None, actions=actions,
                               signs=critical and any(action in _CLOSING for action in actions))
        refusal = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["action"] == "acknowledge":
                    compliance_alert_acknowledge(actor=request.user, alert=alert, reason=data["reason"])
                else:
                    service = compliance_alert_resolve if data["action"] == "resolve" else compliance_alert_dismiss
                    service(actor=request.user, alert=alert, reason=data["reason"],
                            password=data.get("password") or None)
            except ApplicationError as exc:
                refusal = exc
            else:
                messages.success(request, f"Alert #{alert.pk}: {data['action']} recorded.")
                return HttpResponseRedirect(reverse("admin:monitoring_compliancealert_change", args=[alert.pk]))
        return TemplateResponse(request, "admin/monitoring/compliancealert/act.html", {
            **self.admin_site.each_context(request), "title": f"Alert #{alert.pk}", "alert": alert, "form": form,
            "refusal": refusal, "opts": self.model._meta, "may_handle": can_handle_alert(request.user, alert),
            "actions": actions, "may_sign": can_sign_alert(request.user), "critical": critical,
            "evidence_json": json.dumps(alert.evidence, indent=2, sort_keys=True, default=str),
            "printed_name": user_printed_name(request.user)})


@admin.register(MonitoringBatch)
class MonitoringBatchAdmin(ReadOnlyAdmin):
    # Format, hash and labels are on the batch's page.
    list_display = ["id", "watched", "received_utc", "row_count", "findings"]
    list_filter = ["format", "source", "has_labels"]
    search_fields = ["sha256"]

    def get_queryset(self, request):
        return selectors.monitoring_batch_list(user=request.user)

    @admin.display(description="model @ environment")
    def watched(self, obj: MonitoringBatch) -> str:
        return _watched(obj.monitor)

    @admin.display(description="received", ordering="received_at")
    def received_utc(self, obj: MonitoringBatch) -> str:
        return _utc(obj.received_at)

    @admin.display(description="data-quality findings")
    def findings(self, obj: MonitoringBatch) -> str:
        return ", ".join(f"{f['code']} {f['column']}" for f in obj.quality_findings) or "—"


@admin.register(DriftResult)
class DriftResultAdmin(ReadOnlyAdmin):
    # The batch, per-feature statistics and concept/fairness drift are on the result's page.
    list_display = ["id", "watched", "checked_utc", "drift", "share", "drifted", "severity_display"]
    list_filter = ["dataset_drift", "severity"]

    def get_queryset(self, request):
        return selectors.drift_result_list(user=request.user)

    @admin.display(description="model @ environment")
    def watched(self, obj: DriftResult) -> str:
        return _watched(obj.monitor)

    @admin.display(description="checked", ordering="checked_at")
    def checked_utc(self, obj: DriftResult) -> str:
        return _utc(obj.checked_at)

    @admin.display(description="drift", boolean=True, ordering="dataset_drift")
    def drift(self, obj: DriftResult) -> bool:
        return obj.dataset_drift

    @admin.display(description="drift share", ordering="drift_share")
    def share(self, obj: DriftResult) -> str:
        return f"{obj.drift_share:.0%}"

    @admin.display(description="drifted features")
    def drifted(self, obj: DriftResult) -> str:
        return ", ".join(obj.drifted_features) or "—"

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: DriftResult) -> str:
        return obj.severity or "—"
