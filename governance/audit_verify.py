"""Re-verify the audit log from its stored rows: the hash chain, the chain head and every checkpoint.

The verifier trusts nothing the sequencer wrote except the bytes themselves: it re-reads each
event in `seq` order (keyset pagination, so memory stays constant however long the log is),
re-derives the canonical form and the hash exactly as CONTRACT.md defines them, and reports the
first `seq` at which the stored log stops being the log that was written.

What the chain cannot reveal on its own (someone with database-owner rights who rewrites the
chain consistently, or cuts its tail and moves the head row back) only a signed checkpoint can:
each stored checkpoint's Merkle root is recomputed from the events while they stream past, and
its signature is checked. docs/audit-log.md explains what each layer stops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from django.db import OperationalError, connection
from django.db.models import TextField
from django.db.models.functions import Cast

from governance.canonical import GENESIS_HASH, canonical_json, event_hash, timestamp_canonical
from governance.checkpoints import checkpoint_signature_valid
from governance.merkle import Frontier, leaf_hash
from governance.models.audit import AuditChainHead, AuditCheckpoint, AuditEvent

DEFAULT_CHUNK_SIZE = 5000

# The stored columns the verifier reads, in this order.
_COLUMNS = (
    "seq", "timestamp", "actor_json", "action", "object_type", "object_id", "object_repr",
    "payload_json", "correlation_id", "prev_hash", "hash",
)

Progress = Callable[[int, int], Any]


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of one verification: OK with the count and head, or the first broken seq and why."""

    ok: bool
    count: int
    head: str
    broken_seq: int | None = None
    reason: str = ""
    checkpoints_checked: int = 0

    def as_line(self) -> str:
        """The line `manage.py verify_audit_log` prints (CONTRACT.md)."""
        if self.ok:
            return f"OK {self.count} events, head {self.head}"
        return f"BROKEN at seq {self.broken_seq}: {self.reason}"


class _Broken(Exception):
    def __init__(self, seq: int, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


# --- reading ----------------------------------------------------------------------------------

def _unreadable(error: Exception) -> bool:
    """Is this the error of a stored value that cannot be read back (rather than of the database)?"""
    if isinstance(error, ValueError | TypeError | OverflowError | AttributeError):
        return True
    # SQLite returns whatever bytes its file holds; text that is not UTF-8 cannot even be fetched.
    return (connection.vendor == "sqlite" and isinstance(error, OperationalError)
            and "Could not decode to UTF-8" in str(error))


def _stored_columns() -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns to read; on SQLite the timestamp as its stored text.

    SQLite keeps a datetime as text, and Python's parser accepts several spellings of one
    instant ("2026-01-01 10:00:00" and "2026-01-01T10:00:00", ".123450" and ".12345Z"): a
    changed byte could leave the parsed value, and so the hash, unchanged. Reading the text
    lets the verifier insist on the one spelling Django writes. PostgreSQL stores the instant
    itself, so there is no other spelling to catch.
    """
    if connection.vendor == "sqlite":
        columns = tuple("timestamp_text" if name == "timestamp" else name for name in _COLUMNS)
        return columns, {"timestamp_text": Cast("timestamp", output_field=TextField())}
    return _COLUMNS, {}


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    # str() of a naive datetime is exactly how Django's SQLite backend stores one in UTC.
    if parsed.tzinfo is not None or str(parsed) != value:
        return None
    return parsed.replace(tzinfo=dt.UTC)


def _rows(after_seq: int, stop_seq: int | None, chunk_size: int) -> Iterator[list[tuple]]:
    """Chunks of stored rows with seq > after_seq, in seq order; never an OFFSET scan."""
    columns, annotations = _stored_columns()
    while True:
        query = AuditEvent.objects.annotate(**annotations).filter(seq__gt=after_seq).order_by("seq")
        try:
            chunk = list(query.values_list(*columns)[:chunk_size])
        except Exception as error:
            if not _unreadable(error):
                raise
            # A stored value that cannot be read back at all: find the row that carries it so
            # that the report names its seq.
            seqs = list(query.values_list("seq", flat=True)[:chunk_size])
            chunk = []
            for seq in seqs:
                try:
                    chunk.append(query.filter(seq=seq).values_list(*columns).get())
                except Exception as row_error:
                    if not _unreadable(row_error):
                        raise
                    chunk.append((seq, *([None] * (len(_COLUMNS) - 1))))
                    break
        if not chunk:
            return
        yield chunk
        after_seq = chunk[-1][0]
        if len(chunk) < chunk_size or (stop_seq is not None and after_seq >= stop_seq):
            return


def _canonical_text(seq: int, name: str, text: str | None) -> Any:
    """The JSON value of a stored text column, which must already be in canonical form."""
    if text is None:
        raise _Broken(seq, f"{name} is missing")
    try:
        value = json.loads(text)
        again = canonical_json(value)
    except ValueError:
        raise _Broken(seq, f"{name} is not valid canonical JSON") from None
    if again != text:
        raise _Broken(seq, f"{name} is not in canonical form")
    return value


def _check_event(row: tuple, expected_seq: int, prev: str) -> str:
    (seq, timestamp, actor_json, action, object_type, object_id, object_repr, payload_json,
     correlation_id, prev_hash, stored_hash) = row
    if seq != expected_seq:
        raise _Broken(expected_seq, f"event missing (the next stored event has seq {seq})")
    if timestamp is None and prev_hash is None:
        raise _Broken(seq, "the stored row cannot be read")
    if prev_hash != prev:
        which = "64 zeros" if seq == 1 else f"the hash of seq {seq - 1}"
        raise _Broken(seq, f"prev_hash does not equal {which}")
    instant = _timestamp(timestamp)
    if instant is None:
        raise _Broken(seq, "timestamp is not a stored UTC time in canonical form")
    body = {
        "seq": seq,
        "timestamp": timestamp_canonical(instant),
        "actor": _canonical_text(seq, "actor", actor_json),
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "payload": _canonical_text(seq, "payload", payload_json),
        "correlation_id": correlation_id,
    }
    if event_hash(prev, body) != stored_hash:
        raise _Broken(seq, "hash does not match the event's recomputed hash")
    return stored_hash


# --- the fast path: hash the stored bytes ----------------------------------------------------------
#
# The canonical body of an event is {"action","actor","correlation_id","object_id","object_repr",
# "object_type","payload","seq","timestamp"} with sorted keys, and actor and payload are stored as
# their canonical JSON text. So the body can be assembled from the stored text by concatenation
# (the string fields encoded exactly as canonical_json encodes a string) and hashed without
# parsing anything. When the stored hash matches, the stored bytes are the bytes the sequencer
# hashed: any changed byte of any hashed column changes the body and so the hash. When it does
# not match, the row goes through _check_event above, which names the reason, so every report is
# the same as before; the fast path only decides "unchanged", never "broken".

_EVENT_TABLE = AuditEvent._meta.db_table
_FAST_COLUMNS = {
    # PostgreSQL renders the instant in the canonical spelling itself (it stores no other).
    "postgresql": ("seq, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                   "actor_json, action, object_type, object_id, object_repr, payload_json, correlation_id, "
                   "prev_hash, hash"),
    # SQLite: the stored text, mapped by _sqlite_timestamp_canonical.
    "sqlite": ("seq, CAST(timestamp AS text), actor_json, action, object_type, object_id, object_repr, "
               "payload_json, correlation_id, prev_hash, hash"),
}
_FAST_SQL = {
    vendor: f"SELECT {columns} FROM {_EVENT_TABLE} WHERE seq > %s ORDER BY seq LIMIT %s"
    for vendor, columns in _FAST_COLUMNS.items()
}


def _sqlite_timestamp_canonical(text: Any) -> str | None:
    """Django's SQLite spelling of a UTC instant -> its canonical form; None for any other spelling.

    Strict, so that two different stored texts never map to one canonical string: "YYYY-MM-DD
    HH:MM:SS.ffffff" with a space at 10 and a fraction that is not all zeros (str() of a
    datetime leaves the fraction out when it is zero), or "YYYY-MM-DD HH:MM:SS" for that case.
    A text that is no valid time maps to bytes the sequencer never hashed, so the hash fails.
    """
    if type(text) is not str or text[10:11] != " ":
        return None
    if len(text) == 26 and text[19] == "." and text[20:] != "000000":
        return f"{text[:10]}T{text[11:]}Z"
    if len(text) == 19:
        return f"{text[:10]}T{text[11:]}.000000Z"
    return None


def _fast_chunk(cursor, vendor: str, after_seq: int, chunk_size: int) -> list[tuple]:
    cursor.execute(_FAST_SQL[vendor], [after_seq, chunk_size])
    return cursor.fetchall()


def _stored_row(seq: int) -> tuple:
    """One row as _check_event reads it (the slow path's reading, with its handling of unreadable text)."""
    for chunk in _rows(seq - 1, seq, 1):
        return chunk[0]
    raise LookupError(seq)


def _check_head(count: int, last_hash: str) -> None:
    head = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is None:
        if count:
            raise _Broken(count, "the chain head row is missing")
        return
    head_seq, head_hash = head
    if head_seq > count:
        raise _Broken(count + 1, f"event missing (the chain head is at seq {head_seq})")
    if head_seq < count:
        raise _Broken(head_seq + 1, f"event after the chain head (the head is at seq {head_seq})")
    if head_hash != last_hash:
        raise _Broken(count, "the chain head's hash does not equal the last event's hash")


def audit_log_verify(
    *,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_seq: int = 1,
    stop_seq: int | None = None,
) -> VerificationResult:
    """Verify the whole stored log (or the window start_seq..stop_seq) and say where it first breaks.

    Checks, in seq order: seq is the previous one plus 1 starting at 1; prev_hash is the
    previous event's stored hash (64 zeros for seq 1); the stored actor and payload text is
    exactly its canonical JSON; the recomputed hash equals the stored one. Then the chain head
    row against the last event, then every stored checkpoint: no checkpoint may cover more
    events than exist, its root must be the RFC 6962 tree head of events 1..size, its signature
    must verify.

    A window (start_seq > 1 or a stop_seq) trusts the stored hash of event start_seq - 1 as its
    starting point and skips the head and checkpoint checks; it exists so that tests can verify
    around one change quickly. `progress(done, total)` is called after every chunk.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    windowed = start_seq > 1 or stop_seq is not None
    prev = GENESIS_HASH
    if start_seq > 1:
        anchor = AuditEvent.objects.filter(seq=start_seq - 1).values_list("hash", flat=True).first()
        if anchor is None:
            return VerificationResult(ok=False, count=0, head=GENESIS_HASH, broken_seq=start_seq - 1,
                                      reason="event missing (the window's starting point)")
        prev = anchor

    checkpoints = [] if windowed else list(AuditCheckpoint.objects.order_by("size"))
    if windowed:
        total = (stop_seq - start_seq + 1) if stop_seq is not None else AuditEvent.objects.filter(
            seq__gte=start_seq).count()
    else:
        total = AuditEvent.objects.count()
    # The compact range is all the state needed to know the tree head at every size while the
    # events stream past once. Past the last checkpoint no root is ever compared, so the leaves
    # stop there.
    tree = Frontier()
    tree_until = checkpoints[-1].size if checkpoints else 0
    pending = iter(checkpoints)
    next_checkpoint = next(pending, None)
    checked = 0
    expected, done = start_seq, 0

    def check_checkpoints_at(size: int) -> None:
        nonlocal next_checkpoint, checked
        while next_checkpoint is not None and next_checkpoint.size == size:
            if next_checkpoint.root != tree.root().hex():
                raise _Broken(size, f"checkpoint of size {size}: its root is not the Merkle root of "
                                    f"events 1..{size}")
            if not checkpoint_signature_valid(next_checkpoint):
                raise _Broken(size, f"checkpoint of size {size}: its signature does not verify")
            checked += 1
            next_checkpoint = next(pending, None)

    vendor = connection.vendor
    sqlite = vendor == "sqlite"
    sha256 = hashlib.sha256
    enc = encode_basestring  # exactly how canonical_json writes a string (ensure_ascii=False)
    try:
        if not windowed:
            check_checkpoints_at(0)
        after = start_seq - 1
        prev_bytes = bytes.fromhex(prev) if prev != GENESIS_HASH else bytes(32)
        with connection.cursor() as cursor:
            while stop_seq is None or after < stop_seq:
                limit = chunk_size if stop_seq is None else min(chunk_size, stop_seq - after)
                try:
                    chunk = _fast_chunk(cursor, vendor, after, limit)
                except Exception as error:
                    if not _unreadable(error):
                        raise
                    chunk = None  # a stored value that cannot be read back: the slow reader finds it
                if chunk is None:
                    chunk = next(_rows(after, stop_seq, limit), [])
                    slow_chunk = True
                else:
                    slow_chunk = False
                for row in chunk:
                    (seq, timestamp, actor_json, action, object_type, object_id, object_repr, payload_json,
                     correlation_id, prev_hash, stored_hash) = row
                    ok = False
                    if not slow_chunk and seq == expected and prev_hash == prev:
                        if sqlite:
                            timestamp = _sqlite_timestamp_canonical(timestamp)
                        if timestamp is not None and actor_json is not None and payload_json is not None:
                            body = (f'{{"action":{enc(action)},"actor":{actor_json},'
                                    f'"correlation_id":{enc(correlation_id)},"object_id":{enc(object_id)},'
                                    f'"object_repr":{enc(object_repr)},"object_type":{enc(object_type)},'
                                    f'"payload":{payload_json},"seq":{seq},"timestamp":"{timestamp}"}}')
                            digest = sha256(prev_bytes + body.encode("utf-8")).digest()
                            ok = digest.hex() == stored_hash
                    if ok:
                        prev, prev_bytes = stored_hash, digest
                    else:
                        # Not the bytes the sequencer hashed, or not where they belong: the full
                        # check names the first reason (or, for a spelling the fast path does not
                        # know, accepts the row).
                        prev = _check_event(row if slow_chunk else _stored_row(seq), expected, prev)
                        prev_bytes = bytes.fromhex(prev)
                    if expected <= tree_until:
                        tree.append(leaf_hash(prev_bytes))
                        check_checkpoints_at(expected)
                    expected += 1
                    done += 1
                if progress is not None:
                    progress(done, total)
                if len(chunk) < limit:
                    break
                after = chunk[-1][0]
        if windowed:
            return VerificationResult(ok=True, count=done, head=prev)
        count = expected - 1
        _check_head(count, prev)
        if next_checkpoint is not None:
            # The signed statement says the log once held more events than it holds now.
            raise _Broken(count + 1, f"event missing: checkpoint of size {next_checkpoint.size} was "
                                     f"signed over more events than the {count} stored (tail truncated)")
    except _Broken as broken:
        return VerificationResult(ok=False, count=done, head=prev, broken_seq=broken.seq,
                                  reason=broken.reason, checkpoints_checked=checked)
    return VerificationResult(ok=True, count=count, head=prev, checkpoints_checked=checked)
