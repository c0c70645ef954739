"""`audit_event_record(chain_now=True)`: the event joins the chain in its own transaction when the head is free.

On PostgreSQL the gate records its decision's event this way (one commit instead of two). The
event must still commit or roll back with its change, leave no queue entry, and, when another
transaction holds the chain head, be queued and chained by the sequencer as any other event.
On SQLite the flag changes nothing: the event is queued. The tests of PostgreSQL's behaviour run in
.ci/run's second pass (on SQLite they skip, saying so); the last test runs on both.
"""

import threading

import pytest
from django.db import connection, transaction

from governance.audit import AuditAction, audit_event_record, audit_seq_for_entry
from governance.audit_verify import audit_log_verify
from governance.models import AuditChainHead, AuditEvent, AuditQueueEntry

pytestmark = pytest.mark.django_db(transaction=True)


def record(object_id: str):
    return audit_event_record(actor=None, system="test", action=AuditAction.TEAM_CREATED,
                              object_type="registry.team", object_id=object_id, after={"name": object_id},
                              chain_now=True)


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("chain_now chains at once only on PostgreSQL (.ci/run's second pass)")


def test_the_event_is_chained_in_the_writers_transaction_and_never_queued(django_assert_num_queries):
    needs_postgresql()
    # when: two events, each in its own transaction
    for name in ("first", "second"):
        with transaction.atomic():
            entry = record(name)
            # then: already in the chain before the commit, at the seq the entry carries
            assert AuditEvent.objects.get(entry_id=entry.pk).seq == entry.chained_seq
    assert not AuditQueueEntry.objects.exists()
    with django_assert_num_queries(0):
        assert audit_seq_for_entry(entry) == 2
    head = AuditChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (2, AuditEvent.objects.get(seq=2).hash)
    assert audit_log_verify().ok


def test_a_rolled_back_change_takes_its_event_and_the_head_with_it():
    needs_postgresql()
    # given
    with transaction.atomic():
        record("kept")
    # when: the change fails after its event was chained
    with pytest.raises(RuntimeError), transaction.atomic():
        record("lost")
        raise RuntimeError("the change fails")
    # then: the chain is as if it had never been asked
    assert list(AuditEvent.objects.values_list("object_id", flat=True)) == ["kept"]
    assert AuditChainHead.objects.get(pk=1).seq == 1
    with transaction.atomic():
        assert record("next").chained_seq == 2
    assert audit_log_verify().ok


def test_a_held_head_queues_the_event_and_the_sequencer_chains_it():
    needs_postgresql()
    # given: another transaction (a sequencer, or another chain_now writer) holds the head
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                AuditChainHead.objects.select_for_update().get(pk=1)
                holding.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    try:
        # when: the writer does not wait for the head
        with transaction.atomic():
            entry = record("queued")
            # then: queued in its transaction, with no seq yet
            assert AuditQueueEntry.objects.filter(pk=entry.pk).exists()
            assert not hasattr(entry, "chained_seq")
            assert not AuditEvent.objects.exists()
            release.set()
    finally:
        release.set()
        thread.join(10)
    # and after its commit the sequencer chained it
    assert done.is_set()
    assert not AuditQueueEntry.objects.exists()
    assert audit_seq_for_entry(entry) == AuditEvent.objects.get(entry_id=entry.pk).seq == 1
    assert audit_log_verify().ok


def test_the_event_gets_its_seq_on_either_database():
    # when: nobody holds the head
    with transaction.atomic():
        entry = record("first")
        # then: PostgreSQL chained it at once; SQLite, whose writers the database serialises,
        # queued it for the sequencer
        assert AuditQueueEntry.objects.filter(pk=entry.pk).exists() == (connection.vendor != "postgresql")
    # and after the commit it is in the chain either way
    assert not AuditQueueEntry.objects.exists()
    assert audit_seq_for_entry(entry) == AuditEvent.objects.get(entry_id=entry.pk).seq == 1
    assert audit_log_verify().ok
