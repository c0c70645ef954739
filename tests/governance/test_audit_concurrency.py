"""Concurrent appends from separate OS processes keep one linear, gapless chain.

Eight spawned processes, each with its own Django and its own database connection to the test
database, record 500 events each, one transaction per event, as eight web workers would; half of them
ask to chain in their own transaction (`chain_now`, as the gate does), half queue. On PostgreSQL
the sequencer's advisory lock and the head row serialise the chaining, and a `chain_now` writer
that finds the head held queues instead; on SQLite the database serialises writers itself.
Either way the result must be seq 1..4000, every link intact.

Django is imported inside the functions: a spawned child unpickles `_append_events` by importing
this module before it has called django.setup().
"""

import multiprocessing

import pytest

WORKERS = 8
APPENDS = 500


def _append_events(database: dict, worker: int, count: int) -> None:
    """Child process: set up Django against the test database and record `count` events."""
    import django
    from django.conf import settings

    settings.DATABASES["default"].update(database)
    django.setup()

    from django.db import connection, transaction

    from governance.audit import AuditAction, audit_event_record

    try:
        for index in range(count):
            # One transaction per append; the sequencer runs as it commits.
            with transaction.atomic():
                audit_event_record(actor=None, system=f"worker-{worker}", action=AuditAction.MODEL_UPDATED,
                                   object_type="registry.registeredmodel", object_id=f"{worker}-{index}",
                                   after={"worker": worker, "index": index}, chain_now=worker % 2 == 1)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_eight_processes_appending_500_each_leave_one_gapless_linked_chain():
    from django.db import connection

    from governance.audit import audit_log_sequence
    from governance.audit_verify import audit_log_verify
    from governance.canonical import GENESIS_HASH
    from governance.models import AuditChainHead, AuditEvent, AuditQueueEntry

    # given: the children connect to the test database this process created
    database = {"NAME": connection.settings_dict["NAME"]}
    connection.close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_events, args=(database, worker, APPENDS))
               for worker in range(WORKERS)]
    # when
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=540)
    # then
    assert [process.exitcode for process in workers] == [0] * WORKERS
    # Each child chained on commit; an entry can only be left if its sequencer lost the race to
    # another that had already taken it, so nothing should be queued.
    assert AuditQueueEntry.objects.count() == 0
    assert audit_log_sequence() == 0
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "object_id"))
    assert [seq for seq, *_ in rows] == list(range(1, WORKERS * APPENDS + 1))
    prev_hashes = [prev for _, prev, _, _ in rows]
    hashes = [value for _, _, value, _ in rows]
    assert len(set(prev_hashes)) == WORKERS * APPENDS  # no two events claim the same parent: no fork
    assert prev_hashes == [GENESIS_HASH, *hashes[:-1]]
    assert sorted(object_id for *_, object_id in rows) == sorted(
        f"{worker}-{index}" for worker in range(WORKERS) for index in range(APPENDS))
    assert (AuditChainHead.objects.get(pk=1).seq, AuditChainHead.objects.get(pk=1).hash) == (4000, hashes[-1])
    result = audit_log_verify()
    assert (result.ok, result.count, result.head) == (True, 4000, hashes[-1])
