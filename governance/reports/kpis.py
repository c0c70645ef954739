"""Governance KPIs (the seed's ROI measures), per model and overall, read from the system of record.

- lead time: registration of a model version -> approval of its first deployment request (hours);
- approval cycle time per role: opening of a request -> each signature, by the role signed as (hours);
- deployment frequency: deployments per 30 days over the window (default 90 days), and in total;
- rollbacks; open alerts and the mean time to resolve resolved ones (hours), from the monitoring
  evidence provider (none registered: 0 open, no mean).

Means and medians are None where nothing was measured: an absent figure is not a zero.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from governance.models import ApprovalRequest, Deployment, Signature
from governance.reports.providers import dossier_evidence_collect
from registry.models import ModelVersion, RegisteredModel

WINDOW_DAYS = 90
_OPEN_ALERT_STATUSES = ("open", "acknowledged")


def _hours(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    return parse_datetime(value) if isinstance(value, str) and value else None


def _figures(*, lead: list[float], cycle: dict[str, list[float]], deployments: list[Deployment],
             alerts: list[dict], now: dt.datetime, window_days: int) -> dict[str, Any]:
    since = now - dt.timedelta(days=window_days)
    recent = [d for d in deployments if d.deployed_at >= since]
    resolved = []
    for alert in alerts:
        opened, closed = _when(alert.get("opened_at")), _when(alert.get("resolved_at"))
        if opened and closed and alert.get("status") in ("resolved", "dismissed"):
            resolved.append(_hours(closed - opened))
    return {
        "lead_time_to_approval_hours": {"median": _median(lead), "mean": _mean(lead), "count": len(lead)},
        "approval_cycle_hours_by_role": {role: {"mean": _mean(v), "median": _median(v), "count": len(v)}
                                         for role, v in sorted(cycle.items())},
        "deployments": len(deployments),
        "deployments_per_30_days": round(len(recent) * 30 / window_days, 2),
        "rollbacks": sum(1 for d in deployments if d.is_rollback),
        "open_alerts": sum(1 for a in alerts if a.get("status") in _OPEN_ALERT_STATUSES),
        "alerts": len(alerts),
        "mean_time_to_resolve_hours": _mean(resolved),
    }


def governance_kpis(*, models: Iterable[RegisteredModel] | None = None, now: dt.datetime | None = None,
                    window_days: int = WINDOW_DAYS) -> dict[str, Any]:
    """{"window_days", "generated_at", "overall": {...}, "models": [{"model", "risk_tier", ...figures}]}.

    `models`: the models to measure (the caller scopes them to what the user may read); None: all.
    """
    now = now or timezone.now()
    models = list(models if models is not None else RegisteredModel.objects.all())
    model_ids = [m.pk for m in models]
    registered = dict(ModelVersion.objects.filter(model_id__in=model_ids).values_list("pk", "created_at"))

    lead: dict[int, list[float]] = defaultdict(list)
    first_approval: dict[int, tuple[int, dt.datetime]] = {}
    approved = ApprovalRequest.objects.filter(
        model_id__in=model_ids, kind=ApprovalRequest.Kind.DEPLOYMENT, status=ApprovalRequest.Status.APPROVED,
        decided_at__isnull=False).order_by("decided_at").values_list("model_id", "model_version_id", "decided_at")
    for model_id, mv_id, decided_at in approved:
        if decided_at is None:  # excluded by decided_at__isnull=False; says so to the type checker
            continue
        if mv_id in registered and mv_id not in first_approval:
            first_approval[mv_id] = (model_id, decided_at)
            lead[model_id].append(_hours(decided_at - registered[mv_id]))

    cycle: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for model_id, role, signed_at, opened_at in Signature.objects.filter(request__model_id__in=model_ids).values_list(
            "request__model_id", "role", "signed_at", "request__created_at"):
        cycle[model_id][role].append(_hours(signed_at - opened_at))

    deployments: dict[int, list[Deployment]] = defaultdict(list)
    for deployment in Deployment.objects.filter(model_id__in=model_ids).only("model_id", "deployed_at", "is_rollback"):
        deployments[deployment.model_id].append(deployment)

    all_cycle: dict[str, list[float]] = defaultdict(list)
    per_model, all_lead, all_deployments, all_alerts = [], [], [], []
    for model in sorted(models, key=lambda m: m.name):
        alerts = dossier_evidence_collect(model=model, versions=[])["alerts"]
        figures = _figures(lead=lead[model.pk], cycle=cycle[model.pk], deployments=deployments[model.pk],
                           alerts=alerts, now=now, window_days=window_days)
        per_model.append({"model": model.name, "model_id": model.pk, "risk_tier": model.risk_tier, **figures})
        all_lead += lead[model.pk]
        for role, values in cycle[model.pk].items():
            all_cycle[role] += values
        all_deployments += deployments[model.pk]
        all_alerts += alerts
    overall = _figures(lead=all_lead, cycle=all_cycle, deployments=all_deployments, alerts=all_alerts, now=now,
                       window_days=window_days)
    return {"window_days": window_days, "generated_at": now.isoformat(), "model_count": len(models),
            "overall": overall, "models": per_model}
