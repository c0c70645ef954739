"""The audit writer: every app's services record their events through audit_event_record().

A leaf module: it imports no other app, so registry, governance and monitoring can all use
it. An event is written in the caller's transaction (as a queued entry) and chained right
after that transaction commits by audit_log_sequence(), which appends to the hash chain in
batches under one lock (the way Trillian's sequencer integrates queued leaves).
"""

import functools
import json
import time
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from governance.canonical import canonical_json, event_hash, jsonable, timestamp_canonical
from governance.models.audit import AuditChainHead, AuditEvent, AuditQueueEntry
from mlops_site.common.context import correlation_id_get

# An arbitrary constant shared by every process: the PostgreSQL advisory lock of the sequencer.
_SEQUENCER_LOCK_KEY = 0x41545354  # "ATST"
SEQUENCE_BATCH = 2000
# A writer that found the sequencer busy waits politely this long, then queues on the lock.
_BLOCK_AFTER_S = 5.0


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


def actor_snapshot(actor: Any = None, *, system: str | None = None) -> dict[str, Any]:
    """{"id", "username", "roles"} for a user, {"system": NAME} for the service itself."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"system": system or "attest"}
    roles = sorted(actor.groups.values_list("name", flat=True))
    return {"id": actor.pk, "username": actor.get_username(), "roles": roles}


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
) -> AuditQueueEntry:
    """Record one event in the caller's transaction; it joins the chain when that commits.

    `actor` is the acting user (or None with `system=` for the service's own work);
    `target` is the object acted on (or give object_type/object_id/object_repr).
    Refuses to run outside a transaction: an event must commit or roll back with its change.
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
    entry = AuditQueueEntry.objects.create(
        timestamp=timezone.now(),
        actor_json=canonical_json(jsonable(actor_data)),
        actor_user_id=actor_data.get("id"),
        action=action.value,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        object_repr=(object_repr or "")[:300],
        payload_json=canonical_json(jsonable(body)),
        correlation_id=correlation_id_get(),
    )
    transaction.on_commit(functools.partial(audit_log_sequence, entry_ids=[entry.pk]))
    return entry


def _lock_sequencer(*, wait: bool = True) -> bool:
    """Serialise sequencers; False when `wait` is off and another sequencer holds the lock.

    SQLite already serialised them: its transactions BEGIN IMMEDIATE.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _sequencer_wait() -> None:
    """Sleep in PostgreSQL until the running sequencer commits.

    A shared lock is granted to every waiter at once when the exclusive holder commits, and
    none of them is handed the exclusive lock: a waiter whose entries were chained meanwhile
    leaves without taking it.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_SEQUENCER_LOCK_KEY])


def _queued(entry_ids: list[int]) -> bool:
    return AuditQueueEntry.objects.filter(pk__in=entry_ids).exists()


def _sequence_batch(batch_size: int, *, wait: bool) -> int | None:
    """Chain up to `batch_size` queued entries in one transaction; None if the lock was taken."""
    with transaction.atomic():
        if not _lock_sequencer(wait=wait):
            return None
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        entries = list(AuditQueueEntry.objects.order_by("pk")[:batch_size])
        if not entries:
            return 0
        events = []
        seq, prev = head.seq, head.hash
        for entry in entries:
            seq += 1
            event = AuditEvent(
                seq=seq,
                entry_id=entry.pk,
                timestamp=entry.timestamp,
                actor_json=entry.actor_json,
                actor_user_id=entry.actor_user_id,
                action=entry.action,
                object_type=entry.object_type,
                object_id=entry.object_id,
                object_repr=entry.object_repr,
                payload_json=entry.payload_json,
                correlation_id=entry.correlation_id,
                prev_hash=prev,
            )
            event.hash = prev = event_hash(prev, audit_event_canonical(event))
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        AuditQueueEntry.objects.filter(pk__in=[entry.pk for entry in entries]).delete()
        head.seq, head.hash = seq, prev
        head.save(update_fields=["seq", "hash"])
        return len(entries)


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
    if entry_ids is not None and not _queued(entry_ids):
        return 0
    polite = entry_ids is not None and not connection.in_atomic_block and connection.vendor == "postgresql"
    give_up_at = time.monotonic() + _BLOCK_AFTER_S
    appended = 0
    while True:
        chained = _sequence_batch(batch_size, wait=not polite)
        if chained is None:
            _sequencer_wait()
            if not _queued(entry_ids):
                return appended
            polite = time.monotonic() < give_up_at
            continue
        appended += chained
        if chained < batch_size:
            return appended


def audit_event_canonical(event: AuditEvent | AuditQueueEntry, *, seq: int | None = None) -> dict[str, Any]:
    """The event as the contract shows it (without prev_hash and hash), from its stored columns."""
    return {
        "seq": event.seq if seq is None else seq,
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
    return AuditEvent.objects.filter(entry_id=entry.pk).values_list("seq", flat=True).first()
