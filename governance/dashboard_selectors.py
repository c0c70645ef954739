"""Reads behind the officers' dashboard (the admin index): each one scoped by the user as the API scopes it.

Every section is a plain dict or list the template renders without further queries. Sections
fed by other parts of Attest (compliance alerts from monitoring, governance KPIs from the
dossier) read them only when those parts are installed, and say so when they are not.
"""

import datetime as dt
import json
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Prefetch
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.timesince import timesince

from governance import selectors
from governance.audit import AuditAction
from governance.checkpoints import audit_checkpoint_latest, checkpoint_signature_valid
from governance.models import (
    ApprovalRequest,
    AuditChainHead,
    AuditEvent,
    GateDecision,
    Report,
    ReportChart,
    Signature,
)
from governance.permissions import Action, user_can, user_reads_all, user_roles
from mlops_site.common.roles import role_order
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel

Status = ApprovalRequest.Status
TIERS = [tier for tier, _label in RegisteredModel.RiskTier.choices]
# Order of the stacked bars: where a version is in its life.
VERSION_STATUSES = ["registered", "approved", "deployed", "archived"]
SEVERITIES = ["critical", "warning", "info"]
OPEN_ALERT_STATUSES = ("open", "acknowledged")
RECENT_DENIALS = 8
KPI_WINDOW_DAYS = 30


# --- approvals waiting for the user ----------------------------------------------------------------

def _approvals_by_role(signatures: list[Signature]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for signature in signatures:
        if signature.meaning == Signature.Meaning.APPROVE:
            counts[signature.role] = counts.get(signature.role, 0) + 1
    return counts


def approval_request_roles_open(request: ApprovalRequest) -> dict[str, int]:
    """Required role -> approvals still missing, in Role's order (uses the prefetched signatures).

    Sorted because PostgreSQL's jsonb keeps no key order (it orders keys by length), so the
    page would otherwise list the roles differently from SQLite.
    """
    counts = _approvals_by_role(list(request.signatures.all()))
    roles = sorted(request.policy.required_roles.items(), key=lambda item: role_order(item[0]))
    return {role: count - counts.get(role, 0) for role, count in roles if counts.get(role, 0) < count}


def approval_requests_pending_for_user(*, user: Any) -> list[dict[str, Any]]:
    """Pending requests the user may read that still need a role they hold, oldest first.

    A request the user already signed decisively is left out (one person fills one role once);
    one they opened is listed but marked, because separation of duties bars them from it.
    """
    held = selectors.approval_signing_roles(user=user)
    if not held or not user_can(user, Action.APPROVAL_SIGN):
        return []
    now = timezone.now()
    rows = []
    pending = selectors.approval_request_list(user=user, filters={"status": Status.PENDING}).order_by(
        "created_at", "id")
    for request in pending:
        open_roles = approval_request_roles_open(request)
        mine = sorted(role for role in open_roles if role in held)
        if not mine:
            continue
        if any(s.signer_id == user.pk and s.meaning != Signature.Meaning.REVIEWED for s in request.signatures.all()):
            continue
        age = now - request.created_at
        rows.append({"request": request, "roles_open": open_roles, "my_roles": mine,
                     "age": timesince(request.created_at, now), "age_days": age.days,
                     "risk_tier": request.model.risk_tier, "is_requester": request.requested_by_id == user.pk})
    return rows


# --- models by tier and status ---------------------------------------------------------------------

def models_by_tier_and_status(*, user: Any) -> dict[str, Any]:
    """Per risk tier: how many models, and their versions by status (for a stacked bar), as the API scopes them."""
    models = registry_selectors.model_list(user=user).order_by()
    model_counts = dict(models.values_list("risk_tier").annotate(n=Count("pk")).values_list("risk_tier", "n"))
    versions = registry_selectors.model_version_list(user=user).order_by()
    rows = (versions.values("model__risk_tier", "status", "archived_at").annotate(n=Count("pk"))
            .values_list("model__risk_tier", "status", "archived_at", "n"))
    by_tier: dict[str, Counter] = {tier: Counter() for tier in TIERS}
    for tier, status, archived_at, n in rows:
        by_tier.setdefault(tier, Counter())["archived" if archived_at is not None else status] += n
    widest = max([sum(c.values()) for c in by_tier.values()] + [1])
    tiers = []
    for tier in TIERS:
        counts = by_tier.get(tier, Counter())
        total = sum(counts.values())
        tiers.append({
            "tier": tier, "models": model_counts.get(tier, 0), "versions": total,
            "segments": [{"status": status, "n": counts[status], "width": round(100 * counts[status] / widest, 1)}
                         for status in VERSION_STATUSES if counts[status]],
        })
    return {"tiers": tiers, "statuses": VERSION_STATUSES,
            "total_models": sum(model_counts.values()),
            "total_versions": sum(sum(c.values()) for c in by_tier.values())}


# --- the gate ---------------------------------------------------------------------------------------

def gate_decisions_for_user(*, user: Any):
    """Gate decisions the user may read: governance roles and administrators all, others their teams'."""
    queryset = GateDecision.objects.select_related("model_version", "model_version__model", "evaluated_by")
    if not user_can(user, Action.DEPLOYMENT_READ):
        return queryset.none()
    if user_reads_all(user):
        return queryset
    return queryset.filter(model_version__model__team__members=user).distinct()


def gate_denials_recent(*, user: Any, limit: int = RECENT_DENIALS) -> list[dict[str, Any]]:
    rows = []
    for decision in gate_decisions_for_user(user=user).filter(allowed=False).order_by("-evaluated_at", "-id")[:limit]:
        rows.append({"decision": decision, "failed": [c["code"] for c in decision.checks if not c["passed"]],
                     "model": decision.model_version.model, "version": decision.model_version})
    return rows


# --- the audit log ----------------------------------------------------------------------------------

def audit_log_status(*, user: Any) -> dict[str, Any] | None:
    """The chain head, the latest signed checkpoint and the last recorded verification; None for non-readers."""
    if not user.has_perm("governance.view_auditevent"):
        return None
    head = AuditChainHead.objects.filter(pk=1).values("seq", "hash").first() or {"seq": 0, "hash": ""}
    checkpoint = audit_checkpoint_latest()
    last = AuditEvent.objects.filter(action=AuditAction.AUDIT_VERIFIED).order_by("-seq").first()
    verification = None
    if last is not None:
        payload = json.loads(last.payload_json)
        result = payload.get("after") or {}
        verification = {"event": last, "ok": result.get("ok"), "line": result.get("line", ""),
                        "by": json.loads(last.actor_json).get("username") or "system",
                        "at": last.timestamp}
    return {
        "head_seq": head["seq"], "head_hash": head["hash"],
        "checkpoint": checkpoint,
        "checkpoint_valid": checkpoint_signature_valid(checkpoint) if checkpoint is not None else None,
        "events_since_checkpoint": head["seq"] - checkpoint.size if checkpoint is not None else head["seq"],
        "verification": verification,
    }


# --- compliance alerts and drift (monitoring) -----------------------------------------------------

# Monitoring sits above governance (it imports governance, never the reverse), so its readers come
# in through these hooks, set by the project's admin app (mlops_site/admin_apps.py) when monitoring
# is installed: alert_list(user=) and monitor_list(user=) return the querysets the API returns.
_monitoring: dict[str, Callable[..., Any]] = {}


def monitoring_readers_set(*, alert_list: Callable[..., Any] | None, monitor_list: Callable[..., Any] | None,
                           admin_url: Callable[..., str] | None = None,
                           can_handle_alert: Callable[[Any, Any], bool] | None = None) -> None:
    """Install (or, with None, remove) monitoring's scoped readers and its rule for who handles an alert."""
    _monitoring.clear()
    if alert_list is not None and monitor_list is not None:
        _monitoring.update(alert_list=alert_list, monitor_list=monitor_list)
        if admin_url is not None:
            _monitoring["admin_url"] = admin_url
        if can_handle_alert is not None:
            _monitoring["can_handle_alert"] = can_handle_alert


def alert_may_handle(*, user: Any, alert: Any) -> bool:
    """Monitoring's rule for acting on an alert; False when monitoring is not installed."""
    rule = _monitoring.get("can_handle_alert")
    return bool(rule is not None and rule(user, alert))


def _alert_list(user: Any):
    reader = _monitoring.get("alert_list")
    return reader(user=user) if reader is not None else None


def _admin_url(obj: Any, **kwargs: Any) -> str:
    resolver = _monitoring.get("admin_url")
    return resolver(obj, **kwargs) if resolver is not None else ""


def alerts_open_by_severity(*, user: Any) -> dict[str, Any] | None:
    """Open (and acknowledged) alerts by severity, newest first; None until monitoring is installed."""
    alerts = _alert_list(user)
    if alerts is None:
        return None
    open_alerts = alerts.filter(status__in=OPEN_ALERT_STATUSES).order_by()
    counts = dict(open_alerts.values_list("severity").annotate(n=Count("pk")).values_list("severity", "n"))
    widest = max(list(counts.values()) + [1])
    latest = list(open_alerts.select_related("model").order_by("-last_seen_at", "-id")[:6])
    for alert in latest:
        alert.admin_url = _admin_url(alert)
    return {"severities": [{"severity": s, "n": counts.get(s, 0), "width": round(100 * counts.get(s, 0) / widest, 1)}
                           for s in SEVERITIES],
            "total": sum(counts.values()), "latest": latest, "changelist_url": _admin_url(None)}


def drift_status(*, user: Any, version: ModelVersion) -> dict[str, Any] | None:
    """The version's drift monitors with their latest result, and the model's open alerts; None without monitoring."""
    monitor_reader = _monitoring.get("monitor_list")
    if monitor_reader is None:
        return None
    monitors = []
    for monitor in monitor_reader(user=user).filter(model_version=version).order_by("environment", "id"):
        result = monitor.results.order_by("-checked_at", "-id").first()
        monitors.append({"monitor": monitor, "result": result, "url": _admin_url(monitor),
                         "chart_url": _admin_url(monitor, chart=True) if result is not None else ""})
    alerts = list(_alert_list(user).filter(model_id=version.model_id, status__in=OPEN_ALERT_STATUSES)
                  .order_by("-last_seen_at", "-id")[:10])
    for alert in alerts:
        alert.admin_url = _admin_url(alert)
    return {"monitors": monitors, "alerts": alerts}


def retraining_focus_version(*, user: Any, model: RegisteredModel) -> tuple[ModelVersion | None, str]:
    """The version a retraining request is about, and why: the live one, else the newest one watched by a
    drift monitor (the one whose alert asked for retraining), else the newest one the user may read."""
    live = selectors.model_live_version(model=model)
    if live is not None:
        return live, "live"
    reader = _monitoring.get("monitor_list")
    if reader is not None:
        monitor = (reader(user=user).filter(model_version__model=model).select_related("model_version__model")
                   .order_by("-model_version__version").first())
        if monitor is not None:
            return monitor.model_version, "watched by a drift monitor, not deployed"
    newest = registry_selectors.model_version_list(user=user).filter(model=model).order_by("-version").first()
    return newest, "the newest version, not deployed"


# --- reports (fairness, explainability) -------------------------------------------------------------

def _report_headline(report: Report) -> str:
    """One line of the report's headline figures, when the results carry them."""
    results = report.results if isinstance(report.results, dict) else {}
    if report.kind == Report.Kind.FAIRNESS:
        overall = results.get("overall") or results.get("aggregates") or {}
        parts = []
        for key in ("demographic_parity_ratio", "equalized_odds_difference"):
            value = overall.get(key) if isinstance(overall, dict) else None
            if isinstance(value, dict):
                value = value.get("value")
            if isinstance(value, int | float):
                parts.append(f"{key.replace('_', ' ')} {value:.3f}")
        return "; ".join(parts)
    importance = results.get("global_importance") or results.get("importance")
    if isinstance(importance, dict) and importance:
        top = sorted(importance.items(), key=lambda item: -abs(item[1]) if isinstance(item[1], int | float) else 0)[:3]
        return "most important: " + ", ".join(name for name, _value in top)
    return ""


def report_panels(*, version: ModelVersion) -> list[dict[str, Any]]:
    """The latest report of each kind for `version` (already scoped by the caller), with chart URLs."""
    panels = []
    seen: set[str] = set()
    for report in (Report.objects.filter(model_version=version).prefetch_related(
            Prefetch("charts", queryset=ReportChart.objects.only("pk", "name", "title", "report_id")))
            .order_by("-created_at", "-id")):
        if report.kind in seen:
            continue
        seen.add(report.kind)
        try:
            admin_url = reverse("admin:governance_report_change", args=[report.pk])
        except NoReverseMatch:
            admin_url = ""
        panels.append({
            "pk": report.pk, "kind": report.kind, "created_at": report.created_at, "sha256": report.sha256,
            "bound": report.artifact_sha256 == version.artifact_sha256, "admin_url": admin_url,
            "headline": _report_headline(report),
            "charts": [{"name": chart.name, "title": chart.title,
                        "url": reverse("admin:report_chart_png", args=[chart.pk])} for chart in report.charts.all()],
        })
    return sorted(panels, key=lambda panel: panel["kind"])


# --- governance KPIs -------------------------------------------------------------------------------

def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:g} h"


def governance_kpis(*, user: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """The dossier's governance KPIs (governance.reports.kpis) over the models the user may read, with the
    dashboard's own two: requests pending now and gate denials in the last KPI_WINDOW_DAYS."""
    from governance.reports.kpis import governance_kpis as kpis_compute

    now = now or timezone.now()
    measured = kpis_compute(models=registry_selectors.model_list(user=user), now=now)
    overall = measured["overall"]
    pending = list(selectors.approval_request_list(user=user).order_by().filter(status=Status.PENDING)
                   .values_list("created_at", flat=True))
    gate = gate_decisions_for_user(user=user).order_by().filter(
        evaluated_at__gte=now - dt.timedelta(days=KPI_WINDOW_DAYS))
    gate_total, gate_denied = gate.count(), gate.filter(allowed=False).count()
    cycle = overall["approval_cycle_hours_by_role"]
    lead = overall["lead_time_to_approval_hours"]
    items = [
        {"label": "pending requests", "value": len(pending),
         "note": f"oldest {timesince(min(pending), now)}" if pending else "none waiting"},
        {"label": "lead time to approval", "value": _h(lead["median"]),
         "note": f"median of {lead['count']}, registration to approval" if lead["count"] else "nothing approved yet"},
        {"label": "signature cycle", "value": _h(statistics.median([c["median"] for c in cycle.values()]))
         if cycle else "—",
         "note": ", ".join(f"{role} {_h(c['median'])}" for role, c in cycle.items()) or "no signature yet"},
        {"label": "deployments / 30 days", "value": overall["deployments_per_30_days"],
         "note": f"{overall['deployments']} in all, {overall['rollbacks']} rollback(s)"},
        {"label": f"gate denials ({KPI_WINDOW_DAYS} d)", "value": gate_denied,
         "note": f"of {gate_total} decisions" if gate_total else "no decisions"},
        {"label": "open alerts", "value": overall["open_alerts"],
         "note": f"mean time to resolve {_h(overall['mean_time_to_resolve_hours'])}"
         if overall["mean_time_to_resolve_hours"] is not None else "none resolved yet"},
    ]
    return {"window_days": measured["window_days"], "items": items, "models": measured["model_count"]}


def dossier_url(*, model: RegisteredModel) -> str:
    """Where the model's PDF dossier downloads (the API's endpoint, which the admin session may call)."""
    return reverse("governance:model-dossier", args=[model.pk])


def dashboard_context(*, user: Any) -> dict[str, Any]:
    """Everything the dashboard shows for `user`."""
    return {
        "pending_for_me": approval_requests_pending_for_user(user=user),
        "can_sign": user_can(user, Action.APPROVAL_SIGN),
        "my_roles": sorted(user_roles(user)),
        "models_chart": models_by_tier_and_status(user=user),
        "gate_denials": gate_denials_recent(user=user),
        "audit": audit_log_status(user=user),
        "alerts": alerts_open_by_severity(user=user),
        "kpis": governance_kpis(user=user),
        "version_statuses": [status for status in VERSION_STATUSES if status in ModelVersion.Status.values],
    }
