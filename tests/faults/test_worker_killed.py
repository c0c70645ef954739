"""A Celery worker's pool process is killed in the middle of a report or a drift check (PostgreSQL + broker).

A real worker runs as a subprocess (`celery worker --pool=prefork --concurrency=1`) on the
configured broker and the test database. The task is held at a wait point that exists anyway: a
lock the test takes from its own connection (a row the task is about to write, or the audit
sequencer's advisory lock it takes right after its commit). Once PostgreSQL shows the worker's
backend waiting on that lock, the test SIGKILLs the pool process, then lets the lock go. With
`acks_late` and `reject_on_worker_lost`, the master requeues the message at once (not after the
broker's visibility timeout) and a fresh pool process runs the task again.

Passes when: the evaluation or check ends in its final state (never left `running`), with exactly
one result (one report per kind, one DriftResult per batch), one completion event each in the
audit log, no duplicate alert, and the audit log verifies.
"""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction

from governance.audit import AuditAction, audit_log_sequence
from governance.audit_verify import audit_log_verify
from governance.models import AuditEvent, AuditQueueEntry, Evaluation, Report
from mlops_site.celery import app

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

CELERY = Path(sys.executable).with_name("celery")
READY_S = 60
SETTLE_S = 3.0  # after the final state, how long a second (duplicate) delivery gets to show itself


@pytest.fixture(autouse=True)
def _postgres_and_broker():
    if connection.vendor != "postgresql":
        pytest.skip("the wait point is a PostgreSQL row or advisory lock (SQLite locks the whole file), and the "
                    "SQLite run has no broker a second process can reach; runs in .ci/run's PostgreSQL+Redis pass")
    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs CELERY_BROKER_URL: the worker is a separate process")


def _forget_producer_pools() -> None:
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(settings):
    """Publish to the configured broker (not eager), with its queue emptied first."""
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _forget_producer_pools()
    app.conf.update(broker_url=settings.CELERY_BROKER_URL, task_always_eager=False)
    app.control.purge()
    try:
        yield
    finally:
        app.control.purge()
        app.conf.update(previous)
        _forget_producer_pools()


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def locker():
    """A second connection to the test database whose open transaction holds the test's lock.

    Closed before the database is flushed (the flush would wait for its lock otherwise).
    """
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                         password=db["PASSWORD"] or None, dbname=db["NAME"]) as other:
        yield other


class Worker:
    """`celery worker` as a subprocess on the test database; its log is kept for the failure message."""

    def __init__(self, log: Path) -> None:
        self.log = log
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlops_site.settings_test", "DATABASE_URL": _database_url(),
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
        env.pop("CELERY_RESULT_BACKEND", None)
        self.process = subprocess.Popen(
            [str(CELERY), "-A", "mlops_site", "worker", "--pool=prefork", "--concurrency=1", "-Q", "celery",
             "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "info",
             "-n", f"attest-fault-{os.getpid()}@%h"],
            cwd=settings.BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(lambda: "ready." in self.text(), READY_S, "the worker to be ready")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def wait_for(self, condition, seconds: float, what: str):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}):\n{self.text()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def worker_process(tmp_path):
    worker = Worker(tmp_path / "worker.log")
    try:
        yield worker
    finally:
        worker.stop()


def _lock_waiters(locker: psycopg.Connection) -> list[int]:
    """Backends of the test database (other than the locker) waiting for a lock."""
    rows = locker.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND pid <> pg_backend_pid()").fetchall()
    return [pid for (pid,) in rows]


def _kill_the_pool_process_while_it_waits(worker: Worker, locker: psycopg.Connection) -> float:
    """SIGKILL the pool process blocked on the locker's lock, then release the lock; returns when it was killed."""
    worker.wait_for(lambda: _lock_waiters(locker), 120, "the task to wait on the test's lock")
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait_for(lambda: worker.children() and worker.children() != [child], 30, "a fresh pool process")
    locker.rollback()  # the lock goes; the dead attempt's backend rolls back when it finds its client gone
    return killed_at


def _events(action: str, object_ids) -> int:
    ids = [str(pk) for pk in object_ids]
    return (AuditEvent.objects.filter(action=action, object_id__in=ids).count()
            + AuditQueueEntry.objects.filter(action=action, object_id__in=ids).count())


def _assert_the_log_verifies() -> None:
    audit_log_sequence()
    assert AuditQueueEntry.objects.count() == 0
    result = audit_log_verify()
    assert result.ok, result


def _wait_finished(worker: Worker, evaluation: Evaluation, seconds: float = 120) -> Evaluation:
    def finished():
        evaluation.refresh_from_db()
        return evaluation.finished
    worker.wait_for(finished, seconds, f"evaluation {evaluation.pk} to finish")
    return evaluation


def _request_evaluation():
    from governance.services.evaluations import evaluation_request
    from tests.governance.evaluation_factories import credit_world

    credit = credit_world(prefix="kill-")
    with transaction.atomic():  # queued for the worker on commit
        evaluation = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                        dataset_version=credit.evaluation, bootstrap=50)
    return credit, evaluation


def _assert_one_set_of_reports(evaluation: Evaluation) -> None:
    assert (evaluation.status, evaluation.progress, evaluation.failure_code) == ("succeeded", 100, ""), (
        evaluation.failure_code, evaluation.failure_reason)
    reports = list(Report.objects.filter(evaluation=evaluation))
    assert sorted(r.kind for r in reports) == ["explainability", "fairness"]
    assert _events(AuditAction.REPORT_CREATED, [r.pk for r in reports]) == 2
    assert _events(AuditAction.EVALUATION_FAILED, [evaluation.pk]) == 0


def test_a_report_whose_worker_dies_before_its_commit_is_computed_again_once(broker, locker, tmp_path):
    # given: an evaluation queued; the test holds its model version's row, so the task runs (status
    # `running` committed, the computation done) and then waits at the reports' INSERT (its foreign key
    # check needs a share lock on that row)
    credit, evaluation = _request_evaluation()
    locker.execute("SELECT id FROM registry_modelversion WHERE id = %s FOR UPDATE", [credit.version.pk])
    with worker_process(tmp_path) as worker:
        # when: the pool process dies while it waits, its reports not committed
        worker.wait_for(lambda: Evaluation.objects.filter(pk=evaluation.pk, status="running").exists(), 120,
                        "the evaluation to be running")
        killed_at = _kill_the_pool_process_while_it_waits(worker, locker)
        evaluation = _wait_finished(worker, evaluation)
        redone_s = time.monotonic() - killed_at
        time.sleep(SETTLE_S)
        log = worker.text()
    # then: the message came back at once (not after the visibility timeout) and the work was done once
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    assert redone_s < 60, redone_s
    evaluation.refresh_from_db()
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_report_whose_worker_dies_after_its_commit_is_not_made_twice(broker, locker, tmp_path):
    # given: the test holds the audit sequencer's lock, so the task commits its reports and then waits
    # right after commit (chaining its events), before it returns and its message is acknowledged
    from governance.audit import _SEQUENCER_LOCK_KEY

    credit, evaluation = _request_evaluation()
    audit_log_sequence()
    locker.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
    with worker_process(tmp_path) as worker:
        # when: the pool process dies there; the master requeues the message and a fresh one runs it
        _kill_the_pool_process_while_it_waits(worker, locker)
        evaluation = _wait_finished(worker, evaluation)
        worker.wait_for(lambda: "succeeded in" in worker.text(), 60, "the redelivered task to return")
        time.sleep(SETTLE_S)
        log = worker.text()
    # then: the redelivered task found the reports committed and returned without a second set
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_drift_check_whose_worker_dies_before_its_commit_leaves_one_result(broker, locker, tmp_path):
    from monitoring.models import ComplianceAlert, DriftResult
    from monitoring.services.batches import monitoring_batch_ingest
    from monitoring.tasks import drift_check_queue
    from tests.monitoring.conftest import Shop, csv_file, sample

    # given: a drifted batch stored; the test holds its monitor's row, so the check computes and then
    # waits where it writes (the result, its alerts and DRIFT_CHECKED are one transaction under that lock)
    shop = Shop(prefix="kill-")
    batch, _ = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, check_on_commit=False,
                                       file=csv_file(sample(5000, seed=3, age_shift=15, colour_mix=(0.2, 0.3, 0.5))))
    locker.execute("SELECT id FROM monitoring_driftmonitor WHERE id = %s FOR UPDATE", [shop.monitor.pk])
    drift_check_queue(shop.monitor.pk, batch.pk)
    with worker_process(tmp_path) as worker:
        # when
        killed_at = _kill_the_pool_process_while_it_waits(worker, locker)
        worker.wait_for(lambda: DriftResult.objects.filter(batch=batch).exists(), 120, "the drift result")
        redone_s = time.monotonic() - killed_at
        time.sleep(SETTLE_S)
        log = worker.text()
    # then: one result, one DRIFT_CHECKED, one alert per kind raised once
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    assert redone_s < 60, redone_s
    results = list(DriftResult.objects.filter(monitor=shop.monitor, batch=batch))
    assert len(results) == 1
    assert results[0].drifted_features == ["age", "colour"]
    assert _events(AuditAction.DRIFT_CHECKED, [results[0].pk]) == 1
    alerts = list(ComplianceAlert.objects.filter(monitor=shop.monitor))
    assert sorted(a.kind for a in alerts) == sorted({a.kind for a in alerts}) and alerts
    assert _events(AuditAction.ALERT_RAISED, [a.pk for a in alerts]) == len(alerts)
    assert _events(AuditAction.ALERT_REPEATED, [a.pk for a in alerts]) == 0
    _assert_the_log_verifies()
