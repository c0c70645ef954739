"""Evidence other apps add to the dossier without governance importing them.

Monitoring (which depends on governance, never the reverse) registers a provider from its
`apps.ready`; the dossier asks every registered provider for the model it is built for. A
provider returns a `MonitoringEvidence`-shaped dict:

    {"drift": [{"at", "monitor", "feature", "metric", "value", "threshold", "breached"}],
     "alerts": [{"id", "severity", "status", "title", "opened_at", "resolved_at", "resolution"}],
     "object_refs": [("monitoring.driftresult", [ids]), ...]}   # their audit events belong to the model

Keys are optional; nothing registered means the dossier says "no drift result recorded".
"""

from collections.abc import Callable
from typing import Any

from django.db.models import Q

from governance.selectors import user_printed_name

EvidenceProvider = Callable[..., dict[str, Any]]
_providers: list[EvidenceProvider] = []


def dossier_evidence_provider_register(provider: EvidenceProvider) -> EvidenceProvider:
    """Add a provider(model=RegisteredModel, versions=[ModelVersion]) -> dict (usable as a decorator)."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def dossier_evidence_provider_unregister(provider: EvidenceProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def dossier_evidence_collect(*, model: Any, versions: list[Any]) -> dict[str, list]:
    """What every provider knows of the model, merged: {"drift": [...], "alerts": [...], "object_refs": [...]}."""
    merged: dict[str, list] = {"drift": [], "alerts": [], "object_refs": []}
    for provider in list(_providers):
        found = provider(model=model, versions=versions) or {}
        for key in merged:
            merged[key].extend(found.get(key) or [])
    return merged


# --- monitoring's records, read without importing monitoring ------------------------------------

def _first(mapping: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return default


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def monitoring_evidence(*, model: Any, versions: list[Any]) -> dict[str, Any]:
    """Drift results, alerts and their object ids from the monitoring app, when it is installed.

    Looked up through the app registry (apps.get_model), so governance never imports monitoring
    (DESIGN.md: monitoring -> governance). An empty `versions` means every version of the model.
    """
    from django.apps import apps

    if not apps.is_installed("monitoring"):
        return {}
    try:
        monitor_model = apps.get_model("monitoring", "DriftMonitor")
        result_model = apps.get_model("monitoring", "DriftResult")
        alert_model = apps.get_model("monitoring", "ComplianceAlert")
    except LookupError:
        return {}
    monitors = monitor_model.objects.filter(model_version__model=model)
    if versions:
        monitors = monitors.filter(model_version__in=versions)
    monitors = list(monitors.select_related("model_version"))
    results = list(result_model.objects.filter(monitor__in=monitors).select_related("monitor__model_version")
                   .order_by("checked_at", "id"))
    drift = []
    for result in results:
        label = f"v{result.monitor.model_version.version} @ {result.monitor.environment}"
        drift.append({"at": _iso(result.checked_at), "monitor": label, "feature": "(dataset)",
                      "metric": "share drifted", "value": result.drift_share,
                      "threshold": result.monitor.drift_share, "breached": bool(result.dataset_drift)})
        for feature in result.features or []:
            if not isinstance(feature, dict):
                continue
            drift.append({
                "at": _iso(result.checked_at), "monitor": label,
                "feature": str(_first(feature, "name", "feature", "column", default="?")),
                "metric": str(_first(feature, "test", "metric", "method", default="")),
                "value": _first(feature, "statistic", "value", "score", "psi", "p_value"),
                "threshold": _first(feature, "threshold"),
                "breached": bool(_first(feature, "drifted", "breached", "drift_detected", default=False)),
            })
    alerts_qs = alert_model.objects.filter(model=model)
    if versions:
        # An MLflow alias alert naming a version never imported concerns the model, so every version.
        alerts_qs = alerts_qs.filter(Q(model_version__in=versions) | Q(model_version__isnull=True))
    alerts = []
    for alert in alerts_qs.select_related("closed_by").order_by("first_seen_at", "id"):
        closer = alert.closed_by
        resolution = alert.close_reason
        if closer is not None:
            resolution = f"{resolution} ({user_printed_name(closer)})"
        alerts.append({"id": alert.pk, "severity": alert.severity, "status": alert.status,
                       "title": f"{alert.title} (×{alert.repeat_count})" if alert.repeat_count > 1 else alert.title,
                       "opened_at": _iso(alert.first_seen_at), "resolved_at": _iso(alert.closed_at),
                       "resolution": resolution})
    alert_ids = [a["id"] for a in alerts]
    refs = [("monitoring.driftmonitor", [m.pk for m in monitors]),
            ("monitoring.driftresult", [r.pk for r in results]),
            ("monitoring.compliancealert", alert_ids)]
    try:
        batch_model = apps.get_model("monitoring", "MonitoringBatch")
        refs.append(("monitoring.monitoringbatch",
                     list(batch_model.objects.filter(monitor__in=monitors).values_list("pk", flat=True))))
    except LookupError:
        pass
    return {"drift": drift, "alerts": alerts, "object_refs": refs}


dossier_evidence_provider_register(monitoring_evidence)
