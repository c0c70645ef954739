"""Drift monitors: create one for a model version and environment, change what it watches."""

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from governance.audit import AuditAction, audit_event_record
from governance.environments import environment_require_known
from monitoring import errors
from monitoring.access import can_manage_monitor
from monitoring.models import DriftMonitor, Severity
from monitoring.tables import column_kind, reference_frame
from registry.models import DatasetVersion, ModelVersion

UPDATABLE = ("features", "drift_share", "interval_minutes", "breach_severity", "retrain_on_critical", "is_active",
             "label_column", "prediction_column", "metric_tolerance", "fairness_tolerance")

REFERENCE_REQUIRED = "{version} has no training dataset version; name the reference dataset version."
ENVIRONMENT_INVALID = "An environment is 1 to 50 printable characters."
VERSION_ARCHIVED = "{version} is archived; it is not monitored."


def _reference_default(model_version: ModelVersion) -> DatasetVersion:
    reference = model_version.training_datasets.order_by("pk").first()
    if reference is None:
        raise errors.invalid(REFERENCE_REQUIRED.format(version=model_version), code="reference_required",
                             field="reference")
    return reference


def _features_resolve(*, model_version: ModelVersion, reference: DatasetVersion, features: Iterable[Any] | None,
                      exclude: set[str]) -> list[dict[str, Any]]:
    """[{"name", "kind", "test", "threshold"}]: the names asked for (default: the model's inputs), typed
    by the reference."""
    frame = reference_frame(reference.storage_key, reference.sha256)
    columns = list(frame.columns)
    if features is None:
        names = [name for name in (model_version.feature_names or []) if name in columns]
        requested: list[Any] = names or [c for c in columns if c not in exclude]
    else:
        requested = list(features)
    resolved, unknown, seen = [], [], set()
    for item in requested:
        spec = {"name": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        if spec is None or not isinstance(spec.get("name"), str):
            raise errors.invalid("A feature is a column name or {name, test, threshold}.", field="features")
        name = spec["name"]
        if name not in columns:
            unknown.append(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        kind = column_kind(frame[name])
        test = spec.get("test") or None
        from monitoring.stats import TESTS_FOR_KIND

        allowed = sorted(TESTS_FOR_KIND[kind])
        if test is not None and test not in allowed:
            raise errors.invalid(f"{name!r} is {kind}; its test is one of {', '.join(allowed)}.", code="invalid_test",
                                 field="features")
        threshold = spec.get("threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                      or threshold < 0):
            raise errors.invalid(f"The threshold of {name!r} is a non-negative number.", field="features")
        resolved.append({"name": name, "kind": kind, "test": test,
                         "threshold": float(threshold) if threshold is not None else None})
    if unknown:
        raise errors.unknown_feature(reference=reference, names=unknown)
    if not resolved:
        raise errors.invalid("A monitor watches at least one feature.", code="no_features", field="features")
    return resolved


def _settings_check(values: dict[str, Any]) -> None:
    if "drift_share" in values and not (isinstance(values["drift_share"], int | float)
                                        and 0 < values["drift_share"] <= 1):
        raise errors.invalid("drift_share is in (0, 1].", field="drift_share")
    if "interval_minutes" in values and not (isinstance(values["interval_minutes"], int)
                                             and values["interval_minutes"] >= 1):
        raise errors.invalid("interval_minutes is a positive whole number.", field="interval_minutes")
    if "breach_severity" in values and values["breach_severity"] not in Severity.values:
        raise errors.invalid(f"breach_severity is one of {', '.join(Severity.values)}.", field="breach_severity")
    for key in ("metric_tolerance", "fairness_tolerance"):
        if key in values and not (isinstance(values[key], int | float) and values[key] >= 0):
            raise errors.invalid(f"{key} is a non-negative number.", field=key)


def _facts(monitor: DriftMonitor) -> dict[str, Any]:
    return {
        "model": monitor.model_version.model.name, "version": monitor.model_version.version,
        "environment": monitor.environment, "reference": monitor.reference_id,
        "reference_sha256": monitor.reference.sha256, "features": monitor.features,
        "drift_share": monitor.drift_share, "interval_minutes": monitor.interval_minutes,
        "breach_severity": monitor.breach_severity, "retrain_on_critical": monitor.retrain_on_critical,
        "label_column": monitor.label_column, "prediction_column": monitor.prediction_column,
        "metric_tolerance": monitor.metric_tolerance, "fairness_tolerance": monitor.fairness_tolerance,
        "is_active": monitor.is_active,
    }


@transaction.atomic
def drift_monitor_create(*, actor: Any, model_version: ModelVersion, environment: str,
                         reference: DatasetVersion | None = None, features: Iterable[Any] | None = None,
                         drift_share: float = 0.5, interval_minutes: int = 60, breach_severity: str = Severity.WARNING,
                         retrain_on_critical: bool = False, label_column: str = "", prediction_column: str = "",
                         metric_tolerance: float = 0.05, fairness_tolerance: float = 0.1) -> DriftMonitor:
    """Watch `model_version` in `environment` against `reference` (default: its training data).

    Refuses: someone outside the model's team without `alert.manage` (403 `permission_denied`),
    an archived version (409 `model_version_archived`), no reference (400 `reference_required`),
    features the reference lacks (400 `unknown_feature`), a test that does not fit the column
    (400 `invalid_test`), a second monitor for the same version and environment (409
    `monitor_exists`). Writes MONITOR_CREATED.
    """
    if not can_manage_monitor(actor, model_version):
        raise errors.not_allowed(user=actor, action=f"monitor {model_version}")
    if model_version.archived_at is not None or model_version.status == ModelVersion.Status.ARCHIVED:
        raise errors.ConflictError(VERSION_ARCHIVED.format(version=model_version), code="model_version_archived")
    environment = (environment or "").strip() if isinstance(environment, str) else ""
    if not environment or len(environment) > 50 or not environment.isprintable():
        raise errors.invalid(ENVIRONMENT_INVALID, field="environment")
    environment_require_known(environment)
    _settings_check({"drift_share": drift_share, "interval_minutes": interval_minutes,
                     "breach_severity": breach_severity, "metric_tolerance": metric_tolerance,
                     "fairness_tolerance": fairness_tolerance})
    reference = reference or _reference_default(model_version)
    label_column = label_column or reference.target_column
    exclude = {label_column, prediction_column} - {""}
    resolved = _features_resolve(model_version=model_version, reference=reference, features=features,
                                 exclude=exclude)
    existing = DriftMonitor.objects.filter(model_version=model_version, environment=environment).first()
    if existing is not None:
        raise errors.monitor_exists(version=model_version, environment=environment, pk=existing.pk)
    monitor = DriftMonitor(
        model_version=model_version, environment=environment, reference=reference, features=resolved,
        drift_share=float(drift_share), interval_minutes=interval_minutes, breach_severity=breach_severity,
        retrain_on_critical=bool(retrain_on_critical), label_column=label_column,
        prediction_column=prediction_column or "", metric_tolerance=float(metric_tolerance),
        fairness_tolerance=float(fairness_tolerance), created_by=actor,
    )
    monitor.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            monitor.save()
    except IntegrityError as exc:
        raise errors.monitor_exists(version=model_version, environment=environment, pk=0) from exc
    audit_event_record(actor=actor, action=AuditAction.MONITOR_CREATED, target=monitor, after=_facts(monitor))
    return monitor


@transaction.atomic
def drift_monitor_update(*, actor: Any, monitor: DriftMonitor, reason: str = "", **changes: Any) -> DriftMonitor:
    """Change what a monitor watches or how it reacts (fields of UPDATABLE); writes MONITOR_UPDATED.

    Results already written keep the settings they were computed with (their features and
    thresholds are in the result). Nothing changed: nothing written.
    """
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise errors.invalid(f"Not changeable: {', '.join(unknown)}.", field=unknown[0])
    monitor = DriftMonitor.objects.select_for_update().select_related("model_version__model", "reference").get(
        pk=monitor.pk)
    if not can_manage_monitor(actor, monitor.model_version):
        raise errors.not_allowed(user=actor, action=f"change {monitor}")
    _settings_check(changes)
    if "features" in changes:
        changes["features"] = _features_resolve(model_version=monitor.model_version, reference=monitor.reference,
                                                features=changes["features"], exclude=set())
    before = _facts(monitor)
    for key, value in changes.items():
        setattr(monitor, key, value)
    after = _facts(monitor)
    changed = {key: after[key] for key in after if after[key] != before[key]}
    if not changed:
        return monitor
    monitor.full_clean(validate_unique=False)
    monitor.save(update_fields=[*changes, "updated_at"])
    audit_event_record(actor=actor, action=AuditAction.MONITOR_UPDATED, target=monitor,
                       before={key: before[key] for key in changed}, after=changed, reason=reason or None)
    return monitor
