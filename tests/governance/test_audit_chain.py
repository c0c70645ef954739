"""The verifier on an intact log, on each kind of break it looks for, and `manage.py verify_audit_log`."""

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.db import DataError, connection, transaction

from governance.audit import AuditAction, audit_event_record, audit_log_sequence
from governance.audit_verify import VerificationResult, audit_log_verify
from governance.canonical import GENESIS_HASH, canonical_json, event_hash
from governance.models import AuditChainHead, AuditEvent, AuditQueueEntry
from tests.governance import tamper


def _stored_event(seq: int) -> dict:
    """The event as CONTRACT.md shows it, rebuilt from the stored row with nothing but json."""
    event = AuditEvent.objects.get(seq=seq)
    return {
        "seq": event.seq,
        "timestamp": event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": json.loads(event.actor_json),
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "payload": json.loads(event.payload_json),
        "correlation_id": event.correlation_id,
    }


@pytest.mark.django_db
def test_empty_log_verifies_with_the_genesis_head():
    # when
    result = audit_log_verify()
    # then
    assert result == VerificationResult(ok=True, count=0, head=GENESIS_HASH, broken_seq=None, reason="",
                                        checkpoints_checked=0)


@pytest.mark.django_db
def test_intact_log_verifies_across_chunk_boundaries():
    # given
    tamper.events_record(23)
    last = AuditEvent.objects.get(seq=23)
    seen = []
    # when
    result = audit_log_verify(chunk_size=5, progress=lambda done, total: seen.append((done, total)))
    # then
    assert result == VerificationResult(ok=True, count=23, head=last.hash)
    assert seen == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    assert AuditChainHead.objects.get(pk=1).hash == last.hash


@pytest.mark.django_db
def test_hash_is_the_contract_formula_over_the_stored_event():
    # given
    tamper.events_record(3)
    # when
    events = [AuditEvent.objects.get(seq=seq) for seq in (1, 2, 3)]
    # then: sha256(bytes.fromhex(prev_hash) + canonical UTF-8 JSON without hash and prev_hash)
    prev = GENESIS_HASH
    for event in events:
        body = canonical_json(_stored_event(event.seq)).encode("utf-8")
        assert event.prev_hash == prev
        assert event.hash == hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
        prev = event.hash


@pytest.mark.django_db
def test_semantically_equal_but_non_canonical_payload_text_is_broken():
    # given: an event whose payload prints a float in exponent form
    with transaction.atomic():
        audit_event_record(actor=None, action=AuditAction.MODEL_UPDATED, object_type="registry.registeredmodel",
                           object_id=1, after={"threshold": 1e20})
    audit_log_sequence()
    stored = AuditEvent.objects.get(seq=1).payload_json
    assert '"threshold":1e+20' in stored
    # when: 1e+20 -> 1E+20 is the same number, and json.loads() reads both alike
    tamper.event_field_set(1, "payload_json", stored.replace("1e+20", "1E+20"))
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (False, 1, "payload is not in canonical form")


@pytest.mark.django_db
def test_actor_text_that_is_not_json_is_broken():
    # given
    tamper.events_record(4)
    # when
    tamper.event_field_set(3, "actor_json", '{"system":"tamper-test"')
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (False, 3, "actor is not valid canonical JSON")
    assert result.count == 2


@pytest.mark.django_db
def test_gap_is_broken_at_the_missing_seq():
    # given
    tamper.events_record(6)
    # when
    tamper.event_delete(4)
    result = audit_log_verify(chunk_size=2)
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 4, "event missing (the next stored event has seq 5)")


@pytest.mark.django_db
def test_chain_head_behind_the_last_event_is_broken():
    # given
    tamper.events_record(5)
    fourth = AuditEvent.objects.get(seq=4)
    # when
    tamper.chain_head_set(4, fourth.hash)
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 5, "event after the chain head (the head is at seq 4)")


@pytest.mark.django_db
def test_chain_head_ahead_of_the_last_event_is_broken():
    # given
    tamper.events_record(5)
    # when
    tamper.chain_head_set(7, "ab" * 32)
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (False, 6, "event missing (the chain head is at seq 7)")


@pytest.mark.django_db
def test_window_is_seeded_with_the_stored_hash_before_it():
    # given
    tamper.events_record(10)
    # when
    result = audit_log_verify(start_seq=4, stop_seq=6)
    # then
    assert result == VerificationResult(ok=True, count=3, head=AuditEvent.objects.get(seq=6).hash)


@pytest.mark.django_db
def test_recomputed_hash_with_the_contract_formula_matches_event_hash():
    # given
    tamper.events_record(2)
    # when
    recomputed = event_hash(GENESIS_HASH, _stored_event(1))
    # then
    assert recomputed == AuditEvent.objects.get(seq=1).hash


@pytest.mark.django_db
def test_command_prints_ok_with_count_and_head():
    # given
    tamper.events_record(12)
    head = AuditEvent.objects.get(seq=12).hash
    out = io.StringIO()
    # when
    call_command("verify_audit_log", stdout=out, stderr=io.StringIO())
    # then
    assert out.getvalue() == f"OK 12 events, head {head}\n"


@pytest.mark.django_db
def test_command_chains_queued_entries_first():
    # given: committed entries the sequencer has not reached yet
    with transaction.atomic():
        for index in range(3):
            audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                               object_id=index)
    assert AuditQueueEntry.objects.count() == 3
    out = io.StringIO()
    # when
    call_command("verify_audit_log", stdout=out, stderr=io.StringIO())
    # then
    assert out.getvalue() == f"OK 3 events, head {AuditEvent.objects.get(seq=3).hash}\n"
    assert AuditQueueEntry.objects.count() == 0


@pytest.mark.django_db
def test_command_exits_1_naming_the_row_changed_past_the_triggers():
    # given
    tamper.events_record(9)
    tamper.event_field_set(6, "object_repr", "a quieter name")
    out = io.StringIO()
    # when
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit_log", stdout=out, stderr=io.StringIO())
    # then
    assert exited.value.code == 1
    assert out.getvalue() == "BROKEN at seq 6: hash does not match the event's recomputed hash\n"


@pytest.mark.django_db
def test_stored_text_that_is_not_utf8_is_broken_where_the_database_keeps_it():
    # given
    tamper.events_record(5)
    head = AuditEvent.objects.get(seq=5).hash
    if connection.vendor == "sqlite":
        # when: SQLite stores whatever bytes it is given, as an editor of the file could
        tamper.execute("UPDATE governance_auditevent SET payload_json = CAST(X'7b22ff223a317d' AS TEXT) "
                       "WHERE seq = 4")
        result = audit_log_verify(chunk_size=3)
        # then
        assert (result.ok, result.broken_seq, result.reason) == (False, 4, "the stored row cannot be read")
    else:
        # when: PostgreSQL refuses bytes that are not UTF-8 before they are stored
        with pytest.raises(DataError, match="invalid byte sequence for encoding"):
            with transaction.atomic():
                tamper.execute("UPDATE governance_auditevent SET payload_json = "
                               "convert_from('\\x7b22ff223a317d'::bytea, 'UTF8') WHERE seq = 4")
        result = audit_log_verify(chunk_size=3)
        # then
        assert (result.ok, result.count, result.head) == (True, 5, head)
