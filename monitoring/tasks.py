"""Celery tasks of monitoring: each loads what it needs by id and calls one service.

The beat schedule (settings.CELERY_BEAT_SCHEDULE["drift-checks"]) runs `drift_checks_due_task`,
which checks every unchecked batch of each due monitor. Checks are idempotent (one result per
monitor and batch), so a retried or duplicated task writes nothing twice.
"""

from celery import shared_task
from django.conf import settings

from governance.notify import DeliveryFailed


@shared_task(name="monitoring.tasks.drift_check_task", bind=True, autoretry_for=(OSError,), retry_backoff=True,
             max_retries=3)
def drift_check_task(self, monitor_id: int, batch_id: int) -> int:
    """Check one batch with its monitor; returns the DriftResult id."""
    from monitoring.models import DriftMonitor, MonitoringBatch
    from monitoring.services.checks import drift_check_run

    monitor = DriftMonitor.objects.select_related("model_version__model", "reference").get(pk=monitor_id)
    batch = MonitoringBatch.objects.get(pk=batch_id, monitor=monitor)
    return drift_check_run(monitor=monitor, batch=batch).pk


def drift_check_queue(monitor_id: int, batch_id: int) -> None:
    """Queue the check of a batch just ingested (called on commit)."""
    if drift_check_task.app.conf.task_always_eager:
        # apply(), not delay(): an eager delay() still caches a producer pool for a broker that
        # does not exist (see governance.tasks.notification_fanout_queue).
        drift_check_task.apply((monitor_id, batch_id))
    else:
        drift_check_task.delay(monitor_id, batch_id)


@shared_task(name="monitoring.tasks.drift_checks_due_task")
def drift_checks_due_task() -> int:
    """Check the unchecked batches of every due monitor (the beat schedule); returns how many results were written."""
    from monitoring.services.checks import batches_unchecked, drift_check_run, monitors_due

    written = 0
    for monitor in monitors_due():
        for batch in batches_unchecked(monitor):
            drift_check_run(monitor=monitor, batch=batch)
            written += 1
    return written


@shared_task(name="monitoring.tasks.alert_notification_task", bind=True, autoretry_for=(DeliveryFailed,),
             retry_backoff=True, retry_backoff_max=settings.ATTEST_NOTIFY_RETRY_BACKOFF_MAX_SECONDS, retry_jitter=True,
             max_retries=settings.ATTEST_NOTIFY_MAX_RETRIES)
def alert_notification_task(self, payload: dict, channel: str, target: str) -> None:
    """Send one alert notification to one target; retried with backoff when it fails."""
    from monitoring.services.notifications import alert_notification_send

    alert_notification_send(payload=payload, channel=channel, target=target)
