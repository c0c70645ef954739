"""The transactional outbox: side effects of a state change survive a broker that is down.

1. `outbox_enqueue(task_name, *args)` is called inside the transaction of the change. It writes
   an OutboxMessage row: committed with the change, or rolled back with it (no orphan intent,
   no lost one).
2. After commit, `outbox_dispatch` hands the row to Celery. If the broker does not answer
   (refused, timed out: any publish error), the row stays pending with the error and the
   request that made the change still succeeds; this process then leaves new rows to the relay
   for ATTEST_OUTBOX_PAUSE_SECONDS rather than make every request wait for a dead broker.
3. `outbox_relay` publishes pending rows, oldest first. It runs from the beat schedule
   (`governance.tasks.outbox_relay_task`, every ATTEST_OUTBOX_RELAY_SECONDS; beat itself needs
   the broker, so that is the path once it is back) and from `manage.py relay_outbox`, which
   needs only the database (cron, or an operator after an outage).
4. `outbox_prune` deletes rows sent more than ATTEST_OUTBOX_KEEP_DAYS ago (beat, hourly).

Every hand-off claims its row with `SELECT … FOR UPDATE SKIP LOCKED` and marks it sent in the
same transaction, so two relays (or a relay and an on-commit hand-off) never publish one row
twice at the same time. Publishing is still at least once: the broker may accept a message
and the commit that marks it sent fail. So each task sent this way must be idempotent by its
arguments, which are written once, with the row (the notification fan-out is keyed by the
event id in its payload; a delivery by its row's status).

With Celery eager (no broker: the embedded default) the hand-off runs the task in-process on
commit, as before the outbox: the row is claimed and marked sent, then the task runs outside
that transaction; a task that raises is logged with its error on the row (a task's own failures
are the task's business, not the outbox's, exactly as with a worker).
"""

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.models import OutboxMessage

log = logging.getLogger(__name__)

# One reconnect (a pooled connection may be stale after a broker restart), no long backoff: the
# relay is the retry, and a request must not wait for a dead broker.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

_EAGER_RUNNERS: dict[str, Callable[..., Any]] = {}
_pause_lock = threading.Lock()
_paused_until = 0.0  # time.monotonic(); on-commit hand-offs of this process wait for the relay until then
_task_modules_imported = False


def outbox_eager_runner(task_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register how a task runs in-process under Celery eager when `task.apply()` will not do.

    (Eager mode has no worker to come back later: a task that retries with backoff needs its
    attempts made at once instead.)
    """

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        _EAGER_RUNNERS[task_name] = function
        return function

    return register


def outbox_enqueue(task_name: str, *args: Any) -> OutboxMessage:
    """Write the intent to run `task_name(*args)`; it is handed to Celery when the transaction commits.

    Call it inside the transaction of the change it belongs to. `args` must be JSON (they are
    what the worker gets, through the row).
    """
    message = OutboxMessage.objects.create(task_name=task_name, args=list(args))
    transaction.on_commit(functools.partial(outbox_dispatch, message.pk), robust=True)
    return message


def _celery():
    from mlops_site.celery import app

    return app


def _pause_publishing() -> None:
    global _paused_until
    with _pause_lock:
        _paused_until = time.monotonic() + settings.ATTEST_OUTBOX_PAUSE_SECONDS


def _resume_publishing() -> None:
    global _paused_until
    with _pause_lock:
        _paused_until = 0.0


def outbox_publishing_paused() -> bool:
    """Whether this process saw the broker fail recently (its on-commit hand-offs wait for the relay)."""
    return time.monotonic() < _paused_until


def _publish(message: OutboxMessage, app) -> bool:
    """Publish one claimed row to the broker and record how it went; True when the broker took it."""
    message.attempts += 1
    message.last_attempt_at = timezone.now()
    try:
        app.send_task(message.task_name, args=message.args, retry=True, retry_policy=PUBLISH_RETRY_POLICY,
                      headers={"attest_outbox_id": message.pk})
    except Exception as exc:  # noqa: BLE001 - any publish error leaves the row for the relay
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("outbox #%s %s not published (attempt %s), left for the relay: %s", message.pk,
                    message.task_name, message.attempts, message.last_error)
        message.save(update_fields=["attempts", "last_attempt_at", "last_error"])
        return False
    message.last_error = ""
    message.sent_at = timezone.now()
    message.save(update_fields=["attempts", "last_attempt_at", "last_error", "sent_at"])
    return True


def _take_for_eager(message: OutboxMessage) -> None:
    """Eager mode: mark the claimed row sent now; it runs in-process after the claim commits."""
    message.attempts += 1
    message.last_attempt_at = message.sent_at = timezone.now()
    message.save(update_fields=["attempts", "last_attempt_at", "sent_at"])


def _task_modules_import(app) -> None:
    """Import the task modules a worker imports when it starts (each app's autodiscovered `tasks`).

    A row names its task; in an eager process (a management command such as `load_demo`, the
    development server) nothing may have imported the module that registers it yet.
    """
    global _task_modules_imported
    if not _task_modules_imported:
        app.loader.import_default_modules()
        _task_modules_imported = True


def _run_eager(message: OutboxMessage, app) -> None:
    """Run a taken row's task in-process, outside any transaction of ours, as a worker would."""
    try:
        _task_modules_import(app)
        runner = _EAGER_RUNNERS.get(message.task_name)
        if runner is not None:
            runner(*message.args)
        else:
            app.tasks[message.task_name].apply(args=message.args, throw=True)
    except Exception as exc:  # noqa: BLE001 - the task's failure is logged, as a worker logs it
        log.exception("outbox #%s %s failed in-process", message.pk, message.task_name)
        OutboxMessage.objects.filter(pk=message.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])


def outbox_dispatch(message_id: int) -> bool:
    """Hand one committed row to Celery (on commit); False when it is left pending (or someone else has it)."""
    app = _celery()
    eager = app.conf.task_always_eager
    if not eager and outbox_publishing_paused():
        return False
    with transaction.atomic():
        message = (OutboxMessage.objects.select_for_update(skip_locked=True)
                   .filter(pk=message_id, sent_at__isnull=True).first())
        if message is None:
            return False
        if eager:
            _take_for_eager(message)
        elif not _publish(message, app):
            _pause_publishing()
            return False
    if eager:
        _run_eager(message, app)
    return True


class RelayRun(NamedTuple):
    sent: int
    error: str  # the publish error that ended the run ("" when every row it saw was sent)


def outbox_relay(*, batch: int = 100) -> RelayRun:
    """Publish pending rows, oldest first, until none is left or the broker fails.

    Rows another relay holds are skipped, not waited for. The first publish error ends the run
    (the broker is still down: the next run tries again); the row keeps the error.
    """
    app = _celery()
    eager = app.conf.task_always_eager
    sent = 0
    while True:
        taken: list[OutboxMessage] = []
        with transaction.atomic():
            messages = list(OutboxMessage.objects.select_for_update(skip_locked=True)
                            .filter(sent_at__isnull=True).order_by("id")[:batch])
            if not messages:
                break
            for message in messages:
                if eager:
                    _take_for_eager(message)
                elif not _publish(message, app):
                    _pause_publishing()
                    return RelayRun(sent, message.last_error)
                else:
                    # The broker is back: this process's on-commit hand-offs may publish again.
                    _resume_publishing()
                taken.append(message)
                sent += 1
        for message in taken if eager else ():
            _run_eager(message, app)
    return RelayRun(sent, "")


def outbox_pending_count() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()


def outbox_prune(*, keep_days: int) -> int:
    """Delete rows sent more than `keep_days` ago (pending rows are never deleted); returns how many."""
    cutoff = timezone.now() - dt.timedelta(days=keep_days)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
