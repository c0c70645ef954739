"""A Celery worker is killed in the middle of a report or a drift check (PostgreSQL + broker).

A real worker runs as a subprocess (`celery worker --pool=prefork --concurrency=1`) on the
configured broker and the test database. The task is held at a wait point that exists anyway: a
lock the test takes from its own connection (the evaluation's or the monitor's row, the model
version's row that the reports' deferred foreign keys check at COMMIT, or the audit sequencer's
advisory lock taken right after the commit). Once PostgreSQL shows the worker's backend waiting on
it, the test SIGKILLs the pool process (or the whole worker), then lets the lock go.

What the tests show (docs/deploy.md, "Worker loss"): with `acks_late` and `reject_on_worker_lost`,
a lost pool process has its message requeued by the master at once and a fresh pool process runs
the task again; a whole worker lost leaves the message unacknowledged on Redis until its
visibility timeout, after which the next worker's sweep redelivers it. Either way the evaluation
or check ends in its final state (a `running` evaluation is taken over, never left running), with
exactly one result (one report per kind, one DriftResult per batch), one completion event each in
the audit log, no duplicate alert, and a log that verifies.
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

from governance import outbox
from governance.audit import AuditAction, audit_log_sequence
from governance.audit_verify import audit_log_verify
from governance.models import AuditEvent, AuditQueueEntry, Evaluation, OutboxMessage, Report
from mlops_site.celery import app

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

CELERY = Path(sys.executable).with_name("celery")
READY_S = 60
SETTLE_S = 3.0
# The broker's visibility timeout in the whole-worker test (3600 s in production). kombu's Redis
# transport sweeps unacknowledged messages when a worker starts, then every ~100 s
# (unacked_restore_interval x unacked_restore_throttle): a message past its timeout comes back at
# the next sweep.
VISIBILITY_S = 5  # after the final state, how long a second (duplicate) delivery gets to show itself


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

    def __init__(self, log: Path, **extra_env: str) -> None:
        self.log = log
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlops_site.settings_test", "DATABASE_URL": _database_url(),
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, **extra_env}
        env.pop("CELERY_RESULT_BACKEND", None)
        self.process = subprocess.Popen(
            [str(CELERY), "-A", "mlops_site", "worker", "--pool=prefork", "--concurrency=1", "-Q", "celery",
             "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "info",
             "-n", f"attest-fault-{os.getpid()}@%h"],
            cwd=settings.BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(lambda: "ready." in self.text() and self.children(), READY_S, "the worker to be ready")
        time.sleep(0.5)  # the tests publish once the pool process is up

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
def worker_process(tmp_path, name: str = "worker", **extra_env: str):
    worker = Worker(tmp_path / f"{name}.log", **extra_env)
    try:
        yield worker
    finally:
        worker.stop()


def _lock_waiters(locker: psycopg.Connection) -> list[int]:
    """Backends of the test database (other than the locker) waiting for a lock."""
    # Inside a transaction PostgreSQL answers pg_stat_activity from a snapshot taken at its first
    # read: without clearing it the locker would never see the worker start waiting.
    locker.execute("SELECT pg_stat_clear_snapshot()")
    rows = locker.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND pid <> pg_backend_pid()").fetchall()
    return [pid for (pid,) in rows]


def _kill_the_pool_process_while_it_waits(worker: Worker, locker: psycopg.Connection) -> float:
    """SIGKILL the pool process blocked on the locker's lock, then release the lock; returns when it was killed."""
    try:
        worker.wait_for(lambda: _lock_waiters(locker), 120, "the task to wait on the test's lock")
    except AssertionError as exc:
        locker.execute("SELECT pg_stat_clear_snapshot()")
        activity = locker.execute("SELECT datname, pid, client_port, state, wait_event_type, wait_event, "
                                  "left(query, 120) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                  "AND datname LIKE '%%worker%%'").fetchall()
        children = {pid: (Path(f"/proc/{pid}/wchan").read_text(), Path(f"/proc/{pid}/stat").read_text().split()[2])
                    for pid in worker.children()}
        raise AssertionError(f"{exc}\nbackends: {activity}\npool processes (wchan, state): {children}") from None
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


def _request_evaluation(monkeypatch):
    """An evaluation requested and committed; its task is published by `_publish`, once the test is ready."""
    from governance.services import evaluations
    from tests.governance.evaluation_factories import credit_world

    credit = credit_world(prefix="kill-")
    with monkeypatch.context() as patch:
        # The run's outbox row is committed with the request but not handed to the broker yet.
        patch.setattr(outbox, "outbox_dispatch", lambda message_id: False)
        with transaction.atomic():
            evaluation = evaluations.evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                                        dataset_version=credit.evaluation, bootstrap=200)
    return credit, evaluation


def _publish(evaluation: Evaluation) -> None:
    """What the request does on commit: the run's outbox row, handed to the broker."""
    from governance.services.evaluations import EVALUATION_RUN_TASK

    pending = OutboxMessage.objects.filter(task_name=EVALUATION_RUN_TASK, sent_at__isnull=True)
    row = next(message for message in pending if message.args == [evaluation.pk])
    assert outbox.outbox_dispatch(row.pk)


def _assert_one_set_of_reports(evaluation: Evaluation) -> None:
    assert (evaluation.status, evaluation.progress, evaluation.failure_code) == ("succeeded", 100, ""), (
        evaluation.failure_code, evaluation.failure_reason)
    reports = list(Report.objects.filter(evaluation=evaluation))
    assert sorted(r.kind for r in reports) == ["explainability", "fairness"]
    assert _events(AuditAction.REPORT_CREATED, [r.pk for r in reports]) == 2
    assert _events(AuditAction.EVALUATION_FAILED, [evaluation.pk]) == 0


def _kill_then_see_the_redelivered_task_return(worker: Worker, locker: psycopg.Connection,
                                                evaluation: Evaluation) -> Evaluation:
    """Kill the pool process where it waits, see the message redelivered and the task return; the evaluation then."""
    _kill_the_pool_process_while_it_waits(worker, locker)
    evaluation = _wait_finished(worker, evaluation)
    worker.wait_for(lambda: "succeeded in" in worker.text(), 60, "the redelivered task to return")
    time.sleep(SETTLE_S)
    log = worker.text()
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    return evaluation


def _hold_while_running(worker: Worker, locker: psycopg.Connection, evaluation: Evaluation) -> None:
    """Once the task has committed `running`, lock the evaluation's row: its next write (a progress
    update, or the reports' transaction) waits for the test."""
    worker.wait_for(lambda: Evaluation.objects.filter(pk=evaluation.pk, status="running").exists(), 120,
                    "the evaluation to be running")
    (status,) = locker.execute("SELECT status FROM governance_evaluation WHERE id = %s FOR UPDATE",
                               [evaluation.pk]).fetchone()
    assert status == "running", f"the evaluation was {status} before the test could hold it"


def test_a_report_whose_worker_dies_before_its_commit_is_computed_again_once(broker, locker, tmp_path, monkeypatch):
    # given: an evaluation queued, then running (committed) on the worker, held at its next write
    credit, evaluation = _request_evaluation(monkeypatch)
    with worker_process(tmp_path) as worker:
        _publish(evaluation)
        _hold_while_running(worker, locker, evaluation)
        # when: the pool process dies while it waits, its reports not committed
        killed_at = _kill_the_pool_process_while_it_waits(worker, locker)
        evaluation = _wait_finished(worker, evaluation)
        redone_s = time.monotonic() - killed_at
        time.sleep(SETTLE_S)
        log = worker.text()
    # then: the message came back at once (not after the visibility timeout); the fresh process took
    # the `running` evaluation over and did the work once
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    assert "taking it over" in log, log[-4000:]
    assert redone_s < 60, redone_s
    print(f"pool process lost: report redone {redone_s:.1f} s after the kill")
    evaluation.refresh_from_db()
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_report_whose_worker_dies_in_its_commit_is_kept_once(broker, locker, tmp_path, monkeypatch):
    # given: the test holds the model version's row; the reports' foreign keys to it are checked at
    # COMMIT (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED), so the task waits in its COMMIT
    credit, evaluation = _request_evaluation(monkeypatch)
    locker.execute("SELECT id FROM registry_modelversion WHERE id = %s FOR UPDATE", [credit.version.pk])
    with worker_process(tmp_path) as worker:
        _publish(evaluation)
        worker.wait_for(lambda: Evaluation.objects.filter(pk=evaluation.pk, status="running").exists(), 120,
                        "the evaluation to be running (its start does not lock the model version)")
        # when: the pool process dies there; PostgreSQL had the COMMIT, so it completes once the lock goes
        evaluation = _kill_then_see_the_redelivered_task_return(worker, locker, evaluation)
    # then: the redelivered task found the reports committed and made no second set
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_report_whose_whole_worker_dies_is_redelivered_after_the_visibility_timeout(broker, locker, tmp_path,
                                                                                     monkeypatch):
    # given: as above, the running task is held at its next write; the broker's visibility timeout is short
    visibility = {"ATTEST_BROKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_S)}
    credit, evaluation = _request_evaluation(monkeypatch)
    with worker_process(tmp_path, "first", **visibility) as first:
        _publish(evaluation)
        first.wait_for(lambda: "evaluation_run_task" in first.text().split("ready.", 1)[-1], 60, "the delivery")
        delivered_at = time.monotonic()
        _hold_while_running(first, locker, evaluation)
        first.wait_for(lambda: _lock_waiters(locker), 120, "the task to wait on the test's lock")
        # when: the master and its pool process die together (no one is left to reject the message)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        killed_at = time.monotonic()
    locker.rollback()
    # A worker sweeps at start: the second one starts once the message is past its timeout (a worker
    # already running would find it at its next sweep, up to ~100 s later).
    time.sleep(max(0.0, delivered_at + VISIBILITY_S + 1 - time.monotonic()))
    with worker_process(tmp_path, "second", **visibility) as second:
        evaluation = _wait_finished(second, evaluation)
        finished_at = time.monotonic()
        time.sleep(SETTLE_S)
        log = second.text()
    # then: the unacknowledged message came back once its visibility timeout (counted from its first
    # delivery) had passed; the second worker took the `running` evaluation over and ran it once
    assert finished_at - delivered_at >= VISIBILITY_S, (finished_at - delivered_at, killed_at - delivered_at)
    assert "taking it over" in log, log[-4000:]
    print(f"whole worker lost: finished {finished_at - killed_at:.1f} s after the kill, "
          f"{finished_at - delivered_at:.1f} s after the first delivery (visibility timeout {VISIBILITY_S} s)")
    evaluation.refresh_from_db()
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_report_whose_worker_dies_after_its_commit_is_not_made_twice(broker, locker, tmp_path, monkeypatch):
    # given: the test holds the audit sequencer's lock, so the task commits its reports and then waits
    # right after commit (chaining its events), before it returns and its message is acknowledged
    from governance.audit import _SEQUENCER_LOCK_KEY

    credit, evaluation = _request_evaluation(monkeypatch)
    audit_log_sequence()
    locker.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
    with worker_process(tmp_path) as worker:
        _publish(evaluation)
        # when: the pool process dies there; the master requeues the message and a fresh one runs it
        evaluation = _kill_then_see_the_redelivered_task_return(worker, locker, evaluation)
    # then: the redelivered task found the reports committed and returned without a second set
    _assert_one_set_of_reports(evaluation)
    _assert_the_log_verifies()


def test_a_drift_check_whose_worker_dies_before_its_commit_leaves_one_result(broker, locker, tmp_path, monkeypatch):
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
    with worker_process(tmp_path) as worker:
        drift_check_queue(shop.monitor.pk, batch.pk)
        # when
        killed_at = _kill_the_pool_process_while_it_waits(worker, locker)
        worker.wait_for(lambda: DriftResult.objects.filter(batch=batch).exists(), 120, "the drift result")
        redone_s = time.monotonic() - killed_at
        time.sleep(SETTLE_S)
        log = worker.text()
    # then: one result, one DRIFT_CHECKED, one alert per kind raised once
    assert "WorkerLostError" in log or "SIGKILL" in log, log[-4000:]
    assert redone_s < 60, redone_s
    print(f"pool process lost: drift check redone {redone_s:.1f} s after the kill")
    results = list(DriftResult.objects.filter(monitor=shop.monitor, batch=batch))
    assert len(results) == 1
    assert results[0].drifted_features == ["age", "colour"]
    assert _events(AuditAction.DRIFT_CHECKED, [results[0].pk]) == 1
    alerts = list(ComplianceAlert.objects.filter(monitor=shop.monitor))
    assert sorted(a.kind for a in alerts) == sorted({a.kind for a in alerts}) and alerts
    assert _events(AuditAction.ALERT_RAISED, [a.pk for a in alerts]) == len(alerts)
    assert _events(AuditAction.ALERT_REPEATED, [a.pk for a in alerts]) == 0
    _assert_the_log_verifies()
