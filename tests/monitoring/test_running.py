"""Running checks: the management command, the beat task, and a real Celery worker on the broker."""

import io
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from monitoring.models import ComplianceAlert, DriftResult, MonitoringBatch
from monitoring.services.batches import monitoring_batch_ingest
from monitoring.tasks import drift_checks_due_task
from tests.monitoring.conftest import Shop, csv_file, sample


def test_run_drift_checks_checks_each_unchecked_batch_once_and_prints_progress(shop, tmp_path):
    # given: one batch stored without its check, one file on disk for a batch job
    monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, file=csv_file(sample(300, seed=4)),
                            check_on_commit=False)
    path = tmp_path / "drifted.csv"
    path.write_bytes(csv_file(sample(300, seed=3, age_shift=15, colour_mix=(0.2, 0.3, 0.5))).read())
    out, err = io.StringIO(), io.StringIO()
    # when
    call_command("run_drift_checks", "--monitor", str(shop.monitor.pk), "--batch", str(path), stdout=out, stderr=err)
    again = io.StringIO()
    call_command("run_drift_checks", "--all", stdout=again, stderr=io.StringIO())
    # then
    text = out.getvalue()
    assert "1 monitor(s) due, 2 batch(es) to check" in text
    assert "DRIFT (age, colour), severity critical" in text
    assert "Checked 2 batch(es) of 1 monitor(s): 1 with dataset drift" in text
    assert "drift checks" in err.getvalue()  # the tqdm bar
    assert "0 batch(es) to check" in again.getvalue()
    assert DriftResult.objects.count() == 2
    assert MonitoringBatch.objects.get(source="path").row_count == 300


def test_the_beat_task_checks_due_monitors_only(shop):
    monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, file=csv_file(sample(300, seed=4)),
                            check_on_commit=False)
    assert drift_checks_due_task() == 1
    # checked just now: not due again until its interval passes, and nothing is left anyway
    monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, file=csv_file(sample(300, seed=6)),
                            check_on_commit=False)
    assert drift_checks_due_task() == 0
    assert settings.CELERY_BEAT_SCHEDULE["drift-checks"]["task"] == "monitoring.tasks.drift_checks_due_task"


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_checked_by_a_real_worker_through_the_broker(celery_worker, storage_root):
    # given: committed data (the worker's thread has its own connection)
    shop = Shop(prefix="w")
    # when: the ingest commits and queues the check for the worker
    with transaction.atomic():
        batch, _ = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor,
                                           file=csv_file(sample(300, seed=3, age_shift=15, colour_mix=(0.2, 0.3,
                                                                                                        0.5))))
    deadline = time.monotonic() + 60
    while not DriftResult.objects.filter(batch=batch).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    # then
    result = DriftResult.objects.get(batch=batch)
    assert result.drifted_features == ["age", "colour"]
    assert ComplianceAlert.objects.get(kind="data_drift").severity == "critical"


@pytest.mark.django_db(transaction=True)
def test_two_workers_checking_the_same_batch_at_once_leave_one_result(storage_root):
    import threading

    from django.db import connection

    from monitoring.services.checks import drift_check_run

    shop = Shop(prefix="race")
    with transaction.atomic():
        batch, _ = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, check_on_commit=False,
                                           file=csv_file(sample(300, seed=3, age_shift=15,
                                                                colour_mix=(0.2, 0.3, 0.5))))
    barrier, results, errors = threading.Barrier(2), [], []

    def worker():
        try:
            barrier.wait(timeout=30)
            results.append(drift_check_run(monitor=shop.monitor, batch=batch).pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert DriftResult.objects.filter(batch=batch).count() == 1
    alert = ComplianceAlert.objects.get(kind="data_drift")
    assert alert.repeat_count == 1
