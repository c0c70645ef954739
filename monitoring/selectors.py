"""Monitoring reads, scoped by user: governance roles and superusers read every team's
monitors, batches, results and alerts; everyone else those of their teams' models.
An object the user may not see reads as missing (404)."""

from typing import Any

from django.db.models import Q, QuerySet

from governance.permissions import user_reads_all
from mlops_site.common import sql_rows
from monitoring import errors
from monitoring.models import ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch, Severity


def _scope(user: Any, prefix: str) -> Q | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    if user_reads_all(user):
        return None
    return Q(**{f"{prefix}team__members": user})


def _scoped(queryset: QuerySet, user: Any, prefix: str) -> QuerySet:
    scope = _scope(user, prefix)
    return queryset if scope is None else queryset.filter(scope)


def drift_monitor_list(*, user: Any) -> QuerySet[DriftMonitor]:
    return _scoped(DriftMonitor.objects.select_related("model_version__model", "reference__dataset"), user,
                   "model_version__model__")


def drift_monitor_get_for_user(*, user: Any, pk: Any) -> DriftMonitor:
    monitor = drift_monitor_list(user=user).filter(pk=pk).first()
    if monitor is None:
        raise errors.not_found("No such monitor.", field="monitor")
    return monitor


def monitoring_batch_list(*, user: Any) -> QuerySet[MonitoringBatch]:
    return _scoped(MonitoringBatch.objects.select_related("monitor__model_version__model", "received_by"), user,
                   "monitor__model_version__model__")


def monitoring_batch_get_for_user(*, user: Any, pk: Any) -> MonitoringBatch:
    batch = monitoring_batch_list(user=user).filter(pk=pk).first()
    if batch is None:
        raise errors.not_found("No such batch.")
    return batch


def drift_result_list(*, user: Any) -> QuerySet[DriftResult]:
    return _scoped(DriftResult.objects.select_related("batch", "monitor__model_version__model"), user,
                   "monitor__model_version__model__")


def compliance_alert_list(*, user: Any) -> QuerySet[ComplianceAlert]:
    return _scoped(ComplianceAlert.objects.select_related(
        "model", "model_version", "monitor", "assigned_team", "acknowledged_by", "closed_by", "retraining_request",
    ).prefetch_related("signatures"), user, "model__")


def compliance_alert_get_for_user(*, user: Any, pk: Any) -> ComplianceAlert:
    alert = compliance_alert_list(user=user).filter(pk=pk).first()
    if alert is None:
        raise errors.not_found("No such alert.")
    return alert


def open_critical_alert_statement(model_version: Any) -> sql_rows.Statement:
    """The read of `open_critical_alert_message`, which the gate sends with its own (one round trip)."""
    # A literal statement, not a QuerySet: the gate asks this on every request, and the ORM's
    # compiler cost several times the query (docs/BENCHMARKS.md, "Gate").
    return ("SELECT id, status, title FROM monitoring_compliancealert WHERE model_id = %s AND severity = %s "
            "AND status IN (%s, %s) ORDER BY first_seen_at, id LIMIT 1",
            [model_version.model_id, Severity.CRITICAL.value, *ComplianceAlert.ACTIVE])


def open_critical_alert_message(model_version: Any) -> str | None:
    """The gate's `open_critical_alert` check (registered at ready()): a message while one is active.

    An acknowledged alert still blocks: someone owns it, nobody has closed it. One indexed query.
    """
    rows = sql_rows.fetch_rows(*open_critical_alert_statement(model_version))
    if not rows:
        return None
    pk, status, title = rows[0]
    return f"Critical compliance alert #{pk} is {status} for {model_version.model.name}: {title}"
