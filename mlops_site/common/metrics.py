"""Prometheus metrics at `GET /metrics` (issue 8): gate decisions, request latencies, open alerts.

- `attest_gate_decisions_total{result}`: gate answers, `allowed` or `denied`, counted when the
  decision's transaction commits (a rolled-back decision was never an answer);
- `attest_gate_failed_checks_total{code}`: the failing checks of denied answers, by check code;
- `attest_http_request_duration_seconds{method,route,status}`: latency of every request, by the
  URL pattern (not the raw path, so ids do not explode the label set);
- `attest_compliance_alerts{severity,status}`: alerts in the database now, read at scrape time;
- `attest_mlflow_alias_alerts{status}`: critical MLflow alias alerts, the compliance alerts of kind
  `alias_moved` (governance/mlflow_import.py raises them through monitoring).

With several gunicorn workers set `PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by
them (prometheus-client's multiprocess mode); counters are then summed over the workers.
"""

import logging
import os
import time

from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

GATE_DECISIONS = Counter("attest_gate_decisions", "Gate answers by result.", ["result"])
GATE_FAILED_CHECKS = Counter("attest_gate_failed_checks", "Failed checks in gate answers, by code.", ["code"])
REQUEST_LATENCY = Histogram(
    "attest_http_request_duration_seconds", "Request latency by method, URL pattern and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def gate_decision_count(*, allowed: bool, checks: list[dict]) -> None:
    GATE_DECISIONS.labels(result="allowed" if allowed else "denied").inc()
    for check in checks or ():
        if not check.get("passed"):
            GATE_FAILED_CHECKS.labels(code=str(check.get("code"))).inc()


def _on_gate_decision_saved(sender, instance, created, **kwargs) -> None:
    if created:
        allowed, checks = instance.allowed, list(instance.checks or [])
        transaction.on_commit(lambda: gate_decision_count(allowed=allowed, checks=checks),
                              using=kwargs.get("using"))


post_save.connect(_on_gate_decision_saved, sender="governance.GateDecision",
                  dispatch_uid="attest-metrics-gate-decision")


class AlertCollector:
    """Open, acknowledged, … alerts by severity, counted in the database when scraped."""

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily("attest_compliance_alerts", "Compliance alerts by severity and status.",
                                   labels=["severity", "status"])
        try:
            from django.apps import apps
            from django.db.models import Count

            alert = apps.get_model("monitoring", "ComplianceAlert")
            rows = alert.objects.values_list("severity", "status").annotate(n=Count("id")).order_by()
            for severity, status, count in rows:
                family.add_metric([severity, status], count)
        except Exception:  # noqa: BLE001 - a scrape must answer even when the table is not there yet
            logger.warning("attest_compliance_alerts: cannot count the alerts", exc_info=True)
        yield family
        mlflow = GaugeMetricFamily("attest_mlflow_alias_alerts", "Critical MLflow alias alerts by status.",
                                   labels=["status"])
        try:
            from django.apps import apps
            from django.db.models import Count

            alias_alerts = apps.get_model("monitoring", "ComplianceAlert").objects.filter(kind="alias_moved")
            for status, count in alias_alerts.values_list("status").annotate(n=Count("id")).order_by():
                mlflow.add_metric([status], count)
        except Exception:  # noqa: BLE001 - as above
            logger.warning("attest_mlflow_alias_alerts: cannot count the alerts", exc_info=True)
        yield mlflow


class OutboxCollector:
    """`attest_outbox_pending`: outbox rows the broker has not taken yet (governance/outbox.py).

    Above zero for longer than ATTEST_OUTBOX_RELAY_SECONDS: the broker is down or no relay runs.
    """

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily("attest_outbox_pending", "Outbox rows not yet handed to the broker.")
        try:
            from governance.outbox import outbox_pending_count

            family.add_metric([], outbox_pending_count())
        except Exception:  # noqa: BLE001 - a scrape must answer even when the table is not there yet
            logger.warning("attest_outbox_pending: cannot count the rows", exc_info=True)
        yield family


_ALERTS = AlertCollector()
REGISTRY.register(_ALERTS)
_OUTBOX = OutboxCollector()
REGISTRY.register(_OUTBOX)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_ALERTS)
    registry.register(_OUTBOX)
    return registry


def metrics_view(request):
    """The exposition text format; no authentication (scrape it from inside the network)."""
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


class RequestLatencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = ("/" + match.route) if match is not None and match.route else "unmatched"
        if route != "/metrics":
            REQUEST_LATENCY.labels(method=request.method, route=route,
                                   status=str(response.status_code)).observe(time.perf_counter() - started)
        return response
