"""An event commits or rolls back with the change it records, and the sequencer never chains twice.

These run with real commits (transactional_db): the sequencer is the on-commit hook that a
rolled-back transaction must never reach.
"""

import pytest
from django.db import transaction

from governance.audit import AuditAction, audit_event_record, audit_log_sequence, audit_seq_for_entry
from governance.audit_verify import audit_log_verify
from governance.models import AuditEvent, AuditQueueEntry

pytestmark = pytest.mark.django_db(transaction=True)


class _Refused(Exception):
    pass


def _team_create(name: str, *, fail: bool = False) -> None:
    """A service's shape: one transaction, the change's audit event, then (maybe) a failure."""
    with transaction.atomic():
        audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                           object_id=name, object_repr=name, after={"name": name})
        if fail:
            raise _Refused(name)


def test_a_change_that_fails_leaves_neither_queued_entry_nor_event():
    # when
    with pytest.raises(_Refused):
        _team_create("risk", fail=True)
    # then
    assert AuditQueueEntry.objects.count() == 0
    assert audit_log_sequence() == 0
    assert AuditEvent.objects.count() == 0


def test_a_committed_change_is_chained_when_it_commits():
    # when
    _team_create("risk")
    # then: no explicit sequencing, the on-commit hook did it
    assert AuditQueueEntry.objects.count() == 0
    assert list(AuditEvent.objects.values_list("seq", "object_id")) == [(1, "risk")]


def test_a_rolled_back_savepoint_drops_only_its_own_event():
    # when
    with transaction.atomic():
        audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                           object_id="outer")
        with pytest.raises(_Refused):
            _team_create("inner", fail=True)
    # then
    assert AuditQueueEntry.objects.count() == 0
    assert list(AuditEvent.objects.values_list("seq", "object_id")) == [(1, "outer")]


def test_a_failure_after_the_savepoint_rolls_back_both_events():
    # when
    with pytest.raises(_Refused):
        with transaction.atomic():
            _team_create("inner")
            raise _Refused("outer")
    # then
    assert (AuditQueueEntry.objects.count(), AuditEvent.objects.count()) == (0, 0)


def test_sequencing_again_appends_nothing_twice():
    # given: two changes, chained as they committed
    _team_create("a")
    _team_create("b")
    entry_ids = list(AuditEvent.objects.order_by("seq").values_list("entry_id", flat=True))
    # when: the sequencer runs again, by itself and for the entries already chained
    again = [audit_log_sequence(), audit_log_sequence(entry_ids=entry_ids), audit_log_sequence()]
    # then
    assert again == [0, 0, 0]
    assert list(AuditEvent.objects.values_list("seq", "object_id")) == [(1, "a"), (2, "b")]
    assert audit_log_verify().count == 2


def test_entries_queued_by_one_transaction_are_chained_once_in_order():
    # given
    with transaction.atomic():
        entries = [audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                                      object_id=name) for name in ("x", "y", "z")]
    # when
    seqs = [audit_seq_for_entry(entry) for entry in entries]
    appended = audit_log_sequence()
    # then
    assert (seqs, appended) == ([1, 2, 3], 0)
    assert audit_log_verify().ok
