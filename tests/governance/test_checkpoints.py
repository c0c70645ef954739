"""Signed checkpoints: root, signature, keys, rotation, the external anchor, binding, tasks, command."""

import io
import json
import stat
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import call_command

from governance.audit import AuditAction, audit_log_sequence
from governance.audit_selectors import audit_event_inclusion_proof
from governance.checkpoints import (
    audit_checkpoint_create,
    audit_checkpoint_due,
    checkpoint_anchor_path,
    checkpoint_signature_valid,
    inclusion_proof_valid,
    key_id,
    public_key_hex,
    signing_key_load,
)
from governance.models import AuditCheckpoint, AuditEvent
from governance.tasks import audit_log_sequence_task
from tests.governance.audit_helpers import naive_root_of_events, record_events, signing_key_pem


@pytest.fixture
def key_pem(settings):
    settings.ATTEST_SIGNING_KEY = signing_key_pem()
    return settings.ATTEST_SIGNING_KEY


@pytest.mark.django_db
def test_a_checkpoint_signs_the_root_of_every_event(key_pem):
    # given
    record_events(5)
    # when
    checkpoint = audit_checkpoint_create()
    audit_log_sequence()
    # then
    public_key = public_key_hex(signing_key_load())
    assert checkpoint.size == 5
    assert checkpoint.root == naive_root_of_events(5)
    assert (checkpoint.public_key, checkpoint.key_id) == (public_key, key_id(public_key))
    assert checkpoint_signature_valid(checkpoint)
    signed = AuditEvent.objects.get(seq=6)
    assert (signed.action, signed.object_type, signed.object_id) == (
        AuditAction.AUDIT_CHECKPOINT_SIGNED, "governance.auditcheckpoint", str(checkpoint.pk))
    assert json.loads(signed.payload_json)["after"] == checkpoint.as_contract()
    assert json.loads(signed.actor_json) == {"system": "audit_checkpoint"}


@pytest.mark.django_db
def test_no_second_checkpoint_without_new_events(key_pem):
    # given
    record_events(3)
    first = audit_checkpoint_create()
    # when: only the checkpoint's own event is new
    again = audit_checkpoint_create()
    # then
    assert again.pk == first.pk
    assert AuditCheckpoint.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT_SIGNED).count() == 1


@pytest.mark.django_db
def test_new_events_are_covered_by_the_next_checkpoint_with_the_previous_ones_event(key_pem):
    # given
    record_events(5)
    first = audit_checkpoint_create()
    record_events(3, start=5)
    # when
    second = audit_checkpoint_create()
    # then: 5 events, the first checkpoint's event, 3 more
    assert (first.size, second.size) == (5, 9)
    assert second.root == naive_root_of_events(9)
    assert AuditEvent.objects.get(seq=6).action == AuditAction.AUDIT_CHECKPOINT_SIGNED


@pytest.mark.django_db
def test_an_empty_log_gets_the_empty_root(key_pem):
    checkpoint = audit_checkpoint_create()
    assert (checkpoint.size, checkpoint.root) == (
        0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert checkpoint_signature_valid(checkpoint)


@pytest.mark.django_db
def test_development_key_file_is_created_once_with_mode_0600(settings, tmp_path):
    # given
    settings.ATTEST_SIGNING_KEY = None
    settings.ATTEST_SIGNING_KEY_FILE = tmp_path / "keys" / "signing_key.pem"
    # when
    first = public_key_hex(signing_key_load())
    second = public_key_hex(signing_key_load())
    # then
    assert first == second
    assert stat.S_IMODE(settings.ATTEST_SIGNING_KEY_FILE.stat().st_mode) == 0o600
    assert settings.ATTEST_SIGNING_KEY_FILE.read_text().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.django_db
def test_a_new_signing_key_is_recorded_as_a_rotation(settings, key_pem):
    # given
    record_events(2)
    old = audit_checkpoint_create()
    record_events(1, start=2)
    settings.ATTEST_SIGNING_KEY = signing_key_pem()
    # when
    new = audit_checkpoint_create()
    audit_log_sequence()
    # then
    assert new.key_id != old.key_id
    assert checkpoint_signature_valid(old) and checkpoint_signature_valid(new)
    rotated = AuditEvent.objects.get(action=AuditAction.AUDIT_KEY_ROTATED)
    payload = json.loads(rotated.payload_json)
    assert (payload["old_key_id"], payload["new_key_id"]) == (old.key_id, new.key_id)
    assert rotated.seq == new.size + 2  # after the new checkpoint's own event


@pytest.mark.django_db
def test_each_checkpoint_is_copied_to_the_anchor_directory_on_commit(settings, key_pem, tmp_path,
                                                                    django_capture_on_commit_callbacks):
    # given
    settings.ATTEST_CHECKPOINT_ANCHOR_DIR = str(tmp_path / "anchor")
    record_events(4)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit_checkpoint_create()
    # then
    path = checkpoint_anchor_path(tmp_path / "anchor", 4)
    assert json.loads(path.read_text()) == checkpoint.as_contract()


@pytest.mark.django_db
def test_checkpoint_binding_every_field_and_signature_byte(key_pem):
    # given
    record_events(7)
    good = audit_checkpoint_create().as_contract()
    other_key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    mutations = [
        {"size": good["size"] + 1}, {"size": good["size"] - 1}, {"size": str(good["size"])},
        {"timestamp": good["timestamp"].replace("Z", "1Z")}, {"timestamp": "2020-01-01T00:00:00.000000Z"},
        {"public_key": other_key}, {"signature": ""}, {"public_key": "zz"},
    ]
    mutations += [{"root": good["root"][:i] + ("0" if good["root"][i] != "0" else "1") + good["root"][i + 1:]}
                  for i in range(64)]
    signature = bytes.fromhex(good["signature"])
    mutations += [{"signature": (signature[:i] + bytes([signature[i] ^ 0x01]) + signature[i + 1:]).hex()}
                  for i in range(64)]
    # when
    accepted = [m for m in mutations if checkpoint_signature_valid({**good, **m})]
    # then
    assert checkpoint_signature_valid(good)
    assert len(mutations) == 136
    assert accepted == [], f"{len(accepted)} of {len(mutations)} mutated checkpoints accepted"


@pytest.mark.django_db
def test_a_proof_must_match_its_signed_checkpoint(key_pem):
    # given
    record_events(6)
    audit_checkpoint_create()
    record_events(3, start=6)
    audit_checkpoint_create()
    proof = audit_event_inclusion_proof(seq=2, checkpoint_size=6)
    later = audit_event_inclusion_proof(seq=2, checkpoint_size=10)
    forged = [
        {**proof, "tree_size": 5}, {**proof, "tree_size": 7}, {**proof, "root": later["root"]},
        {**proof, "checkpoint": later["checkpoint"]}, {**proof, "seq": 3}, {**proof, "leaf_index": 2},
        {**proof, "audit_path": later["audit_path"]}, {**proof, "leaf_hash": later["audit_path"][0]},
        {**proof, "checkpoint": {**proof["checkpoint"], "size": 7}},
    ]
    # then
    assert inclusion_proof_valid(proof) and inclusion_proof_valid(later)
    assert inclusion_proof_valid(proof, public_key=proof["checkpoint"]["public_key"])
    assert not inclusion_proof_valid(proof, public_key="00" * 32)
    assert [inclusion_proof_valid(f) for f in forged] == [False] * len(forged)


def test_a_checkpoint_is_due_after_the_configured_number_of_events(settings, key_pem, celery_worker):
    # given: a real worker consumes from the broker (memory:// on the embedded default, Redis in CI)
    settings.ATTEST_CHECKPOINT_EVERY_EVENTS = 3
    record_events(2)
    assert not audit_checkpoint_due()
    record_events(1, start=2)
    assert audit_checkpoint_due()
    # when the sequencer task runs on the worker, it queues the checkpoint task, which signs one
    audit_log_sequence_task.delay()
    # then
    deadline = time.monotonic() + 60
    while not AuditCheckpoint.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(AuditCheckpoint.objects.values_list("size", flat=True)) == [3]
    assert not audit_checkpoint_due()


@pytest.mark.django_db
def test_audit_checkpoint_command_prints_size_and_root(key_pem):
    # given
    record_events(3)
    out = io.StringIO()
    # when
    call_command("audit_checkpoint", stdout=out)
    # then
    checkpoint = AuditCheckpoint.objects.get()
    assert out.getvalue() == f"checkpoint size 3 root {checkpoint.root}\n"
