"""The drift check: one batch against its monitor's reference, once; a breach raises a compliance alert.

`drift_check_run` computes outside any transaction (the statistics are monitoring.stats', the
data-quality findings monitoring.tables'), then writes in one transaction: the DriftResult
(unique per monitor and batch), the alerts it raises or repeats, the monitor's last check
time, and one DRIFT_CHECKED event. A second run of the same check, or one that loses a race
to another worker, returns the result already written and writes nothing: the check is
idempotent and safe to retry.

What breaches:
- data drift: dataset drift (the monitor's share of features drifted) raises the monitor's
  breach severity; drifted features below that share raise `info`;
- concept drift (batches with labels): a metric of ModelVersion.metrics that is worse on the
  batch by more than `metric_tolerance` (absolute for scores, relative for errors) raises the
  breach severity;
- fairness drift (labels, predictions and sensitive columns): a headline number of the
  version's latest fairness report that is worse on the batch by more than
  `fairness_tolerance` raises the breach severity;
- data quality: a watched feature missing or empty raises `warning`.
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from monitoring.models import SEVERITY_RANK, ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch, Severity
from monitoring.services.alerts import compliance_alert_raise
from monitoring.services.batches import monitoring_batch_frame
from monitoring.tables import batch_prepare, finite, reference_frame

log = logging.getLogger(__name__)
Kind = ComplianceAlert.Kind

# Metrics where larger is better; every other known metric is an error (smaller is better).
HIGHER_IS_BETTER = {"accuracy", "roc_auc", "auc", "r2", "f1", "precision", "recall", "balanced_accuracy"}
LOWER_IS_BETTER = {"mae", "rmse", "mse", "log_loss"}
BLOCKING_FINDINGS = {"missing_column", "all_null"}


def _specs(monitor: DriftMonitor) -> list[Any]:
    from monitoring.stats import FeatureSpec

    return [FeatureSpec(name=f["name"], kind=f["kind"], test=f.get("test"), threshold=f.get("threshold"))
            for f in monitor.features]


_PROFILES: dict[tuple, Any] = {}


def _profile(monitor: DriftMonitor, reference: pd.DataFrame, specs: list[Any]):
    """The reference profile (sorted arrays, bins), kept per process by reference hash and specs."""
    from monitoring.stats import reference_profile

    key = (monitor.reference.sha256, tuple((s.name, s.kind, s.test, s.threshold) for s in specs))
    profile = _PROFILES.get(key)
    if profile is None:
        if len(_PROFILES) > 16:
            _PROFILES.clear()
        profile = _PROFILES[key] = reference_profile(reference[[s.name for s in specs]], specs)
    return profile


def _predictions(monitor: DriftMonitor, frame: pd.DataFrame) -> tuple[Any, Any, str]:
    """(predictions, positive-class scores or None, where they came from) for a labelled batch."""
    if monitor.prediction_column and monitor.prediction_column in frame.columns:
        return frame[monitor.prediction_column].to_numpy(), None, "batch"
    version = monitor.model_version
    if not version.artifact_loadable:
        return None, None, "none: no prediction column and the artifact is not loadable"
    from registry.loader import model_version_load

    estimator = model_version_load(version)
    features = [name for name in (version.feature_names or []) if name in frame.columns]
    if len(features) != len(version.feature_names or []):
        return None, None, "none: the batch lacks model inputs"
    inputs = frame[features]
    predicted = estimator.predict(inputs)
    scores = None
    classes = list(getattr(estimator, "classes_", []))
    if hasattr(estimator, "predict_proba") and len(classes) == 2:
        scores = estimator.predict_proba(inputs)[:, 1]
    return predicted, scores, "model"


def _metric_values(task: str, y_true, y_pred, scores, classes: list[Any]) -> dict[str, float]:
    from sklearn import metrics as m

    if task == "regression":
        return {"r2": float(m.r2_score(y_true, y_pred)), "mae": float(m.mean_absolute_error(y_true, y_pred)),
                "rmse": float(m.root_mean_squared_error(y_true, y_pred))}
    values = {"accuracy": float(m.accuracy_score(y_true, y_pred))}
    if scores is not None and len(classes) == 2 and len(set(y_true)) == 2:
        values["roc_auc"] = values["auc"] = float(m.roc_auc_score(np.asarray(y_true) == classes[1], scores))
    return values


def _concept(monitor: DriftMonitor, frame: pd.DataFrame) -> dict[str, Any] | None:
    """The model's metrics on the labelled batch against ModelVersion.metrics (None without labels)."""
    label = monitor.label_column
    if not label or label not in frame.columns:
        return None
    labelled = frame[frame[label].notna()]
    if labelled.empty:
        return None
    predicted, scores, source = _predictions(monitor, labelled)
    if predicted is None:
        return {"evaluated": False, "why": source, "breached": []}
    version = monitor.model_version
    task = version.task or ("regression" if pd.api.types.is_float_dtype(labelled[label]) else "classification")
    y_true = labelled[label].to_numpy()
    classes = sorted(pd.unique(pd.Series(y_true).dropna()).tolist(), key=str)
    try:
        current = _metric_values(task, y_true, predicted, scores, classes)
    except ValueError as exc:
        return {"evaluated": False, "why": f"metrics could not be computed: {exc}", "breached": []}
    rows, breached = [], []
    for name, baseline in sorted((version.metrics or {}).items()):
        if name not in current or isinstance(baseline, bool) or not isinstance(baseline, int | float):
            continue
        value = current[name]
        if name in HIGHER_IS_BETTER:
            drop = baseline - value
            worse = drop > monitor.metric_tolerance
        elif name in LOWER_IS_BETTER:
            drop = value - baseline
            worse = baseline > 0 and drop / baseline > monitor.metric_tolerance
        else:
            continue
        rows.append({"metric": name, "evaluation": baseline, "batch": value, "worse_by": drop, "breached": worse})
        if worse:
            breached.append(name)
    return {"evaluated": True, "predictions": source, "rows": int(len(labelled)), "metrics": rows,
            "tolerance": monitor.metric_tolerance, "breached": breached, "y_pred": predicted, "task": task}


def _fairness(monitor: DriftMonitor, frame: pd.DataFrame, concept: dict[str, Any] | None) -> dict[str, Any] | None:
    """The batch's fairness headline against the version's latest fairness report (None when not comparable)."""
    if not concept or not concept.get("evaluated"):
        return None
    sensitive = [c for c in (monitor.reference.sensitive_columns or []) if c in frame.columns]
    if not sensitive:
        return None
    from governance.selectors import model_version_reports

    reports = [r for r in model_version_reports(monitor.model_version) if r.get("kind") == "fairness"]
    if not reports:
        return {"evaluated": False, "why": "the version has no fairness report", "breached": []}
    report = reports[0]
    results = report.get("results") or {}
    try:
        from governance.fairness import CLASSIFICATION_HEADLINE, REGRESSION_HEADLINE, fairness_compute
    except ImportError:
        return {"evaluated": False, "why": "fairness engine unavailable", "breached": []}
    label = monitor.label_column
    labelled = frame[frame[label].notna()]
    task = concept["task"]
    positive = results.get("positive_label", 1)
    min_group_size = results.get("min_group_size", 30)
    try:
        result = fairness_compute(y_true=labelled[label].to_numpy(), y_pred=concept["y_pred"],
                                  sensitive=labelled[sensitive].reset_index(drop=True), task=task,
                                  positive_label=positive, min_group_size=min_group_size)
    except ValueError as exc:
        return {"evaluated": False, "why": f"fairness could not be computed: {exc}", "breached": []}
    # Groups under the report's minimum size swing between 0 and 1 on any sample; compare the
    # headline over the large groups when both sides have one (the report's own rule).
    key = ("headline_excluding_small" if isinstance(results.get("headline_excluding_small"), dict)
           and isinstance(result.get("headline_excluding_small"), dict) else "headline")
    baseline, current = results.get(key) or {}, result.get(key) or {}
    rule = CLASSIFICATION_HEADLINE if task == "classification" else REGRESSION_HEADLINE
    rows, breached = [], []
    for name, direction in rule.items():
        before, now = baseline.get(name), current.get(name)
        if not isinstance(before, int | float) or not isinstance(now, int | float):
            continue
        worse_by = (before - now) if direction == "min" else (now - before)
        worse = worse_by > monitor.fairness_tolerance
        rows.append({"metric": name, "report": before, "batch": now, "worse_by": worse_by, "breached": worse})
        if worse:
            breached.append(name)
    return {"evaluated": True, "report_id": report.get("id"), "report_sha256": report.get("sha256"),
            "sensitive": sensitive, "headline": key, "min_group_size": min_group_size, "metrics": rows,
            "tolerance": monitor.fairness_tolerance, "breached": breached, "where": current.get("where")}


def drift_check_compute(*, monitor: DriftMonitor, batch: MonitoringBatch,
                        progress: Callable[[int, int, str], Any] | None = None) -> dict[str, Any]:
    """Everything a result records, computed from the stored bytes (reads only; no transaction)."""
    from monitoring.stats import dataset_drift

    reference = reference_frame(monitor.reference.storage_key, monitor.reference.sha256)
    frame = monitoring_batch_frame(batch)
    extra = {monitor.label_column, monitor.prediction_column} - {""}
    current, findings = batch_prepare(batch=frame, reference=reference, features=monitor.features,
                                      extra_allowed=extra)
    specs = _specs(monitor)
    drift = dataset_drift(_profile(monitor, reference, specs), current.reset_index(drop=True),
                          drift_share=monitor.drift_share, progress=progress)
    concept = _concept(monitor, frame)
    fairness = _fairness(monitor, frame, concept)
    if concept is not None:
        concept = {k: v for k, v in concept.items() if k not in ("y_pred", "task")}
    return finite({"drift": drift, "findings": findings, "concept": concept, "fairness": fairness})


def _breaches(monitor: DriftMonitor, batch: MonitoringBatch, computed: dict[str, Any]) -> list[dict[str, Any]]:
    """[{"kind", "severity", "title", "evidence"}] for each kind of breach in the computed check."""
    drift, findings = computed["drift"], computed["findings"]
    version = monitor.model_version
    where = f"{version} @ {monitor.environment}"
    common = {"monitor": monitor.pk, "batch": batch.pk, "batch_sha256": batch.sha256, "rows": batch.row_count,
              "reference": monitor.reference_id, "reference_sha256": monitor.reference.sha256}
    breaches = []
    drifted = drift["drifted_features"]
    if drifted:
        severity = monitor.breach_severity if drift["dataset_drift"] else Severity.INFO
        features = [{k: f.get(k) for k in ("feature", "kind", "test", "statistic", "p_value", "threshold")}
                    for f in drift["features"] if f["feature"] in drifted]
        title = (f"{'Dataset' if drift['dataset_drift'] else 'Feature'} drift on {where}: "
                 f"{', '.join(drifted)} ({len(drifted)} of {len(drift['features'])} features)")
        breaches.append({"kind": Kind.DATA_DRIFT, "severity": severity, "title": title, "evidence": {
            **common, "features": features, "drifted_features": drifted, "share": drift["share"],
            "drift_share": drift["drift_share"], "dataset_drift": drift["dataset_drift"]}})
    concept = computed["concept"]
    if concept and concept.get("breached"):
        rows = [r for r in concept["metrics"] if r["breached"]]
        title = f"Performance decay on {where}: " + ", ".join(
            f"{r['metric']} {r['batch']:.3f} vs {r['evaluation']:.3f}" for r in rows)
        breaches.append({"kind": Kind.CONCEPT_DRIFT, "severity": monitor.breach_severity, "title": title,
                         "evidence": {**common, "metrics": rows, "tolerance": concept["tolerance"]}})
    fairness = computed["fairness"]
    if fairness and fairness.get("breached"):
        rows = [r for r in fairness["metrics"] if r["breached"]]
        title = f"Fairness drift on {where}: " + ", ".join(
            f"{r['metric']} {r['batch']:.3f} vs {r['report']:.3f}" for r in rows)
        breaches.append({"kind": Kind.FAIRNESS_DRIFT, "severity": monitor.breach_severity, "title": title,
                         "evidence": {**common, "metrics": rows, "tolerance": fairness["tolerance"],
                                      "report_id": fairness.get("report_id")}})
    blocking = [f for f in findings if f["code"] in BLOCKING_FINDINGS]
    if blocking:
        title = f"Data quality on {where}: " + "; ".join(f"{f['code']} {f['column']}" for f in blocking)
        breaches.append({"kind": Kind.DATA_QUALITY, "severity": Severity.WARNING, "title": title,
                         "evidence": {**common, "findings": blocking}})
    return breaches


def drift_check_run(*, monitor: DriftMonitor, batch: MonitoringBatch, actor: Any = None,
                    progress: Callable[[int, int, str], Any] | None = None) -> DriftResult:
    """Check `batch` with `monitor` once; returns its DriftResult (the existing one if already checked).

    Writes the result, the alerts raised or repeated and DRIFT_CHECKED in one transaction.
    """
    if batch.monitor_id != monitor.pk:
        raise ValueError("the batch belongs to another monitor")
    existing = DriftResult.objects.filter(monitor=monitor, batch=batch).first()
    if existing is not None:
        return existing
    started = time.perf_counter()
    computed = drift_check_compute(monitor=monitor, batch=batch, progress=progress)
    duration_ms = (time.perf_counter() - started) * 1000
    try:
        with transaction.atomic():
            # of=self: the monitor row is what serialises checks; FOR UPDATE over the join would also
            # lock the model version, model, team and reference rows for the whole write.
            monitor = DriftMonitor.objects.select_for_update(of=("self",)).select_related(
                "model_version__model__team", "reference").get(pk=monitor.pk)
            existing = DriftResult.objects.filter(monitor=monitor, batch=batch).first()
            if existing is not None:
                return existing
            return _record(monitor=monitor, batch=batch, computed=computed, actor=actor, duration_ms=duration_ms)
    except IntegrityError:
        # Another worker wrote the result between our look and our insert: theirs stands.
        existing = DriftResult.objects.filter(monitor=monitor, batch=batch).first()
        if existing is None:
            raise
        return existing


def _record(*, monitor: DriftMonitor, batch: MonitoringBatch, computed: dict[str, Any], actor: Any,
            duration_ms: float) -> DriftResult:
    now = timezone.now()
    drift = computed["drift"]
    breaches = _breaches(monitor, batch, computed)
    severity = max((b["severity"] for b in breaches), key=lambda s: SEVERITY_RANK[s], default="")
    # The alerts first, so the result (append-only) is written once, naming them; then each
    # alert points at the result that last breached.
    raised = []
    for breach in breaches:
        alert, created = compliance_alert_raise(monitor=monitor, kind=breach["kind"], severity=breach["severity"],
                                                title=breach["title"], evidence=breach["evidence"], result=None,
                                                actor=actor)
        raised.append((alert, created))
    alerts = [{"id": alert.pk, "kind": alert.kind, "severity": alert.severity, "created": created}
              for alert, created in raised]
    result = DriftResult(
        monitor=monitor, batch=batch, dataset_drift=bool(drift["dataset_drift"]), drift_share=float(drift["share"]),
        drifted_features=list(drift["drifted_features"]), features=drift["features"],
        quality_findings=computed["findings"], concept=computed["concept"], fairness=computed["fairness"],
        severity=severity, alerts=alerts, duration_ms=round(duration_ms, 3), checked_at=now,
    )
    with transaction.atomic():
        result.save()
    for alert, _ in raised:
        alert.last_result = result
        alert.save(update_fields=["last_result", "updated_at"])
    DriftMonitor.objects.filter(pk=monitor.pk).update(last_checked_at=now, updated_at=now)
    audit_event_record(
        actor=actor, system="monitoring", action=AuditAction.DRIFT_CHECKED, target=result,
        after={"monitor": monitor.pk, "batch": batch.pk, "batch_sha256": batch.sha256,
               "dataset_drift": result.dataset_drift, "share": result.drift_share,
               "drifted_features": result.drifted_features, "severity": severity, "alerts": alerts},
        payload={"features": [{k: f.get(k) for k in ("feature", "test", "statistic", "p_value", "threshold",
                                                      "drifted")} for f in result.features],
                 "quality_findings": [f["code"] + ":" + f["column"] for f in result.quality_findings],
                 "concept_breached": (computed["concept"] or {}).get("breached", []),
                 "fairness_breached": (computed["fairness"] or {}).get("breached", [])},
    )
    return result


def monitors_due(*, now: dt.datetime | None = None) -> list[DriftMonitor]:
    """Active monitors whose interval has passed since their last check (or never checked)."""
    now = now or timezone.now()
    due = []
    for monitor in DriftMonitor.objects.filter(is_active=True).select_related("model_version__model", "reference"):
        if monitor.last_checked_at is None or monitor.last_checked_at + dt.timedelta(
                minutes=monitor.interval_minutes) <= now:
            due.append(monitor)
    return due


def batches_unchecked(monitor: DriftMonitor) -> list[MonitoringBatch]:
    """The monitor's batches without a result yet, oldest first."""
    return list(monitor.batches.exclude(results__monitor=monitor).order_by("received_at", "id"))
