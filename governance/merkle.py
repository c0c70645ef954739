"""RFC 6962 / RFC 9162 Merkle trees over the audit log: roots, proofs and their verification.

Pure Python, no Django: the stand-alone verifier and the tests use it as it is.

Hashing (RFC 9162 §2.1.1): leaf = sha256(0x00 || leaf_data), node = sha256(0x01 || left || right),
the tree head of the empty list is sha256(b""). For the audit log, leaf_data is the event hash as
32 raw bytes (``bytes.fromhex(event.hash)``); leaf index i is event seq i + 1.

Design: a *node store* holds the hash of every perfect subtree, addressed ``(level, index)``: the
subtree of the 2**level leaves starting at leaf ``index * 2**level`` (level 0 = leaf hashes).
The RFC's recursive definitions only ever split a range [start, end) at the largest power of two
below its length, so the left half is always such a perfect, aligned subtree and only the right
spine is partial. Hence a root, an inclusion proof or a consistency proof needs O(log n) stored
nodes, never a re-hash of the leaves: at 10**6 leaves a proof is ~20 lookups and ≤ 20 hashes.

Proof generation runs twice: first with a recording lookup that collects which ``(level, index)``
keys the algorithm will read (they depend on the sizes only, not on hash values), then with those
nodes fetched in one batch. A database-backed store (governance.merkle_store) therefore answers a
proof with one or two queries. The stored nodes are derived data: every proof is checked against a
signed root, so a corrupted store yields proofs that fail verification, never false acceptance.

Stores grow incrementally with a *frontier* (the compact range of RFC 9162 implementations such as
Trillian's): the perfect subtrees of the current size's binary decomposition. Appending a leaf
pushes it and merges equal-level neighbours; every merge is a new node to store.

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step.
Those algorithms authenticate a tree size only together with its root: a path for leaf 0 of a
3-leaf tree also passes as "size 4" against the *same* root. The size is bound to the root by the
checkpoint signature, so callers check a proof against a signed (size, root) pair
(governance.checkpoints.inclusion_proof_valid), never against a size taken from elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A lookup answers the hash of the perfect subtree (level, index).
NodeLookup = Callable[[int, int], bytes]
_PLACEHOLDER = b"\x00" * 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(lookup: NodeLookup, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC recursion produces (start aligned to the split)."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return lookup(level, start >> level)
    k = _split(n)
    return node_hash(_range_hash(lookup, start, start + k), _range_hash(lookup, start + k, end))


def _path(lookup: NodeLookup, m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) of RFC 9162 §2.1.3.1, m relative to start."""
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return _path(lookup, m, start, start + k) + [_range_hash(lookup, start + k, end)]
    return _path(lookup, m - k, start + k, end) + [_range_hash(lookup, start, start + k)]


def _subproof(lookup: NodeLookup, m: int, start: int, end: int, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) of RFC 9162 §2.1.4.1."""
    n = end - start
    if m == n:
        return [] if complete else [_range_hash(lookup, start, end)]
    k = _split(n)
    if m <= k:
        return _subproof(lookup, m, start, start + k, complete) + [_range_hash(lookup, start + k, end)]
    return _subproof(lookup, m - k, start + k, end, False) + [_range_hash(lookup, start, start + k)]


class NodeStore:
    """Answers perfect-subtree hashes in batches. Subclasses implement ``nodes()`` and ``size``."""

    size: int = 0

    def nodes(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        raise NotImplementedError

    def _run(self, algorithm: Callable[[NodeLookup], object]):
        keys: set[tuple[int, int]] = set()

        def record(level: int, index: int) -> bytes:
            keys.add((level, index))
            return _PLACEHOLDER

        algorithm(record)
        found = self.nodes(keys) if keys else {}
        missing = keys - found.keys()
        if missing:
            raise LookupError(f"Merkle node store lacks {len(missing)} node(s), e.g. {min(missing)}.")
        return algorithm(lambda level, index: found[(level, index)])

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        return self._run(lambda lookup: _range_hash(lookup, 0, size))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"Leaf index {index} is outside a tree of {size} leaves.")
        return self._run(lambda lookup: _path(lookup, index, 0, size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves."""
        self._check_size(second)
        if not 0 <= first <= second:
            raise ValueError(f"Consistency needs 0 ≤ first ≤ second, got {first} and {second}.")
        if first == 0 or first == second:
            return []
        return self._run(lambda lookup: _subproof(lookup, first, 0, second, True))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"Tree size {size} is outside the {self.size} leaves this store holds.")


class Frontier:
    """The compact range of a tree: its perfect subtrees, left to right, as (level, hash)."""

    def __init__(self, size: int = 0, nodes: Sequence[tuple[int, bytes]] = ()):
        self.size = size
        self.nodes = list(nodes)

    @staticmethod
    def keys(size: int) -> list[tuple[int, int]]:
        """The (level, index) of each perfect subtree of a tree of `size` leaves, left to right."""
        keys, offset = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                keys.append((level, offset >> level))
                offset += 1 << level
        return keys

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the new nodes above level 0 as (level, index, hash)."""
        created = []
        index, level, value = self.size, 0, leaf
        self.size += 1
        while self.nodes and self.nodes[-1][0] == level:
            _, left = self.nodes.pop()
            value = node_hash(left, value)
            level += 1
            index >>= 1
            created.append((level, index, value))
        self.nodes.append((level, value))
        return created

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        value = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            value = node_hash(left, value)
        return value


class MemoryNodeStore(NodeStore):
    """Every level of the tree in lists; for pure use, tests and benchmarks."""

    def __init__(self, leaves: Iterable[bytes] = (), *, hashed: bool = False):
        self.levels: list[list[bytes]] = [[]]
        self.frontier = Frontier()
        for leaf in leaves:
            self.append(leaf if hashed else leaf_hash(leaf))

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.frontier.size

    def append(self, leaf: bytes) -> None:
        """Append a leaf *hash*."""
        self.levels[0].append(leaf)
        for level, _index, value in self.frontier.append(leaf):
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(value)

    def nodes(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {(level, index): self.levels[level][index] for level, index in keys}

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            return self.frontier.root()
        return super().root(size)


def merkle_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes, streaming, in O(log n) memory."""
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is `leaf` (a leaf hash) at `leaf_index` of the tree with this root?"""
    if not 0 <= leaf_index < tree_size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of `first` leaves a prefix of the tree of `second` leaves?

    The RFC leaves first == second and first == 0 outside the algorithm: there the only valid
    proof is empty (and for equal sizes the roots must be equal).
    """
    if not 0 <= first <= second or any(len(p) != 32 for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
