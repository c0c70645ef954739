"""The broker is down when an approval is signed: the change commits, its notification waits in the outbox.

The signature is one transaction with its events (the audit queue is a table, chained in-process on
commit and by the beat sequencer, so it needs no broker) and with the outbox row of its notification's
fan-out (governance/outbox.py). With the broker down the hand-off after commit fails fast, the row
stays pending and the client still gets its 201. When the broker returns, the relay (`manage.py
relay_outbox`, or the beat task) publishes the row, a real worker fans it out, and the webhook
reaches a real HTTPS receiver exactly once; a second relay sends nothing.

"Down" is a Redis URL on a loopback port where nothing listens; "back" is the real Redis on
127.0.0.1:6379 — CELERY_BROKER_URL in the PostgreSQL run, ATTEST_TEST_REDIS_URL (default db 15) in
the SQLite run, whose database is independent of the broker. The machine's Redis is never stopped.
"""

import io
import json
import os
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from governance import outbox
from governance.audit import AuditAction, audit_log_sequence
from governance.models import AuditEvent, AuditQueueEntry, NotificationDelivery, OutboxMessage, Signature
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.tasks import outbox_relay_task
from mlops_site.celery import app
from tests.governance.test_notifications import SECRET, Receiver, _certificate, documented_verifier
from tests.governance.workflow_factories import PASSWORD, World, token_for
from tests.security.world import build_world

pytestmark = pytest.mark.django_db(transaction=True)

FANOUT = "governance.tasks.notification_fanout_task"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _forget_pools() -> None:
    """Drop the connection and producer pools kept for the broker URL of an earlier moment."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


class Broker:
    """Points Celery (not eager) at a dead broker or at the real one; the fixture puts everything back."""

    def __init__(self, settings, monkeypatch, real_url: str) -> None:
        self.settings, self.monkeypatch, self.real_url = settings, monkeypatch, real_url

    def _point_at(self, url: str) -> None:
        _forget_pools()
        self.settings.CELERY_TASK_ALWAYS_EAGER = False
        # Celery reads CELERY_BROKER_URL from the environment before its configuration.
        self.monkeypatch.setenv("CELERY_BROKER_URL", url)
        app.conf.update(broker_url=url, task_always_eager=False)

    def down(self) -> None:
        self._point_at(f"redis://127.0.0.1:{_closed_port()}/0")

    def up(self) -> None:
        self._point_at(self.real_url)
        app.control.purge()  # messages earlier tests (or this one's set-up) left on this db are not this test's

    @contextmanager
    def worker(self):
        from celery.contrib.testing.worker import start_worker

        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
            yield worker


@pytest.fixture
def broker(settings, monkeypatch):
    real = settings.CELERY_BROKER_URL or os.environ.get("ATTEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    yield Broker(settings, monkeypatch, real)
    monkeypatch.undo()
    _forget_pools()
    app.conf.update(previous)
    outbox._resume_publishing()  # this process's pause after the failed publishes ends with the test


@pytest.fixture
def receiver(tmp_path, settings):
    cert, key = _certificate(tmp_path)
    server = Receiver(cert, key)
    settings.ATTEST_WEBHOOK_URLS = [server.url]
    settings.ATTEST_WEBHOOK_SECRET = SECRET
    settings.ATTEST_WEBHOOK_ALLOW_PRIVATE = True
    settings.ATTEST_WEBHOOK_CA_FILE = str(cert)
    yield server
    server.close()


def _wait_for(predicate, what, deadline_s: float = 60.0):
    """Poll until `predicate()` is truthy; the deadline only bounds a hung test, it asserts no speed."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what()}")


def _pending() -> list[tuple[str, int, str]]:
    return [(m.task_name, m.args[0]["request_id"], m.args[0]["event"])
            for m in OutboxMessage.objects.filter(sent_at__isnull=True, task_name=FANOUT)]


def _outbox_gauge(client: APIClient) -> float:
    text = client.get("/metrics").content.decode()
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("attest_outbox_pending ")))


def test_a_signature_commits_while_the_broker_is_down_and_notifies_once_when_it_returns(broker, request):
    # given: the world built while the broker is up (its set-up queues evaluations and notifications),
    # then the webhook receiver, then the broker gone
    world = build_world()
    receiver = request.getfixturevalue("receiver")
    approval = world.own.approval_request
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.users['model_validator'])}")
    broker.down()
    before = OutboxMessage.objects.count()
    # when
    started = time.monotonic()
    response = client.post(f"/api/v1/approval-requests/{approval.pk}/sign/",
                           {"password": PASSWORD, "meaning": "approve", "reason": "broker down"}, format="json")
    elapsed = time.monotonic() - started
    # then: the change and its events committed
    assert response.status_code == 201, response.content[:300]
    assert Signature.objects.filter(request=approval).count() == 1
    audit_log_sequence()
    assert AuditQueueEntry.objects.count() == 0
    assert AuditEvent.objects.filter(action=AuditAction.APPROVAL_SIGNED, object_id=str(approval.pk)).count() == 1
    # then: its notification is a pending outbox row with the publish error, and nothing was delivered
    assert OutboxMessage.objects.count() == before + 1
    assert _pending() == [(FANOUT, approval.pk, "approval_request.signed")]
    row = OutboxMessage.objects.get(sent_at__isnull=True)
    assert row.attempts == 1 and "OperationalError" in row.last_error, (row.attempts, row.last_error)
    event_id = row.args[0]["event_id"]
    assert not NotificationDelivery.objects.filter(notification_id=event_id).exists()
    assert receiver.received == []
    assert _outbox_gauge(client) == 1
    print(f"sign with the broker down answered in {elapsed:.3f}s")
    # when: the operator's relay runs while the broker is still down
    with pytest.raises(CommandError, match="did not take a message, 1 rows still pending"):
        call_command("relay_outbox", stdout=io.StringIO())
    # then: the row is still pending, one more attempt recorded
    row.refresh_from_db()
    assert (row.sent_at, row.attempts) == (None, 2)

    # when: the broker returns, a worker runs, and the relay publishes the row
    broker.up()
    with broker.worker():
        out = io.StringIO()
        call_command("relay_outbox", stdout=out)
        assert out.getvalue().startswith("outbox: 1 sent"), out.getvalue()
        deliveries = NotificationDelivery.objects.filter(notification_id=event_id)
        _wait_for(lambda: deliveries.exists() and not deliveries.exclude(status="sent").exists()
                  and not OutboxMessage.objects.filter(sent_at__isnull=True).exists(),
                  lambda: f"sent deliveries, have {list(deliveries.values_list('channel', 'status'))}, "
                          f"pending outbox {list(OutboxMessage.objects.filter(sent_at__isnull=True).values())}")
        # then: the webhook reached the receiver exactly once, signed, about this signature
        assert len(receiver.received) == 1
        headers, body = receiver.received[0]
        event = documented_verifier()(body, headers, SECRET)
        assert (event["event_id"], event["event"], event["request_id"]) == (
            event_id, "approval_request.signed", approval.pk)
        row.refresh_from_db()
        assert row.sent_at is not None and row.attempts == 3 and row.last_error == ""
        # when: the relay runs again (the beat task), with the worker still there
        assert outbox_relay_task.apply().get() == 0
        time.sleep(1)
    # then: nothing more was sent
    assert len(receiver.received) == 1
    assert deliveries.get(channel="webhook").attempts == 1
    assert _outbox_gauge(client) == 0


def test_a_rolled_back_change_leaves_no_outbox_row(broker):
    # given: the broker down, so a committed row stays visible as pending
    world = World("limited")
    broker.down()
    with transaction.atomic():
        request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                        environment="production")
    assert _pending() == [(FANOUT, request.pk, "approval_request.opened")]
    # when: a signature whose transaction fails after its notification was written
    with pytest.raises(RuntimeError, match="after the signature"):
        with transaction.atomic():
            approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
            assert len(_pending()) == 2  # written in the transaction...
            raise RuntimeError("after the signature")
    # then: ...and gone with it; the relay has nothing of it to send
    assert _pending() == [(FANOUT, request.pk, "approval_request.opened")]
    assert not Signature.objects.filter(request=request).exists()


def test_after_a_failed_publish_new_rows_wait_for_the_relay_instead_of_the_broker(broker):
    # given: one hand-off failed against the dead broker
    world = World("limited")
    broker.down()
    with transaction.atomic():
        request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                        environment="production")
    first = OutboxMessage.objects.get(sent_at__isnull=True)
    assert first.attempts == 1 and first.last_error
    # when: another change commits within ATTEST_OUTBOX_PAUSE_SECONDS
    with transaction.atomic():
        approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # then: its row was not offered to the broker (no second wait for a dead one); the relay has both
    second = OutboxMessage.objects.filter(sent_at__isnull=True).exclude(pk=first.pk).get()
    assert (second.attempts, second.last_error) == (0, "")
    assert outbox.outbox_publishing_paused()
    # when: the broker is back and the relay runs (no worker: the messages wait in the queue)
    broker.up()
    run = outbox.outbox_relay()
    # then: both are sent, oldest first, and this process publishes on commit again
    assert run == (2, "")
    assert not outbox.outbox_publishing_paused()
    assert list(OutboxMessage.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk")
                .values_list("attempts", flat=True)) == [2, 1]
    app.control.purge()


def test_an_alert_raised_while_the_broker_is_down_is_emailed_when_it_returns(broker):
    from django.core import mail

    from tests.monitoring.conftest import Shop
    from tests.monitoring.test_alerts import drifted

    # given: a drift monitor whose next batch drifts, people with addresses, the broker down
    shop = Shop(retrain_on_critical=False)
    for user, address in ((shop.world.engineer, "eng@example.com"), (shop.world.compliance, "comp@example.com")):
        user.email = address
        user.save(update_fields=["email"])
    broker.down()
    # when: the drift check raises a critical alert
    alert = drifted(shop)
    # then: one outbox row per target, pending
    rows = OutboxMessage.objects.filter(task_name="monitoring.tasks.alert_notification_task")
    assert sorted((row.args[0]["alert_id"], row.args[0]["event"], row.args[2], row.sent_at) for row in rows) == [
        (alert.pk, "alert.raised", "comp@example.com", None), (alert.pk, "alert.raised", "eng@example.com", None)]
    # when: the broker returns, with a worker, and the relay runs
    broker.up()
    with broker.worker():
        assert outbox.outbox_relay().sent == 2
        _wait_for(lambda: len([m for m in mail.outbox if m.extra_headers["X-Attest-Event"] == "alert.raised"]) == 2,
                  lambda: f"two alert emails, have {[m.to for m in mail.outbox]}")
    # then: each target got it once
    assert sorted(m.to[0] for m in mail.outbox if m.extra_headers["X-Attest-Event"] == "alert.raised") == [
        "comp@example.com", "eng@example.com"]
    assert not rows.filter(sent_at__isnull=True).exists()


def test_an_evaluation_requested_while_the_broker_is_down_runs_once_when_it_returns(broker):
    from governance.models import Evaluation, Report
    from governance.services.evaluations import EVALUATION_RUN_TASK, evaluation_request
    from tests.governance.evaluation_factories import credit_world

    # given: a model version with its evaluation data, and the broker down
    credit = credit_world(prefix="outage-")
    broker.down()
    # when: an evaluation is requested
    evaluation = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                    dataset_version=credit.evaluation, bootstrap=50)
    # then: the request committed, and its run waits in the outbox instead of being lost
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.QUEUED
    runs = OutboxMessage.objects.filter(task_name=EVALUATION_RUN_TASK)
    assert [(row.args, row.sent_at) for row in runs] == [([evaluation.pk], None)]
    # when: the broker returns, with a worker, and the relay runs
    broker.up()
    with broker.worker():
        assert outbox.outbox_relay().sent == 1
        _wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).finished,
                  lambda: f"the evaluation to finish: {Evaluation.objects.get(pk=evaluation.pk).status}")
    # then: it ran once and left one report of each kind
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.failure_reason
    assert sorted(Report.objects.filter(evaluation=evaluation).values_list("kind", flat=True)) == [
        "explainability", "fairness"]
    assert not runs.filter(sent_at__isnull=True).exists()


# --- two relays at once (PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED) --------------------------------

def _queued_outbox_ids(url: str) -> list[int]:
    """The outbox ids of the messages waiting in Celery's default queue on this Redis db."""
    client = redis.Redis.from_url(url)
    try:
        return [json.loads(raw)["headers"]["attest_outbox_id"] for raw in client.lrange("celery", 0, -1)]
    finally:
        client.close()


def _in_thread(target, *args):
    result: dict = {}

    def run():
        try:
            result["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.mark.postgres
def test_two_relays_at_once_publish_each_row_once(broker):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL (.ci/run's second pass); SQLite serialises writers")
    # given: pending rows for a task no worker consumes, and the real broker with an empty queue
    broker.up()
    rows = OutboxMessage.objects.bulk_create(
        OutboxMessage(task_name="tests.outbox_probe", args=[n]) for n in range(300))
    ids = sorted(row.pk for row in rows)
    # when: a relay runs while this connection holds the first ten rows
    with transaction.atomic():
        held = list(OutboxMessage.objects.select_for_update().filter(pk__in=ids[:10]))
        thread, result = _in_thread(lambda: outbox.outbox_relay(batch=7))
        thread.join(30)
        # then: it skipped them without waiting and sent the rest
        assert not thread.is_alive(), "the relay waited for locked rows"
        assert result.get("value") == (290, ""), result
        assert len(held) == 10
    assert sorted(_queued_outbox_ids(broker.real_url)) == ids[10:]
    # when: two relays run at once over more rows, the held ten included
    more = OutboxMessage.objects.bulk_create(
        OutboxMessage(task_name="tests.outbox_probe", args=[n]) for n in range(300, 600))
    barrier = threading.Barrier(2)

    def relay():
        barrier.wait()
        return outbox.outbox_relay(batch=5)

    runs = [_in_thread(relay) for _ in range(2)]
    for thread, _ in runs:
        thread.join(60)
    results = [result for _, result in runs]
    # then: every row was published exactly once, between them
    assert all("value" in result for result in results), results
    assert sum(result["value"].sent for result in results) == 310
    queued = _queued_outbox_ids(broker.real_url)
    assert sorted(queued) == sorted(ids + [row.pk for row in more])
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    print(f"two relays sent {[result['value'].sent for result in results]}")
    app.control.purge()
