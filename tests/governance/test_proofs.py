"""Proofs from the database node store: equal to the in-memory tree's, verified, and never served wrong."""

import pytest

from governance.audit_selectors import audit_checkpoint_consistency_proof, audit_event_inclusion_proof
from governance.checkpoints import audit_checkpoint_create, inclusion_proof_valid
from governance.merkle import MemoryNodeStore, verify_consistency
from governance.models import AuditCheckpoint, AuditEvent, AuditMerkleNode
from mlops_site.common.errors import ApplicationError, NotFoundError
from tests.governance.audit_helpers import record_events, signing_key_pem


@pytest.fixture(autouse=True)
def _key(settings):
    settings.ATTEST_SIGNING_KEY = signing_key_pem()


def _memory_store() -> MemoryNodeStore:
    return MemoryNodeStore(bytes.fromhex(h) for h in AuditEvent.objects.order_by("seq").values_list("hash", flat=True))


@pytest.mark.django_db
def test_database_proofs_equal_the_in_memory_trees_for_growing_checkpoints():
    # given checkpoints grown in uneven steps (each step extends the stored nodes)
    for batch in (1, 1, 5, 9, 16, 1, 30):
        record_events(batch)
        audit_checkpoint_create()
    sizes = list(AuditCheckpoint.objects.values_list("size", flat=True))
    memory = _memory_store()
    # when / then
    assert sizes == [1, 3, 9, 19, 36, 38, 69]
    for size in sizes:
        for seq in range(1, size + 1):
            proof = audit_event_inclusion_proof(seq=seq, checkpoint_size=size)
            assert proof["audit_path"] == [p.hex() for p in memory.inclusion_proof(seq - 1, size)]
            assert proof["root"] == memory.root(size).hex()
            assert inclusion_proof_valid(proof)
    for i, first in enumerate(sizes):
        for second in sizes[i:]:
            doc = audit_checkpoint_consistency_proof(first=first, second=second)
            path = [bytes.fromhex(p) for p in doc["consistency_path"]]
            assert path == memory.consistency_proof(first, second)
            assert verify_consistency(first, second, memory.root(first), memory.root(second), path)


@pytest.mark.django_db
def test_the_default_checkpoint_is_the_latest():
    # given
    record_events(4)
    audit_checkpoint_create()
    record_events(4)
    latest = audit_checkpoint_create()
    # when
    proof = audit_event_inclusion_proof(seq=2)
    # then
    assert (proof["seq"], proof["leaf_index"], proof["tree_size"]) == (2, 1, latest.size)
    assert proof["checkpoint"] == latest.as_contract()


@pytest.mark.django_db
def test_unknown_or_uncovered_events_and_checkpoints_are_refused():
    # given
    record_events(3)
    audit_checkpoint_create()
    record_events(2)
    # then
    with pytest.raises(NotFoundError) as unknown:
        audit_event_inclusion_proof(seq=99)
    assert unknown.value.code == "audit_event_not_found"
    with pytest.raises(NotFoundError) as uncovered:
        audit_event_inclusion_proof(seq=5)
    assert uncovered.value.code == "checkpoint_not_found"
    with pytest.raises(ApplicationError) as small:
        audit_event_inclusion_proof(seq=5, checkpoint_size=3)
    assert (small.value.code, small.value.status) == ("checkpoint_does_not_cover_event", 400)
    with pytest.raises(NotFoundError):
        audit_event_inclusion_proof(seq=1, checkpoint_size=2)
    with pytest.raises(ApplicationError) as order:
        audit_checkpoint_consistency_proof(first=3, second=0)
    assert order.value.code == "consistency_order"


@pytest.mark.django_db
def test_a_damaged_node_store_never_yields_a_proof():
    # given
    record_events(20)
    audit_checkpoint_create()
    # when a stored node is altered
    AuditMerkleNode.objects.filter(level=2, index=1).update(hash=b"\x11" * 32)
    # then
    with pytest.raises(ApplicationError) as damaged:
        audit_event_inclusion_proof(seq=1)
    assert (damaged.value.code, damaged.value.status) == ("audit_log_inconsistent", 500)
    # and when one is lost
    AuditMerkleNode.objects.filter(level=3, index=0).delete()
    with pytest.raises(ApplicationError) as lost:
        audit_event_inclusion_proof(seq=12)
    assert lost.value.code == "audit_log_inconsistent"


@pytest.mark.django_db
def test_lost_frontier_nodes_are_rebuilt_by_the_next_checkpoint():
    # given a store whose frontier lost a node
    record_events(12)
    audit_checkpoint_create()
    AuditMerkleNode.objects.filter(level=3, index=0).delete()
    record_events(5)
    # when
    checkpoint = audit_checkpoint_create()
    # then
    assert checkpoint.root == _memory_store().root(checkpoint.size).hex()
    assert inclusion_proof_valid(audit_event_inclusion_proof(seq=3))
    assert AuditMerkleNode.objects.count() == checkpoint.size - bin(checkpoint.size).count("1")
