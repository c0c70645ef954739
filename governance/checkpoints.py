"""Signed checkpoints of the audit log: the Merkle root of events 1..size, signed with Ed25519.

A checkpoint is `{"size", "root", "timestamp", "signature", "public_key"}` (CONTRACT.md); the
signature covers the canonical JSON of `{"size", "root", "timestamp"}`. The signing key comes from
settings.ATTEST_SIGNING_KEY (PEM) or, in development, a key file created with mode 0600.

Ordering, on purpose: the AUDIT_CHECKPOINT_SIGNED event (and AUDIT_KEY_ROTATED) is written in the
checkpoint's transaction, so it is chained *after* the checkpoint's last event and is covered by
the next checkpoint, never by its own. For the same reason a checkpoint request that finds only
such bookkeeping events since the latest checkpoint returns that checkpoint instead of signing a
new one: otherwise every scheduled run would sign a checkpoint over the previous one's event.

Each checkpoint can also be written, once committed, as JSON to settings.ATTEST_CHECKPOINT_ANCHOR_DIR:
a copy outside the database that a database owner cannot quietly rewrite along with the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record, audit_log_sequence
from governance.canonical import canonical_bytes, canonical_json, timestamp_canonical
from governance.merkle import verify_inclusion
from governance.merkle_store import merkle_nodes_extend, merkle_store_size
from governance.models import AuditChainHead, AuditCheckpoint, AuditEvent

logger = logging.getLogger(__name__)

# Another arbitrary constant (the sequencer's is "ATST"): serialises checkpoint creation on PostgreSQL.
_CHECKPOINT_LOCK_KEY = 0x41544350  # "ATCP"
# Events the log writes about its own checkpoints; they alone never call for a new checkpoint.
_BOOKKEEPING_ACTIONS = (AuditAction.AUDIT_CHECKPOINT_SIGNED.value, AuditAction.AUDIT_KEY_ROTATED.value)
SIGNING_KEY_NOT_ED25519 = "ATTEST_SIGNING_KEY must be an Ed25519 private key in PEM form."


# --- keys -----------------------------------------------------------------------------------

def signing_key_load() -> Ed25519PrivateKey:
    """The service's signing key: ATTEST_SIGNING_KEY, else the development key file (created once)."""
    pem = getattr(settings, "ATTEST_SIGNING_KEY", None)
    if pem:
        # Environment variables often carry the PEM with literal "\n".
        return _private_key_from_pem(pem.replace("\\n", "\n").encode("ascii"))
    path = Path(settings.ATTEST_SIGNING_KEY_FILE)
    if not path.exists():
        _key_file_create(path)
    return _private_key_from_pem(path.read_bytes())


def _private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(SIGNING_KEY_NOT_ED25519)
    return key


def _key_file_create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        # O_EXCL: two processes starting at once must not each write (and use) a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public_key: str) -> str:
    """First 16 hex of sha256(raw public key): how the log names a key."""
    return hashlib.sha256(bytes.fromhex(public_key)).hexdigest()[:16]


# --- signing and checking -------------------------------------------------------------------

def checkpoint_signed_bytes(*, size: int, root: str, timestamp: str) -> bytes:
    """What the signature covers: canonical JSON of {"root", "size", "timestamp"}."""
    return canonical_bytes({"size": size, "root": root, "timestamp": timestamp})


def checkpoint_signature_valid(cp: AuditCheckpoint | dict[str, Any]) -> bool:
    """Does the checkpoint's signature verify with its own public key over its size, root and time?"""
    data = cp.as_contract() if isinstance(cp, AuditCheckpoint) else cp
    try:
        size, root, timestamp = data["size"], data["root"], data["timestamp"]
        if type(size) is not int or size < 0 or not isinstance(root, str) or len(root) != 64:
            return False
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(data["public_key"]))
        public.verify(bytes.fromhex(data["signature"]),
                      checkpoint_signed_bytes(size=size, root=root, timestamp=timestamp))
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


def inclusion_proof_valid(proof: dict[str, Any], *, public_key: str | None = None) -> bool:
    """Check a proof document of GET /audit/events/{seq}/proof/ the way a client must.

    The checkpoint's signature binds its size and root; the proof must claim exactly that size
    and root, leaf index seq - 1, and verify (RFC 9162 §2.1.3.2). `public_key` pins the signer.
    """
    try:
        checkpoint = proof["checkpoint"]
        if public_key is not None and checkpoint["public_key"] != public_key:
            return False
        if not checkpoint_signature_valid(checkpoint):
            return False
        if (proof["tree_size"], proof["root"]) != (checkpoint["size"], checkpoint["root"]):
            return False
        if proof["leaf_index"] != proof["seq"] - 1:
            return False
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        return verify_inclusion(proof["leaf_index"], checkpoint["size"], bytes.fromhex(proof["leaf_hash"]),
                                path, bytes.fromhex(checkpoint["root"]))
    except (KeyError, TypeError, ValueError):
        return False


# --- the service ----------------------------------------------------------------------------

def _lock_checkpoints() -> None:
    """Serialise checkpoint creation. SQLite already did: its transactions BEGIN IMMEDIATE."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHECKPOINT_LOCK_KEY])


def _only_bookkeeping_since(latest: AuditCheckpoint, size: int) -> bool:
    return not (
        AuditEvent.objects.filter(seq__gt=latest.size, seq__lte=size)
        .exclude(action__in=_BOOKKEEPING_ACTIONS).exists()
    )


def audit_checkpoint_create(*, actor: Any = None) -> AuditCheckpoint:
    """Sign a checkpoint over every chained event and return it.

    Chains queued entries first, so "every event so far" includes those just committed. Returns
    the existing checkpoint when one already has this size, or when the only events since the
    latest checkpoint are the log's own checkpoint records (see the module docstring).
    """
    # Not @transaction.atomic: the sequencer commits its own batches before the checkpoint's
    # transaction opens, and the size is then read under the checkpoint lock.
    audit_log_sequence()
    with transaction.atomic():
        _lock_checkpoints()
        size = AuditChainHead.objects.get(pk=1).seq
        existing = AuditCheckpoint.objects.filter(size=size).first()
        if existing is not None:
            return existing
        latest = AuditCheckpoint.objects.order_by("-size").first()
        if latest is not None and latest.size < size and _only_bookkeeping_since(latest, size):
            return latest

        root = merkle_nodes_extend(size).hex()
        key = signing_key_load()
        public_key = public_key_hex(key)
        timestamp = timestamp_canonical(timezone.now())
        signature = key.sign(checkpoint_signed_bytes(size=size, root=root, timestamp=timestamp)).hex()
        checkpoint = AuditCheckpoint(size=size, root=root, timestamp=timestamp, signature=signature,
                                     public_key=public_key, key_id=key_id(public_key))
        checkpoint.full_clean()
        checkpoint.save()

        audit_event_record(actor=actor, system="audit_checkpoint", action=AuditAction.AUDIT_CHECKPOINT_SIGNED,
                           target=checkpoint, after=checkpoint.as_contract())
        if latest is not None and latest.public_key != public_key:
            audit_event_record(
                actor=actor, system="audit_checkpoint", action=AuditAction.AUDIT_KEY_ROTATED,
                target=checkpoint, before={"key_id": latest.key_id, "public_key": latest.public_key},
                after={"key_id": checkpoint.key_id, "public_key": public_key},
                payload={"old_key_id": latest.key_id, "new_key_id": checkpoint.key_id},
            )
        anchor_dir = getattr(settings, "ATTEST_CHECKPOINT_ANCHOR_DIR", None)
        if anchor_dir:
            contract = checkpoint.as_contract()
            transaction.on_commit(lambda: checkpoint_anchor_write(contract, Path(anchor_dir)))
    return checkpoint


def checkpoint_anchor_path(directory: Path, size: int) -> Path:
    return directory / f"checkpoint-{size:012d}.json"


def checkpoint_anchor_write(checkpoint: dict[str, Any], directory: Path) -> Path:
    """Write a committed checkpoint to the external anchor directory, once; never overwrite one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_anchor_path(directory, checkpoint["size"])
    data = (canonical_json(checkpoint) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if path.read_bytes() != data:
            logger.error("anchor %s already holds a different checkpoint; left untouched", path)
        return path
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def audit_checkpoint_due() -> bool:
    """True once ATTEST_CHECKPOINT_EVERY_EVENTS events are chained past the latest checkpoint."""
    head = AuditChainHead.objects.get(pk=1).seq
    return head - merkle_store_size() >= settings.ATTEST_CHECKPOINT_EVERY_EVENTS


def audit_checkpoint_latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-size").first()
