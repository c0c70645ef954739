"""Tamper detection: what a database owner changes past the triggers, the verifier finds.

Byte mutations and middle edits the hash chain alone reveals, at the changed seq. A chain
rewritten consistently after a change, and a cut tail, only a signed checkpoint reveals: the
tests sign one first (governance.checkpoints), as the service does every N events.
"""

import random
from collections import Counter

import pytest
from django.db import DatabaseError, connection, transaction

from governance.audit import audit_event_canonical
from governance.audit_verify import audit_log_verify
from governance.canonical import canonical_json, event_hash
from governance.checkpoints import audit_checkpoint_create
from governance.models import AuditChainHead, AuditEvent
from tests.governance import tamper

EVENTS = 1000
TRIALS = 1000
MUTABLE_FIELDS = ("payload_json", "actor_json", "timestamp", "seq", "prev_hash", "hash")
PRINTABLE = range(0x20, 0x7F)


def _flip_one_byte(rng: random.Random, text: str) -> str | None:
    """The text with one byte of its UTF-8 replaced by another printable byte (None if no longer UTF-8)."""
    data = bytearray(text.encode("utf-8"))
    position = rng.randrange(len(data))
    data[position] = rng.choice([byte for byte in PRINTABLE if byte != data[position]])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mutate(rng: random.Random, seq: int, field: str, unused_from: int) -> tuple[str, object, object]:
    """Change one byte of one stored field of event `seq` past the triggers; returns how to undo it."""
    if field == "seq":
        # A byte of the number's decimal text, kept only if it lands on a seq not in use;
        # when no one-byte change does (seq 7), any unused seq stands in.
        for _ in range(20):
            text = _flip_one_byte(rng, str(seq))
            if text and text.isascii() and text.isdigit() and not text.startswith("0") and int(text) >= unused_from:
                new = int(text)
                break
        else:
            new = rng.randrange(unused_from, unused_from + 10**9)
        tamper.event_field_set(seq, "seq", new)
        return "seq", new, seq
    while True:
        original = tamper.event_field_get(seq, field)
        changed = _flip_one_byte(rng, original)
        if changed is None:
            continue
        try:
            with transaction.atomic():
                tamper.event_field_set(seq, field, changed)
        except DatabaseError:
            continue  # PostgreSQL refused text that is no timestamp: nothing was stored
        if tamper.event_field_get(seq, field) == original:
            continue  # PostgreSQL read it as the same instant: no stored byte changed
        return field, seq, original


def _undo(field: str, key: object, value: object) -> None:
    if field == "seq":
        tamper.event_field_set(key, "seq", value)
    else:
        tamper.event_field_set(key, field, value)


@pytest.mark.django_db
def test_every_random_byte_mutation_is_detected_at_the_mutated_seq():
    # given
    tamper.events_record(EVENTS, per_transaction=250)
    clean = audit_log_verify()
    assert (clean.ok, clean.count) == (True, EVENTS)
    checksum = tamper.table_checksum(tamper.EVENT_TABLE)
    rng = random.Random(20261127)
    detected, fields = 0, Counter()
    for trial in range(TRIALS):
        seq = rng.randint(1, EVENTS)
        field = rng.choice(MUTABLE_FIELDS)
        # when
        undo = _mutate(rng, seq, field, unused_from=EVENTS + 1)
        window = audit_log_verify(start_seq=max(1, seq - 1), stop_seq=seq + 1)
        full = audit_log_verify() if trial % 40 == 0 else window
        # then
        assert (window.ok, window.broken_seq) == (False, seq), (trial, field, undo, window)
        assert (full.ok, full.broken_seq) == (False, seq), (trial, field, undo, full)
        detected += 1
        fields[field] += 1
        _undo(*undo)
        if trial % 100 == 0:
            assert audit_log_verify().ok
    assert detected == TRIALS
    assert min(fields[name] for name in MUTABLE_FIELDS) >= 100, fields
    assert tamper.table_checksum(tamper.EVENT_TABLE) == checksum
    assert audit_log_verify() == clean


# --- structural changes -------------------------------------------------------------------------

def _events(first: int, last: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gte=first, seq__lte=last).order_by("seq"))


def _copy(event: AuditEvent, **changes) -> AuditEvent:
    values = {field.attname: getattr(event, field.attname) for field in AuditEvent._meta.fields}
    values.update(changes)
    return AuditEvent(**values)


def _replace_from(first_seq: int, events: list[AuditEvent]) -> None:
    """Delete every event from first_seq on and store `events` instead (an owner's rewrite)."""
    with tamper.triggers_bypassed():
        AuditEvent.objects.filter(seq__gte=first_seq)._raw_delete(connection.alias)
        AuditEvent.objects.bulk_create(events)


def _relink(events: list[AuditEvent], prev_hash: str) -> list[AuditEvent]:
    """Recompute prev_hash and hash down the list, as someone covering their tracks would."""
    relinked = []
    for event in events:
        copy = _copy(event, prev_hash=prev_hash)
        copy.hash = prev_hash = event_hash(prev_hash, audit_event_canonical(copy))
        relinked.append(copy)
    return relinked


def _forged(after: AuditEvent) -> AuditEvent:
    entry_ids = AuditEvent.objects.order_by("-entry_id").values_list("entry_id", flat=True)
    payload = canonical_json({"after": {"status": "approved"}, "before": None, "reason": "forged"})
    return _copy(after, seq=after.seq + 1, entry_id=entry_ids[0] + 1, payload_json=payload,
                 object_repr="approval nobody gave", hash="f" * 64)


@pytest.fixture
def log_of_200(db):
    tamper.events_record(200)
    assert audit_log_verify().ok


def test_deleting_a_middle_event_is_detected(log_of_200):
    # when
    tamper.event_delete(117)
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 117, "event missing (the next stored event has seq 118)")


@pytest.mark.parametrize(("first", "second"), [(40, 160), (90, 91)])
def test_swapping_two_events_is_detected_at_the_first(log_of_200, first, second):
    # given
    one, two = AuditEvent.objects.get(seq=first), AuditEvent.objects.get(seq=second)
    # when: each takes the other's place (seq is the position; everything else moves)
    with tamper.triggers_bypassed():
        AuditEvent.objects.filter(seq__in=[first, second])._raw_delete(connection.alias)
        AuditEvent.objects.bulk_create([_copy(two, seq=first), _copy(one, seq=second)])
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, first, f"prev_hash does not equal the hash of seq {first - 1}")


def test_duplicating_an_event_in_place_is_detected_after_the_original(log_of_200):
    # given
    rest = _events(51, 200)
    original = AuditEvent.objects.get(seq=50)
    entry_ids = AuditEvent.objects.order_by("-entry_id").values_list("entry_id", flat=True)
    # when: a copy of event 50 right after it, the rest shifted up by one, head moved to match
    duplicate = _copy(original, seq=51, entry_id=entry_ids[0] + 1, hash=event_hash(
        original.prev_hash, audit_event_canonical(original, seq=51)))
    shifted = [_copy(event, seq=event.seq + 1) for event in rest]
    _replace_from(51, [duplicate, *shifted])
    tamper.chain_head_set(201, shifted[-1].hash)
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 51, "prev_hash does not equal the hash of seq 50")


def test_duplicating_an_event_at_the_end_is_detected_at_the_copy(log_of_200):
    # given
    original = AuditEvent.objects.get(seq=50)
    entry_ids = AuditEvent.objects.order_by("-entry_id").values_list("entry_id", flat=True)
    # when: the copy keeps its own link, as a copied row would
    copy = _copy(original, seq=201, entry_id=entry_ids[0] + 1,
                 hash=event_hash(original.prev_hash, audit_event_canonical(original, seq=201)))
    AuditEvent.objects.bulk_create([copy])
    tamper.chain_head_set(201, copy.hash)
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 201, "prev_hash does not equal the hash of seq 200")


def test_forged_insert_without_relinking_is_detected_by_the_chain(log_of_200):
    # given
    before = AuditEvent.objects.get(seq=99)
    forged = _forged(before)
    forged.prev_hash = before.hash
    forged.hash = event_hash(before.hash, audit_event_canonical(forged))
    # when
    _replace_from(100, [forged, *[_copy(event, seq=event.seq + 1) for event in _events(100, 200)]])
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 101, "prev_hash does not equal the hash of seq 100")


def test_forged_insert_with_a_recomputed_chain_is_detected_only_by_the_checkpoint(log_of_200):
    # given: a signed checkpoint over the 200 events
    checkpoint = audit_checkpoint_create()
    assert checkpoint.size == 200
    before = AuditEvent.objects.get(seq=99)
    # when: a forged event after 99, everything after it relinked, the head moved: a consistent chain
    relinked = _relink([_forged(before), *[_copy(event, seq=event.seq + 1) for event in _events(100, 200)]],
                       before.hash)
    _replace_from(100, relinked)
    tamper.chain_head_set(201, relinked[-1].hash)
    chain_only = audit_log_verify(stop_seq=201)
    result = audit_log_verify()
    # then
    assert (chain_only.ok, chain_only.count) == (True, 201)
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 200, "checkpoint of size 200: its root is not the Merkle root of events 1..200")


def test_checkpoint_with_a_bad_signature_is_broken(log_of_200):
    # given
    checkpoint = audit_checkpoint_create()
    flipped = ("0" if checkpoint.signature[0] != "0" else "1") + checkpoint.signature[1:]
    # when
    tamper.execute("UPDATE governance_auditcheckpoint SET signature = %s WHERE size = %s", [flipped, 200])
    result = audit_log_verify()
    # then
    assert (result.ok, result.broken_seq, result.reason) == (
        False, 200, "checkpoint of size 200: its signature does not verify")


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_tail_truncation_is_detected_against_a_checkpoint_that_covered_it(db, k):
    # given: 1,100 events under a signed checkpoint
    tamper.events_record(1100, per_transaction=275)
    checkpoint = audit_checkpoint_create()
    assert (checkpoint.size, audit_log_verify().checkpoints_checked) == (1100, 1)
    kept = 1100 - k
    # when: the last k events cut and the head moved back, so the chain itself is consistent again
    with tamper.triggers_bypassed():
        AuditEvent.objects.filter(seq__gt=kept)._raw_delete(connection.alias)
    tamper.chain_head_set(kept, AuditEvent.objects.get(seq=kept).hash)
    chain_only = audit_log_verify(stop_seq=1100)
    result = audit_log_verify()
    # then
    assert (chain_only.ok, chain_only.count) == (True, kept)
    assert (result.ok, result.broken_seq, result.reason) == (
        False, kept + 1, f"event missing: checkpoint of size 1100 was signed over more events than "
                         f"the {kept} stored (tail truncated)")


def test_truncating_events_after_the_last_checkpoint_is_the_documented_window(log_of_200):
    # given: a checkpoint over 200 events; its own record and three more events come after it
    audit_checkpoint_create()
    tamper.events_record(3, start=1000)
    assert AuditChainHead.objects.get(pk=1).seq == 204
    # when: those four are cut and the head moved back
    with tamper.triggers_bypassed():
        AuditEvent.objects.filter(seq__gt=200)._raw_delete(connection.alias)
    tamper.chain_head_set(200, AuditEvent.objects.get(seq=200).hash)
    result = audit_log_verify()
    # then: nothing signed covered them, so the database alone cannot show the cut
    # (docs/audit-log.md: the window; the next checkpoint's consistency with the anchor shows it)
    assert (result.ok, result.count, result.checkpoints_checked) == (True, 200, 1)
