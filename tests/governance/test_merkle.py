"""Proof corruption and a differential test of the production Merkle tree against the RFC's definition."""

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.merkle import (
    Frontier,
    MemoryNodeStore,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)
from tests.governance.test_merkle_golden import naive_consistency, naive_mth, naive_path

MAX = 64
LEAVES = [hashlib.sha256(b"leaf %d" % i).digest() for i in range(MAX)]
OTHER_ROOT = hashlib.sha256(b"another tree").digest()


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % 32] ^= 1 << (bit % 8)
    return bytes(data)


def _proof_variants(proof: list[bytes]) -> list[list[bytes]]:
    """Each way of damaging a proof's elements: a flipped bit per element, removed, added, swapped, emptied."""
    variants = []
    for pos, element in enumerate(proof):
        variants.append(proof[:pos] + [_flip(element, pos * 37)] + proof[pos + 1:])
        variants.append(proof[:pos] + proof[pos + 1:])
    variants += [proof + [OTHER_ROOT], [OTHER_ROOT] + proof, proof + proof[-1:]]
    for pos in range(len(proof) - 1):
        if proof[pos] != proof[pos + 1]:
            variants.append(proof[:pos] + [proof[pos + 1], proof[pos]] + proof[pos + 2:])
    if proof:
        variants.append([])
    return [variant for variant in variants if variant != proof]


@pytest.mark.slow
def test_every_inclusion_proof_verifies_and_no_corrupted_one_does():
    # given every inclusion proof in trees of 1..64 leaves
    store = MemoryNodeStore(LEAVES + [OTHER_ROOT], hashed=True)
    roots = [store.root(size) for size in range(MAX + 2)]
    valid = accepted_valid = corrupted = accepted_corrupted = 0
    for size in range(1, MAX + 1):
        root = roots[size]
        for index in range(size):
            proof = store.inclusion_proof(index, size)
            leaf = LEAVES[index]
            valid += 1
            accepted_valid += verify_inclusion(index, size, leaf, proof, root)
            # when each is corrupted
            attempts = [(index, size, leaf, bad, root) for bad in _proof_variants(proof)]
            # A wrong size is checked against the root signed for that size: RFC 9162's algorithm
            # authenticates the size only through the signed (size, root) pair (a proof for leaf 0 of
            # 3 leaves also "verifies" as size 4 against the size-3 root; see test_checkpoints).
            attempts += [(index + 1, size, leaf, proof, root), (index - 1, size, leaf, proof, root),
                         (index, size + 1, leaf, proof, roots[size + 1]),
                         (index, size - 1, leaf, proof, roots[size - 1]),
                         (index, size, leaf, proof, OTHER_ROOT), (index, size, _flip(leaf, 3), proof, root)]
            if size > 1:
                attempts.append((index, size, leaf, [], root))
            for attempt in attempts:
                corrupted += 1
                accepted_corrupted += verify_inclusion(*attempt)
    # then
    assert (valid, accepted_valid) == (2080, 2080)
    assert accepted_corrupted == 0, f"{accepted_corrupted} of {corrupted} corrupted inclusion proofs accepted"
    assert corrupted > 40_000, corrupted


@pytest.mark.slow
def test_every_consistency_proof_verifies_and_no_corrupted_one_does():
    # given every consistency proof 1 ≤ m < n ≤ 64
    store = MemoryNodeStore(LEAVES + [OTHER_ROOT], hashed=True)
    roots = [store.root(size) for size in range(MAX + 2)]
    valid = accepted_valid = corrupted = accepted_corrupted = 0
    for second in range(2, MAX + 1):
        for first in range(1, second):
            proof = store.consistency_proof(first, second)
            r1, r2 = roots[first], roots[second]
            valid += 1
            accepted_valid += verify_consistency(first, second, r1, r2, proof)
            # when each is corrupted
            attempts = [(first, second, r1, r2, bad) for bad in _proof_variants(proof)]
            # Wrong sizes come with the roots signed for them (see the inclusion test).
            attempts += [(first + 1, second, roots[first + 1], r2, proof),
                         (first - 1, second, roots[first - 1], r2, proof),
                         (first, second + 1, r1, roots[second + 1], proof),
                         (first, second - 1, r1, roots[second - 1], proof),
                         (first + 1, second, r1, r2, proof), (first - 1, second, r1, r2, proof),
                         (first, second, OTHER_ROOT, r2, proof), (first, second, r1, OTHER_ROOT, proof),
                         (first, second, r2, r1, proof), (second, first, r2, r1, proof),
                         (first, second, r1, r2, [])]
            for attempt in attempts:
                corrupted += 1
                accepted_corrupted += verify_consistency(*attempt)
    # then
    assert (valid, accepted_valid) == (2016, 2016)
    assert accepted_corrupted == 0, f"{accepted_corrupted} of {corrupted} corrupted consistency proofs accepted"
    assert corrupted > 30_000, corrupted


def test_a_proof_is_rejected_against_another_trees_root():
    # given two trees of the same size that differ in one leaf
    store = MemoryNodeStore(LEAVES[:10], hashed=True)
    other = MemoryNodeStore(LEAVES[:9] + [LEAVES[20]], hashed=True)
    # when / then
    proof = store.inclusion_proof(3, 10)
    assert verify_inclusion(3, 10, LEAVES[3], proof, store.root())
    assert not verify_inclusion(3, 10, LEAVES[3], proof, other.root())
    assert not verify_consistency(4, 10, store.root(4), other.root(), store.consistency_proof(4, 10))


def test_proofs_outside_the_tree_are_refused():
    store = MemoryNodeStore(LEAVES[:5], hashed=True)
    with pytest.raises(ValueError):
        store.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        store.inclusion_proof(0, 6)
    with pytest.raises(ValueError):
        store.consistency_proof(4, 3)
    assert store.consistency_proof(0, 5) == [] and store.consistency_proof(5, 5) == []
    assert verify_consistency(5, 5, store.root(), store.root(), [])
    assert not verify_consistency(5, 5, store.root(), store.root(4), [])


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(min_value=0, max_value=2048), seed=st.integers(min_value=0, max_value=2**32),
       split=st.floats(min_value=0, max_value=1), prefix=st.lists(st.binary(max_size=40), max_size=8))
def test_differential_against_the_naive_rfc_definition(size, seed, split, prefix):
    # given a random leaf list (drawn data first, then seeded random bytes up to `size`)
    rng = random.Random(seed)
    leaves = (prefix + [rng.randbytes(rng.randrange(0, 40)) for _ in range(size)])[:max(size, len(prefix))]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    # when the production tree is built in two appends (as checkpoints grow a store)
    cut = int(len(leaves) * split)
    frontier = Frontier()
    for value in hashes[:cut]:
        frontier.append(value)
    first_root = frontier.root()
    for value in hashes[cut:]:
        frontier.append(value)
    store = MemoryNodeStore(hashes, hashed=True)
    # then every production root equals the recursive definition
    expected = naive_mth(leaves)
    assert frontier.root() == store.root() == merkle_root(hashes) == expected
    assert first_root == naive_mth(leaves[:cut]) == store.root(cut)
    if leaves:
        index = rng.randrange(len(leaves))
        assert store.inclusion_proof(index, len(leaves)) == naive_path(index, leaves)
    if 0 < cut < len(leaves):
        assert store.consistency_proof(cut, len(leaves)) == naive_consistency(cut, leaves)
