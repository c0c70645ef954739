"""Helpers for the audit-log tests: record events, make signing keys, the naive Merkle root."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction

from governance.audit import AuditAction, audit_event_record, audit_log_sequence
from governance.models import AuditEvent
from tests.governance.test_merkle_golden import naive_mth


def record_events(count: int, *, actor=None, start: int = 0) -> list[AuditEvent]:
    """Record `count` team-created events in one transaction and chain them."""
    with transaction.atomic():
        for i in range(start, start + count):
            audit_event_record(actor=actor, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                               object_id=i, object_repr=f"team {i}", after={"name": f"team {i}"})
    audit_log_sequence()
    return list(AuditEvent.objects.order_by("seq"))


def signing_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def naive_root_of_events(size: int) -> str:
    hashes = AuditEvent.objects.filter(seq__lte=size).order_by("seq").values_list("hash", flat=True)
    return naive_mth([bytes.fromhex(value) for value in hashes]).hex()
