"""The audit writer reuses what the request already read: the actor's roles and the seq it chained."""

import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from governance.audit import (
    _SEQUENCER_LOCK_KEY,
    AuditAction,
    actor_snapshot,
    audit_event_record,
    audit_log_sequence,
    audit_seq_for_entry,
)
from governance.models import AuditEvent, AuditQueueEntry
from governance.permissions import user_roles


@pytest.mark.django_db
def test_actor_snapshot_reuses_the_roles_read_for_the_request(make_user, django_assert_num_queries):
    # given
    user = make_user("vera", roles=["model_validator", "risk_officer"])
    assert user_roles(user) == {"model_validator", "risk_officer"}
    # when
    with django_assert_num_queries(0):
        snapshot = actor_snapshot(user)
    # then
    assert snapshot == {"id": user.pk, "username": "vera", "roles": ["model_validator", "risk_officer"]}


@pytest.mark.django_db
def test_actor_snapshot_reads_the_roles_when_nothing_read_them(make_user, django_assert_num_queries):
    # given
    user = make_user("ada", roles=["auditor"])
    # when
    with django_assert_num_queries(1):
        snapshot = actor_snapshot(user)
    # then
    assert snapshot == {"id": user.pk, "username": "ada", "roles": ["auditor"]}


@pytest.mark.django_db
def test_a_change_of_the_users_groups_forgets_the_cached_roles(make_user):
    # given
    user = make_user("ivan", roles=["data_scientist"])
    assert user_roles(user) == {"data_scientist"}
    # when
    user.groups.add(Group.objects.get(name="ml_engineer"))
    added = actor_snapshot(user)["roles"]
    assert user_roles(user) == {"data_scientist", "ml_engineer"}
    user.groups.remove(Group.objects.get(name="data_scientist"))
    removed = actor_snapshot(user)["roles"]
    assert user_roles(user) == {"ml_engineer"}
    user.groups.clear()
    cleared = actor_snapshot(user)["roles"]
    # then
    assert (added, removed, cleared) == (["data_scientist", "ml_engineer"], ["ml_engineer"], [])
    assert user_roles(user) == set()


@pytest.mark.django_db(transaction=True)
def test_the_seq_of_an_entry_just_chained_needs_no_query(django_assert_num_queries):
    # given: the sequencer runs when the transaction commits
    with transaction.atomic():
        entry = audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                                   object_id="risk")
    # when
    with django_assert_num_queries(0):
        seq = audit_seq_for_entry(entry)
    # then
    assert seq == AuditEvent.objects.get(entry_id=entry.pk).seq == 1


@pytest.mark.django_db(transaction=True)
def test_the_seq_of_an_older_entry_is_read_from_the_log():
    # given: a second event recorded after the first was chained
    with transaction.atomic():
        first = audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                                   object_id="risk")
    with transaction.atomic():
        second = audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                                    object_id="ops")
    # when
    seqs = (audit_seq_for_entry(first), audit_seq_for_entry(second))
    # then
    assert seqs == (1, 2)


def test_the_queue_entry_built_from_the_insert_has_its_fields_in_model_order():
    # audit_event_record builds the entry with Model.from_db, which places values by field order
    from governance.audit import _QUEUE_FIELDS

    assert list(_QUEUE_FIELDS) == [field.attname for field in AuditQueueEntry._meta.concrete_fields]


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_waited_learns_the_seq_another_sequencer_gave_its_entry(django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("a writer waits for another sequencer only on PostgreSQL (.ci/run's second pass)")
    # given: another sequencer holds the lock, and chains the queue once this writer's entry is in it
    holding, done = threading.Event(), threading.Event()

    def other_sequencer() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
                holding.set()
                deadline = time.monotonic() + 10
                while not AuditQueueEntry.objects.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                audit_log_sequence()
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=other_sequencer)
    thread.start()
    assert holding.wait(10)
    # when: the writer commits; its sequencer is refused the lock, waits, and finds its entry chained
    with transaction.atomic():
        entry = audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                                   object_id="risk")
    thread.join(10)
    assert done.is_set()
    # then: it knows the seq the other sequencer gave, without asking again
    with django_assert_num_queries(0):
        seq = audit_seq_for_entry(entry)
    assert seq == AuditEvent.objects.get(entry_id=entry.pk).seq == 1
