"""Reads of evaluations, reports and charts, scoped by user; the gate's report provider; the model card.

Scope as everywhere: governance roles and administrators read every team's records, everyone
else those of the models of their teams. Another team's evaluation or report reads as missing.
"""

from typing import Any

from django.db.models import QuerySet

from governance import hot_reads
from governance.errors import not_found
from governance.models import Evaluation, Report, ReportChart
from registry import selectors as registry_selectors
from registry.models import ModelVersion

EVALUATION_NOT_FOUND = "Evaluation {pk} not found."
REPORT_NOT_FOUND = "Report {pk} not found."
CHART_NOT_FOUND = "Report {pk} has no chart {name!r}."


def scoped_to_user(queryset: QuerySet, user: Any, prefix: str) -> QuerySet:
    if registry_selectors.user_reads_everything(user):
        return queryset
    if user is None or not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(**{f"{prefix}model__team__members": user})


def _pk(value: Any, message: str) -> int:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise not_found(message) from None
    if not 0 < pk < 2**63:  # beyond a database id: missing, not a database error
        raise not_found(message)
    return pk


# --- the gate's provider ---------------------------------------------------------------------------

def report_as_evidence(report: Report) -> dict[str, Any]:
    return {"id": report.pk, "kind": report.kind, "sha256": report.sha256, "artifact_sha256": report.artifact_sha256,
            "dataset_sha256": report.dataset_sha256, "created_at": report.created_at, "results": report.results}


def model_version_reports_latest(model_version: ModelVersion) -> list[dict[str, Any]]:
    """The newest report of each kind of a version, newest first (governance.selectors' provider).

    Only the newest per kind is evidence: a recompute replaces it, which voids an approval
    signed on the earlier one (the gate's `report_stale`).
    """
    latest: dict[str, Report] = {}
    for report in hot_reads.reports_of_version(model_version.pk):
        latest.setdefault(report.kind, report)
    return [report_as_evidence(r) for r in sorted(latest.values(), key=lambda r: (r.created_at, r.pk), reverse=True)]


# --- evaluations and reports -----------------------------------------------------------------------

def evaluation_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[Evaluation]:
    """Evaluations the user may read, newest first; filters: model_version, dataset_version, status."""
    filters = filters or {}
    qs = Evaluation.objects.select_related("model_version__model", "dataset_version__dataset", "requested_by")
    qs = scoped_to_user(qs, user, "model_version__").prefetch_related("reports__charts")
    for key in ("model_version", "dataset_version", "status"):
        if filters.get(key) not in (None, ""):
            qs = qs.filter(**{key: filters[key]})
    return qs.order_by("-created_at", "-id")


def evaluation_get_for_user(*, user: Any, pk: Any) -> Evaluation:
    message = EVALUATION_NOT_FOUND.format(pk=pk)
    evaluation = evaluation_list(user=user).filter(pk=_pk(pk, message)).first()
    if evaluation is None:
        raise not_found(message)
    return evaluation


def report_get_for_user(*, user: Any, pk: Any) -> Report:
    message = REPORT_NOT_FOUND.format(pk=pk)
    qs = scoped_to_user(Report.objects.select_related("model_version__model", "evaluation__dataset_version__dataset"),
                 user, "model_version__")
    report = qs.prefetch_related("charts").filter(pk=_pk(pk, message)).first()
    if report is None:
        raise not_found(message)
    return report


def report_chart_get_for_user(*, user: Any, pk: Any, name: str) -> ReportChart:
    report = report_get_for_user(user=user, pk=pk)
    chart = ReportChart.objects.filter(report=report, name=name).first()
    if chart is None:
        raise not_found(CHART_NOT_FOUND.format(pk=pk, name=name))
    return chart


def chart_names(report: Report) -> list[str]:
    return [chart.name for chart in report.charts.all()]


def report_thresholds(report: Report) -> list[dict[str, Any]]:
    """The thresholds of the policy in force for the report's model, each with the report's value and verdict.

    The same numbers the gate reads (its headline, or the headline without small groups when the
    policy says so); the gate itself decides, this is the reviewer's view of one report.
    """
    from governance.gate import DP_RATIO_MIN, EO_DIFFERENCE_MAX, FAIRNESS_SMALL_GROUPS, METRIC, METRIC_MIN
    from governance.selectors import policy_current

    if report.kind != Report.Kind.FAIRNESS:
        return []
    policy = policy_current(risk_tier=report.model_version.model.risk_tier)
    thresholds, results = policy.thresholds or {}, report.results or {}
    exclude = thresholds.get(FAIRNESS_SMALL_GROUPS) == "exclude"
    headline = results.get("headline_excluding_small" if exclude else "headline") or {}
    rows = []
    for key, metric, lower_is_worse in ((DP_RATIO_MIN, "demographic_parity_ratio", True),
                                        (EO_DIFFERENCE_MAX, "equalized_odds_difference", False)):
        if key not in thresholds:
            continue
        value, limit = headline.get(metric), thresholds[key]
        passed = value is not None and (value >= limit if lower_is_worse else value <= limit)
        rows.append({"threshold": key, "metric": metric, "limit": limit, "value": value, "passed": passed,
                     "where": (headline.get("where") or {}).get(metric), "policy": str(policy)})
    if METRIC_MIN in thresholds:
        metric = thresholds.get(METRIC, "accuracy")
        value = (report.model_version.metrics or {}).get(metric, (results.get("overall") or {}).get(metric))
        passed = isinstance(value, int | float) and value >= thresholds[METRIC_MIN]
        rows.append({"threshold": METRIC_MIN, "metric": metric, "limit": thresholds[METRIC_MIN], "value": value,
                     "passed": passed, "where": None, "policy": str(policy)})
    return rows
