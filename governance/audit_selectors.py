"""Reads of the audit log: events in the contract's shape, filters, checkpoints and Merkle proofs.

Every proof is verified against its signed checkpoint's root before it is handed out: the stored
Merkle nodes are derived data, and a proof that does not verify means the stored log no longer
matches what was signed (reported as `audit_log_inconsistent`, never served as if it were valid).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from governance.audit import audit_event_canonical
from governance.merkle import leaf_hash, verify_consistency, verify_inclusion
from governance.merkle_store import DatabaseNodeStore
from governance.models import AuditCheckpoint, AuditEvent
from mlops_site.common.errors import ApplicationError, NotFoundError
from mlops_site.common.ids import is_id_text

AUDIT_EVENT_NOT_FOUND = "There is no audit event with seq {seq}."
CHECKPOINT_NOT_FOUND = "There is no checkpoint of size {size}."
CHECKPOINT_NONE_COVERS = "No signed checkpoint covers seq {seq} yet; the latest covers {size} events."
CHECKPOINT_TOO_SMALL = "The checkpoint of size {size} does not cover seq {seq}."
CONSISTENCY_ORDER = "first ({first}) must not be larger than second ({second})."
LOG_INCONSISTENT = "The stored audit log does not match the signed checkpoint of size {size}."


def audit_event_contract(event: AuditEvent) -> dict[str, Any]:
    """An event exactly as CONTRACT.md shows it: the hashed fields, then prev_hash and hash."""
    return {**audit_event_canonical(event), "prev_hash": event.prev_hash, "hash": event.hash}


def audit_event_list(*, filters: dict[str, Any] | None = None) -> QuerySet[AuditEvent]:
    """Events in seq order, narrowed by object_type, object_id, actor, action, since, until.

    `actor` is a user id (digits) or a username, matched on the snapshot the event kept, so it
    still finds the events of a user deleted since. `since` is inclusive, `until` exclusive.
    """
    filters = filters or {}
    events = AuditEvent.objects.order_by("seq")
    if filters.get("object_type"):
        events = events.filter(object_type=filters["object_type"])
    if filters.get("object_id") not in (None, ""):
        events = events.filter(object_id=str(filters["object_id"]))
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    actor = filters.get("actor")
    if actor:
        if is_id_text(actor):
            events = events.filter(actor_user_id=int(actor))
        else:
            # The snapshot is canonical JSON, so `"username":"<name>"` appears verbatim, quotes included.
            fragment = '"username":' + json.dumps(str(actor), ensure_ascii=False)
            events = events.filter(actor_json__contains=fragment)
    since: dt.datetime | None = filters.get("since")
    until: dt.datetime | None = filters.get("until")
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lt=until)
    return events


def audit_event_iter(*, chunk_size: int = 2000, last_seq: int | None = None) -> Iterator[AuditEvent]:
    """Every event in seq order, read in keyset chunks (constant memory however long the log)."""
    seq = 0
    while True:
        events = AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
        if last_seq is not None:
            events = events.filter(seq__lte=last_seq)
        chunk = list(events[:chunk_size])
        yield from chunk
        if len(chunk) < chunk_size:
            return
        seq = chunk[-1].seq


def audit_event_get(*, seq: int) -> AuditEvent:
    event = AuditEvent.objects.filter(seq=seq).first()
    if event is None:
        raise NotFoundError(AUDIT_EVENT_NOT_FOUND.format(seq=seq), code="audit_event_not_found")
    return event


def audit_checkpoint_list() -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.order_by("size")


def audit_checkpoint_get(*, size: int) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint.objects.filter(size=size).first()
    if checkpoint is None:
        raise NotFoundError(CHECKPOINT_NOT_FOUND.format(size=size), code="checkpoint_not_found")
    return checkpoint


def _inconsistent(size: int) -> ApplicationError:
    return ApplicationError(LOG_INCONSISTENT.format(size=size), code="audit_log_inconsistent", status=500)


def audit_event_inclusion_proof(*, seq: int, checkpoint_size: int | None = None) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of event `seq` in a checkpoint (default: the latest one).

    Shape: {"seq", "leaf_index", "tree_size", "leaf_hash", "audit_path", "root", "checkpoint"}.
    """
    event = audit_event_get(seq=seq)
    if checkpoint_size is None:
        checkpoint = AuditCheckpoint.objects.order_by("-size").first()
        if checkpoint is None or checkpoint.size < seq:
            raise NotFoundError(CHECKPOINT_NONE_COVERS.format(seq=seq, size=checkpoint.size if checkpoint else 0),
                                code="checkpoint_not_found")
    else:
        checkpoint = audit_checkpoint_get(size=checkpoint_size)
        if checkpoint.size < seq:
            raise ApplicationError(CHECKPOINT_TOO_SMALL.format(size=checkpoint.size, seq=seq),
                                   code="checkpoint_does_not_cover_event", fields={"checkpoint": [checkpoint.size]})
    leaf = leaf_hash(bytes.fromhex(event.hash))
    try:
        path = DatabaseNodeStore().inclusion_proof(seq - 1, checkpoint.size)
    except (LookupError, ValueError) as exc:
        raise _inconsistent(checkpoint.size) from exc
    if not verify_inclusion(seq - 1, checkpoint.size, leaf, path, bytes.fromhex(checkpoint.root)):
        raise _inconsistent(checkpoint.size)
    return {
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": checkpoint.size,
        "leaf_hash": leaf.hex(),
        "audit_path": [node.hex() for node in path],
        "root": checkpoint.root,
        "checkpoint": checkpoint.as_contract(),
    }


def audit_checkpoint_consistency_proof(*, first: int, second: int) -> dict[str, Any]:
    """The RFC 9162 consistency proof between two checkpoints: {"first", "second", "consistency_path"}."""
    if first > second:
        raise ApplicationError(CONSISTENCY_ORDER.format(first=first, second=second),
                               code="consistency_order", fields={"first": [first], "second": [second]})
    old, new = audit_checkpoint_get(size=first), audit_checkpoint_get(size=second)
    try:
        path = DatabaseNodeStore().consistency_proof(first, second)
    except (LookupError, ValueError) as exc:
        raise _inconsistent(second) from exc
    if not verify_consistency(first, second, bytes.fromhex(old.root), bytes.fromhex(new.root), path):
        raise _inconsistent(second)
    return {"first": old.as_contract(), "second": new.as_contract(),
            "consistency_path": [node.hex() for node in path]}
