"""The database-backed Merkle node store of the audit log (see governance.merkle for the design).

Level 0 (leaf hashes) is derived from AuditEvent.hash on demand; levels ≥ 1 live in
AuditMerkleNode and are appended by `merkle_nodes_extend()`, which checkpoint creation calls in its
transaction. The store covers exactly the largest checkpoint's size: every perfect subtree inside
it is stored, so any proof for a checkpoint costs two indexed queries.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Max, Q

from governance.merkle import Frontier, NodeStore, leaf_hash
from governance.models import AuditCheckpoint, AuditEvent, AuditMerkleNode

_CHUNK = 5000


class DatabaseNodeStore(NodeStore):
    """Perfect-subtree hashes of the events 1..size, read from the database in batches."""

    def __init__(self, size: int | None = None):
        self.size = merkle_store_size() if size is None else size

    def nodes(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        leaves = [index for level, index in keys if level == 0]
        if leaves:
            rows = AuditEvent.objects.filter(seq__in=[index + 1 for index in leaves]).values_list("seq", "hash")
            found.update({(0, seq - 1): leaf_hash(bytes.fromhex(value)) for seq, value in rows})
        inner = [key for key in keys if key[0] > 0]
        if inner:
            query = Q()
            for level, index in inner:
                query |= Q(level=level, index=index)
            nodes = AuditMerkleNode.objects.filter(query).values_list("level", "index", "hash")
            found.update({(level, index): bytes(value) for level, index, value in nodes})
        return found


def merkle_store_size() -> int:
    """How many leaves the node store covers: the largest checkpoint's size."""
    return AuditCheckpoint.objects.aggregate(size=Max("size"))["size"] or 0


def _leaf_hashes(first_seq: int, last_seq: int) -> Iterator[bytes]:
    """Leaf hashes of events first_seq..last_seq in seq order, read in keyset chunks."""
    seq = first_seq
    while seq <= last_seq:
        rows = list(
            AuditEvent.objects.filter(seq__gte=seq, seq__lte=min(last_seq, seq + _CHUNK - 1))
            .order_by("seq").values_list("seq", "hash")
        )
        for expected, (got, value) in enumerate(rows, start=seq):
            if got != expected:
                raise LookupError(f"Audit event seq {expected} is missing; the chain has a gap.")
            yield leaf_hash(bytes.fromhex(value))
        if len(rows) < min(_CHUNK, last_seq - seq + 1):
            raise LookupError(f"Audit events up to seq {last_seq} are missing.")
        seq += len(rows)


def _frontier_load(size: int) -> Frontier | None:
    """The frontier of the stored tree of `size` leaves, or None if a node is missing."""
    keys = Frontier.keys(size)
    found = DatabaseNodeStore(size).nodes(set(keys))
    if len(found) != len(keys):
        return None
    return Frontier(size, [(level, found[(level, index)]) for level, index in keys])


def merkle_nodes_extend(size: int) -> bytes:
    """Store every perfect subtree of events 1..size not stored yet; returns the root at `size`.

    Must run in the checkpoint's transaction, after its lock. If the stored frontier is damaged
    (derived rows lost), the nodes are rebuilt from the events.
    """
    covered = merkle_store_size()
    if covered > size:
        raise ValueError(f"The node store already covers {covered} leaves, more than {size}.")
    frontier = _frontier_load(covered)
    if frontier is None:
        AuditMerkleNode.objects.all().delete()
        covered, frontier = 0, Frontier()
    # Rows beyond the coverage are leftovers of a store that was cut back (checkpoints removed):
    # they may describe other leaves, so they go before the new nodes are written.
    top = AuditMerkleNode.objects.aggregate(level=Max("level"))["level"] or 0
    for level in range(1, top + 1):
        AuditMerkleNode.objects.filter(level=level, index__gte=covered >> level).delete()
    batch: list[AuditMerkleNode] = []
    for leaf in _leaf_hashes(covered + 1, size):
        for level, index, value in frontier.append(leaf):
            batch.append(AuditMerkleNode(level=level, index=index, hash=value))
        if len(batch) >= _CHUNK:
            AuditMerkleNode.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditMerkleNode.objects.bulk_create(batch)
    return frontier.root()
