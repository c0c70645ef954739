"""The audit writer: every app's services record their events through audit_event_record().

A leaf module: it imports no other app, so registry, governance and monitoring can all use
it. An event is written in the caller's transaction (as a queued entry) and chained right
after that transaction commits by audit_log_sequence(), which appends to the hash chain in
batches under one lock (the way Trillian's sequencer integrates queued leaves).
"""

import datetime as dt
import functools
import json
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils import timezone

from governance.canonical import canonical_json, event_hash, jsonable, timestamp_canonical
from governance.models.audit import AuditChainHead, AuditEvent, AuditQueueEntry
from mlops_site.common import sql_rows
from mlops_site.common.context import correlation_id_get

# An arbitrary constant shared by every process: the PostgreSQL advisory lock of the sequencer.
_SEQUENCER_LOCK_KEY = 0x41545354  # "ATST"
SEQUENCE_BATCH = 2000
# A writer that found the sequencer busy waits politely this long, then queues on the lock.
_BLOCK_AFTER_S = 5.0
# Rows per INSERT statement of the sequencer (13 parameters each, under every driver's limit).
_INSERT_SLICE = 500

_QUEUE = AuditQueueEntry._meta.db_table
_EVENT = AuditEvent._meta.db_table
_HEAD = AuditChainHead._meta.db_table
# The columns an entry and its event share, in the order the hand-written statements use.
_RECORD_COLUMNS = ("timestamp", "actor_json", "actor_user_id", "action", "object_type", "object_id",
                   "object_repr", "payload_json", "correlation_id")
_RECORD_SQL = ", ".join(_RECORD_COLUMNS)
# AuditQueueEntry's concrete fields in model order (Model.from_db places values by that order).
_QUEUE_FIELDS = ("id", *_RECORD_COLUMNS)
_EVENT_COLUMNS = (*_RECORD_COLUMNS, "seq", "entry_id", "prev_hash", "hash")
_QUEUE_INSERT = f"INSERT INTO {_QUEUE} ({_RECORD_SQL}) VALUES ({', '.join(['%s'] * len(_RECORD_COLUMNS))})"
# Entry id -> seq for the entries this process chained in its last committed batch, or, when a
# writer waited for another sequencer instead, for that writer's own entries it then found
# chained: the other on-commit hooks of a transaction that recorded many events find theirs
# here without asking the database, and audit_seq_for_entry() answers from it (the gate's
# answer carries its event's seq). Replaced whole, never changed in place; audit_event_record()
# empties it.
_recently_chained: dict[int, int] = {}


class AuditAction(models.TextChoices):
    """Every action the log knows. Recording an unknown one fails loudly."""

    # registry
    TEAM_CREATED = "registry.team.created"
    TEAM_MEMBER_ADDED = "registry.team.member_added"
    TEAM_MEMBER_REMOVED = "registry.team.member_removed"
    DATASET_REGISTERED = "registry.dataset.registered"
    DATASET_ARCHIVED = "registry.dataset.archived"
    DATASET_VERSION_REGISTERED = "registry.dataset_version.registered"
    DATASET_VERSION_ARCHIVED = "registry.dataset_version.archived"
    MODEL_REGISTERED = "registry.model.registered"
    MODEL_UPDATED = "registry.model.updated"
    MODEL_ARCHIVED = "registry.model.archived"
    MODEL_VERSION_REGISTERED = "registry.model_version.registered"
    MODEL_VERSION_ARCHIVED = "registry.model_version.archived"
    # identity and access
    ROLE_GRANTED = "governance.role.granted"
    ROLE_REVOKED = "governance.role.revoked"
    TOKEN_ISSUED = "governance.token.issued"
    TOKEN_REVOKED = "governance.token.revoked"
    USER_CREATED = "governance.user.created"
    # the log itself
    AUDIT_CHECKPOINT_SIGNED = "governance.audit.checkpoint_signed"
    AUDIT_KEY_ROTATED = "governance.audit.key_rotated"
    AUDIT_EXPORTED = "governance.audit.exported"
    AUDIT_VERIFIED = "governance.audit.verified"
    # approvals, signatures, deployments and the gate
    POLICY_CREATED = "governance.policy.created"
    POLICY_UPDATED = "governance.policy.updated"
    APPROVAL_REQUESTED = "governance.approval.requested"
    APPROVAL_SIGNED = "governance.approval.signed"
    APPROVAL_APPROVED = "governance.approval.approved"
    APPROVAL_REJECTED = "governance.approval.rejected"
    APPROVAL_WITHDRAWN = "governance.approval.withdrawn"
    APPROVAL_EXPIRED = "governance.approval.expired"
    SIGNING_REAUTH_FAILED = "governance.signing.reauthentication_failed"
    SIGNING_LOCKED = "governance.signing.locked"
    SIGNING_UNLOCKED = "governance.signing.unlocked"
    GATE_EVALUATED = "governance.gate.evaluated"
    DEPLOYMENT_RECORDED = "governance.deployment.recorded"
    MODEL_VERSION_STATUS_CHANGED = "registry.model_version.status_changed"
    # MLflow import and webhooks (governance/mlflow_import.py)
    MLFLOW_VERSION_IMPORTED = "governance.mlflow.version_imported"
    MLFLOW_ALIAS_MOVED = "governance.mlflow.alias_moved"
    # No longer written: an alias move to an unapproved version is now a monitoring compliance
    # alert (monitoring.alert.raised / .repeated, kind alias_moved). Kept because events written
    # before that change carry these actions, and a log's actions are never renamed.
    MLFLOW_ALIAS_ALERT_OPENED = "governance.mlflow.alias_alert_opened"
    MLFLOW_ALIAS_ALERT_RESOLVED = "governance.mlflow.alias_alert_resolved"
    # evaluations and their reports
    EVALUATION_REQUESTED = "governance.evaluation.requested"
    EVALUATION_FAILED = "governance.evaluation.failed"
    REPORT_CREATED = "governance.report.created"
    # monitoring: drift monitors, batches, checks and the compliance alerts they raise
    MONITOR_CREATED = "monitoring.monitor.created"
    MONITOR_UPDATED = "monitoring.monitor.updated"
    MONITORING_BATCH_INGESTED = "monitoring.batch.ingested"
    DRIFT_CHECKED = "monitoring.drift.checked"
    ALERT_RAISED = "monitoring.alert.raised"
    ALERT_REPEATED = "monitoring.alert.repeated"
    ALERT_ACKNOWLEDGED = "monitoring.alert.acknowledged"
    ALERT_SIGNED = "monitoring.alert.signed"
    ALERT_RESOLVED = "monitoring.alert.resolved"
    ALERT_DISMISSED = "monitoring.alert.dismissed"
    # the regulator's dossier and evidence bundle
    DOSSIER_GENERATED = "governance.dossier.generated"
    DOSSIER_REQUESTED = "governance.dossier.requested"
    EVIDENCE_BUNDLE_EXPORTED = "governance.dossier.evidence_exported"


def actor_snapshot(actor: Any = None, *, system: str | None = None) -> dict[str, Any]:
    """{"id", "username", "roles"} for a user (and "token": its prefix when a token acted),
    {"system": NAME} for the service itself."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"system": system or "attest"}
    # The role names governance.permissions.user_roles (or the API's permission classes) read
    # for this request, when they did: the same request's roles, without a second query.
    cached = getattr(actor, "_attest_roles", None)
    roles = sorted(cached if cached is not None else actor.groups.values_list("name", flat=True))
    snapshot = {"id": actor.pk, "username": actor.get_username(), "roles": roles}
    # A request made with an API token names the token (its prefix) that acted (issue 8):
    # set on the user by governance.api.authentication for that request only.
    token_prefix = getattr(actor, "_attest_token_prefix", None)
    if token_prefix:
        snapshot["token"] = token_prefix
    return snapshot


@receiver(m2m_changed, sender=get_user_model().groups.through)
def _roles_cache_forget(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    """A user's groups changed through that user object: its cached role names are stale."""
    if action in ("post_add", "post_remove", "post_clear") and hasattr(instance, "_attest_roles"):
        del instance._attest_roles


def audit_event_record(
    *,
    actor: Any,
    action: AuditAction | str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    object_repr: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
    system: str | None = None,
    chain_now: bool = False,
) -> AuditQueueEntry:
    """Record one event in the caller's transaction; it joins the chain when that commits.

    `actor` is the acting user (or None with `system=` for the service's own work);
    `target` is the object acted on (or give object_type/object_id/object_repr).
    Refuses to run outside a transaction: an event must commit or roll back with its change.

    `chain_now` (for a short transaction that records its event last, as the gate does): on
    PostgreSQL, when no other transaction holds the chain head, the event is chained in the
    caller's transaction, which then holds the head until it ends; one commit instead of the
    two of queue-then-sequence, and no sequencer to wait for. The returned entry, never stored
    in the queue, carries the event's `chained_seq`. When the head is busy the event is queued
    as usual, so contention never makes a caller wait for the head.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_event_record() must run inside the transaction of the change it records.")
    action = AuditAction(action)  # ValueError for an action nobody registered
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = target.pk if object_id is None else object_id
        object_repr = str(target) if object_repr is None else object_repr
    if not object_type:
        raise ValueError("audit_event_record() needs a target or an object_type.")

    body = {"before": before, "after": after, "reason": reason, **(payload or {})}
    actor_data = actor_snapshot(actor, system=system)
    timestamp = timezone.now()
    values = [
        timestamp,
        canonical_json(jsonable(actor_data)),
        actor_data.get("id"),
        action.value,
        object_type,
        "" if object_id is None else str(object_id),
        (object_repr or "")[:300],
        canonical_json(jsonable(body)),
        correlation_id_get(),
    ]
    # Forget what the last batch chained: the cache may only ever answer for entries recorded
    # before that batch ran, never for an id a reset sequence (a test flush, a restore) re-issued.
    global _recently_chained
    _recently_chained = {}
    # One hand-written INSERT instead of Model.objects.create(): the ORM's query compiler cost
    # more CPU per event than the database did (docs/BENCHMARKS.md).
    with sql_rows.cursor() as cursor:
        stored = [connection.ops.adapt_datetimefield_value(timestamp), *values[1:]]
        chained = _chain_now(cursor, stored) if chain_now and connection.vendor == "postgresql" else None
        if chained is not None:
            entry = AuditQueueEntry.from_db(connection.alias, _QUEUE_FIELDS, [chained[0], *values])
            entry.chained_seq = chained[1]  # type: ignore[attr-defined]  # read by audit_seq_for_entry
            return entry
        if connection.vendor == "postgresql":
            cursor.execute(_QUEUE_INSERT + " RETURNING id", stored)
            pk = cursor.fetchone()[0]
        else:
            cursor.execute(_QUEUE_INSERT, stored)
            pk = cursor.lastrowid
    entry = AuditQueueEntry.from_db(connection.alias, _QUEUE_FIELDS, [pk, *values])
    transaction.on_commit(functools.partial(audit_log_sequence, entry_ids=[pk]))
    return entry


# The chain head if no other transaction holds it, and an entry id from the queue's own sequence
# (the event's `entry_id`: unique across both paths, and never a queue row).
_HEAD_IF_FREE = (f"SELECT seq, hash, nextval(pg_get_serial_sequence('{_QUEUE}', 'id')) FROM {_HEAD} "
                 f"WHERE id = 1 FOR UPDATE SKIP LOCKED")


def _chain_now(cursor, stored: list[Any]) -> tuple[int, int] | None:
    """Chain one event in the open transaction if the head is free: (entry id, seq), else None."""
    cursor.execute(_HEAD_IF_FREE)
    head = cursor.fetchone()
    if head is None:
        return None  # held by a sequencer or another chain_now caller (or missing: the sequencer says so)
    seq, prev, entry_id = head[0] + 1, head[1], head[2]
    event = _event_row(entry_id, stored, seq=seq, prev=prev)
    _events_insert(cursor, [event], head=(seq, event[-1]))
    return entry_id, seq


def _lock_sequencer(cursor, *, wait: bool = True) -> bool:
    """Serialise sequencers; False when `wait` is off and another sequencer holds the lock.

    SQLite already serialised them: its transactions BEGIN IMMEDIATE.
    """
    if connection.vendor != "postgresql":
        return True
    if wait:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
    return bool(cursor.fetchone()[0])


def _sequencer_wait() -> None:
    """Sleep in PostgreSQL until the running sequencer commits.

    A shared lock is granted to every waiter at once when the exclusive holder commits, and
    none of them is handed the exclusive lock: a waiter whose entries were chained meanwhile
    leaves without taking it. Outside a transaction the statement is its own transaction, so
    the lock is released when it returns (one round trip, and nothing can leak it).
    """
    if connection.in_atomic_block:
        with transaction.atomic(), sql_rows.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_SEQUENCER_LOCK_KEY])
        return
    with sql_rows.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_SEQUENCER_LOCK_KEY])


def _seqs_of(entry_ids: list[int]) -> dict[int, int]:
    """Entry id -> seq of those of `entry_ids` already chained (by any sequencer: dequeue and
    append are one transaction, so an entry is either queued or here). One indexed read."""
    if not entry_ids:
        return {}
    marks = ",".join(["%s"] * len(entry_ids))
    return dict(sql_rows.fetch_rows(f"SELECT entry_id, seq FROM {_EVENT} WHERE entry_id IN ({marks})", entry_ids))


def _dequeue(cursor, batch_size: int) -> tuple[int, str, list[tuple]]:
    """The chain head (locked) and the oldest `batch_size` entries, removed from the queue.

    Returns (head seq, head hash, rows in id order); each row is the entry's id and its stored
    columns in _RECORD_COLUMNS order, the timestamp as the database's own value (a datetime on
    PostgreSQL, the stored text on SQLite, copied to the event verbatim).
    """
    if connection.vendor == "postgresql":
        # One round trip: lock and read the head, take the oldest entries off the queue.
        cursor.execute(
            f"WITH head AS (SELECT seq, hash FROM {_HEAD} WHERE id = 1 FOR UPDATE), "
            f"taken AS (DELETE FROM {_QUEUE} WHERE id IN (SELECT id FROM {_QUEUE} ORDER BY id LIMIT %s) "
            f"RETURNING id, {_RECORD_SQL}) "
            f"SELECT head.seq, head.hash, taken.* FROM head LEFT JOIN taken ON true",
            [batch_size],
        )
        result = cursor.fetchall()
        if not result:
            raise AuditChainHead.DoesNotExist("the audit chain head row is missing")
        head_seq, head_hash = result[0][0], result[0][1]
        rows = sorted(row[2:] for row in result if row[2] is not None)
        return head_seq, head_hash, rows
    cursor.execute(f"SELECT seq, hash FROM {_HEAD} WHERE id = 1")
    head = cursor.fetchone()
    if head is None:
        raise AuditChainHead.DoesNotExist("the audit chain head row is missing")
    # CAST: the stored text itself, not the sqlite3 module's datetime converter's reading of it.
    cursor.execute(
        f"DELETE FROM {_QUEUE} WHERE id IN (SELECT id FROM {_QUEUE} ORDER BY id LIMIT %s) "
        f"RETURNING id, {_RECORD_SQL.replace('timestamp,', 'CAST(timestamp AS text),', 1)}",
        [batch_size],
    )
    return head[0], head[1], sorted(cursor.fetchall())


def _timestamp_value(stored: Any) -> dt.datetime:
    """The instant of a stored timestamp (SQLite's text is naive UTC, as Django writes it)."""
    if isinstance(stored, dt.datetime):
        return stored
    return dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)


def _event_row(entry_id: int, stored: list[Any], *, seq: int, prev: str) -> tuple:
    """The event table's row (_EVENT_COLUMNS order) chaining an entry's stored columns after `prev`.

    The reference computation (governance.canonical): the hash covers the canonical form of the
    stored texts, so a queue row in any other form is chained as evidence the verifier reports.
    """
    stored_ts, actor_json, _actor_user_id, action, object_type, object_id, object_repr, payload_json, \
        correlation_id = stored
    body = {
        "seq": seq,
        "timestamp": timestamp_canonical(_timestamp_value(stored_ts)),
        "actor": json.loads(actor_json),
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "payload": json.loads(payload_json),
        "correlation_id": correlation_id,
    }
    return (*stored, seq, entry_id, prev, event_hash(prev, body))


def _sequence_batch(batch_size: int, *, wait: bool) -> int | None:
    """Chain up to `batch_size` queued entries in one transaction; None if the lock was taken.

    Hand-written SQL, a fixed number of statements per batch whatever its size: lock, head and
    dequeue, insert the events, move the head (PostgreSQL folds the last two into one).
    """
    with transaction.atomic(), sql_rows.cursor() as cursor:
        if not _lock_sequencer(cursor, wait=wait):
            return None
        seq, prev, rows = _dequeue(cursor, batch_size)
        if not rows:
            return 0
        events = []
        for entry_id, *stored in rows:
            seq += 1
            events.append(_event_row(entry_id, stored, seq=seq, prev=prev))
            prev = events[-1][-1]
        _events_insert(cursor, events, head=(seq, prev))
    if not connection.in_atomic_block:
        # Committed (not merely a savepoint released inside someone's transaction).
        global _recently_chained
        _recently_chained = {event[10]: event[9] for event in events}  # entry_id -> seq
    return len(rows)


def _events_insert(cursor, events: list[tuple], *, head: tuple[int, str]) -> None:
    """INSERT the events (multi-row, in slices) and move the chain head to the last one."""
    placeholder = "(" + ",".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    head_update = f"UPDATE {_HEAD} SET seq = %s, hash = %s WHERE id = 1"
    for start in range(0, len(events), _INSERT_SLICE):
        part = events[start:start + _INSERT_SLICE]
        insert = f"INSERT INTO {_EVENT} ({', '.join(_EVENT_COLUMNS)}) VALUES {','.join([placeholder] * len(part))}"
        params = [value for event in part for value in event]
        last = start + _INSERT_SLICE >= len(events)
        if last and connection.vendor == "postgresql":
            # One round trip for the last slice and the head.
            cursor.execute(f"WITH appended AS ({insert} RETURNING 1) {head_update}", [*params, *head])
            return
        cursor.execute(insert, params)
    cursor.execute(head_update, list(head))


def audit_log_sequence(*, entry_ids: list[int] | None = None, batch_size: int = SEQUENCE_BATCH) -> int:
    """Chain every queued entry, oldest first; returns how many were appended.

    Given `entry_ids` (a writer right after its commit), returns once those entries are
    chained, by this call or by another sequencer, and returns at once when they already are.
    On PostgreSQL such a writer does not queue on the sequencer lock: it tries it, and while
    another sequencer holds it, sleeps until that one commits (bench/audit_log.py measured the
    queue: the lock was handed from writer to writer, ~1 event per batch, 80% of the time
    spent waiting). Its entries were committed before it tried, so the holder or the next
    one chains them; after _BLOCK_AFTER_S it waits for the lock itself, as every other
    caller (no entry_ids, or inside an enclosing transaction) always does.
    """
    global _recently_chained
    if entry_ids is not None and _recently_chained.keys() >= set(entry_ids):
        return 0  # this process chained them in its last batch (the rest of one transaction's entries)
    polite = entry_ids is not None and not connection.in_atomic_block and connection.vendor == "postgresql"
    give_up_at = time.monotonic() + _BLOCK_AFTER_S
    appended = 0
    while True:
        chained = _sequence_batch(batch_size, wait=not polite)
        if chained is None:
            _sequencer_wait()
            # Only a writer with entry_ids is ever refused the lock. Its entries' seqs, when
            # another sequencer chained them, are what audit_seq_for_entry() is asked next.
            wanted = set(entry_ids or [])
            found = _seqs_of(sorted(wanted))
            if found.keys() >= wanted:
                _recently_chained = found
                return appended
            polite = time.monotonic() < give_up_at
            continue
        appended += chained
        if chained < batch_size:
            return appended


def audit_event_canonical(event: AuditEvent | AuditQueueEntry, *, seq: int | None = None) -> dict[str, Any]:
    """The event as the contract shows it (without prev_hash and hash), from its stored columns."""
    if seq is None:
        if not isinstance(event, AuditEvent):
            raise TypeError("a queued entry has no seq yet: pass the seq it is given")
        seq = event.seq
    return {
        "seq": seq,
        "timestamp": timestamp_canonical(event.timestamp),
        "actor": json.loads(event.actor_json),
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "payload": json.loads(event.payload_json),
        "correlation_id": event.correlation_id,
    }


def audit_seq_for_entry(entry: AuditQueueEntry) -> int | None:
    """The seq an entry received once chained (None while still queued)."""
    seq = getattr(entry, "chained_seq", None) or _recently_chained.get(entry.pk)  # known already: no query
    if seq is not None:
        return seq
    return _seqs_of([entry.pk]).get(entry.pk)
