"""The export and the stand-alone verifier a regulator runs (docs/verify_attest_log.py).

The verifier runs as a subprocess in a fresh virtualenv whose site-packages hold only
`cryptography` and its dependencies (linked from the project's environment; no network), with
-I so neither the project nor PYTHONPATH leaks in.
"""

import json
import subprocess
import sys
from pathlib import Path

import cffi
import cryptography
import pycparser
import pytest
from django.core.management import call_command
from django.db import connection

from governance import db_triggers
from governance.audit import AuditAction, audit_event_canonical, audit_log_sequence
from governance.canonical import event_hash
from governance.checkpoints import checkpoint_anchor_path, public_key_hex, signing_key_load
from governance.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditMerkleNode
from registry.services import team_create
from tests.governance.audit_helpers import record_events, signing_key_pem

VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "verify_attest_log.py"


@pytest.fixture(scope="session")
def crypto_only_python(tmp_path_factory) -> Path:
    """A python whose only third-party packages are cryptography, cffi and pycparser."""
    venv = tmp_path_factory.mktemp("crypto-only-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    source = Path(cryptography.__file__).parent.parent
    for package in (cryptography, cffi, pycparser):
        (site / Path(package.__file__).parent.name).symlink_to(Path(package.__file__).parent)
    for backend in source.glob("_cffi_backend*"):
        (site / backend.name).symlink_to(backend)
    python = venv / "bin" / "python"
    isolated = subprocess.run([python, "-I", "-c", "import django"], capture_output=True, cwd=venv)
    assert isolated.returncode == 1  # the project's packages are not there
    return python


def _verify(python: Path, *args) -> tuple[int, str]:
    done = subprocess.run([python, "-I", str(VERIFIER), *map(str, args)], capture_output=True, text=True,
                          cwd=Path(python).parent, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def key(settings):
    settings.ATTEST_SIGNING_KEY = signing_key_pem()
    return public_key_hex(signing_key_load())


@pytest.fixture
def real_log(db, make_user, key):
    """Events written by real services, including non-ASCII text."""
    admin = make_user("ada", is_staff=True)
    for name in ("risk", "crédit-scoring", "模型"):
        team_create(actor=admin, name=name)
    audit_log_sequence()
    record_events(40, actor=admin)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.django_db
def test_an_export_verifies_offline_with_the_same_head_and_root(real_log, crypto_only_python, tmp_path, key):
    # given
    out = tmp_path / "log.jsonl"
    # when
    call_command("export_audit_log", out=str(out), stdout=open(tmp_path / "stdout", "w"))
    code, output = _verify(crypto_only_python, out, "--public-key", key)
    # then
    checkpoint = AuditCheckpoint.objects.get()
    lines = _lines(out)
    events, last = lines[:-1], lines[-1]
    head = AuditEvent.objects.get(seq=len(events)).hash
    assert last == {"checkpoint": checkpoint.as_contract()}
    assert [e["seq"] for e in events] == list(range(1, 45))  # 43 events, then the checkpoint's own
    assert checkpoint.size == 43
    assert events[-1]["action"] == AuditAction.AUDIT_CHECKPOINT_SIGNED
    assert set(events[0]) == {"seq", "timestamp", "actor", "action", "object_type", "object_id", "object_repr",
                              "payload", "correlation_id", "prev_hash", "hash"}
    assert (code, output) == (0, f"OK 44 events, head {head}, root {checkpoint.root} (checkpoint size 43)\n")
    # and reading the export was itself logged, after the export's last seq
    audit_log_sequence()
    exported = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert exported.seq == 45
    assert json.loads(exported.payload_json)["count"] == 44


@pytest.mark.django_db
def test_a_tampered_export_is_refused(real_log, crypto_only_python, tmp_path):
    # given
    good = tmp_path / "log.jsonl"
    call_command("export_audit_log", out=str(good), stdout=open(tmp_path / "stdout", "w"))
    lines = good.read_text(encoding="utf-8").splitlines()

    def tampered(name, edit):
        records = [json.loads(line) for line in lines]
        edit(records)
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        return path

    def flip_signature(records):
        sig = records[-1]["checkpoint"]["signature"]
        records[-1]["checkpoint"]["signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]

    cases = {
        "payload": (lambda r: r[9]["payload"].update(after={"name": "forged"}),
                    "BROKEN at seq 10: hash does not match the event's content"),
        "deleted": (lambda r: r.pop(19), "BROKEN at seq 20: seq 21 where 20 was expected (gap, reorder or duplicate)"),
        "swapped": (lambda r: r.insert(5, r.pop(6)), "BROKEN at seq 6: seq 7 where 6 was expected "
                                                     "(gap, reorder or duplicate)"),
        "truncated": (lambda r: r.__delitem__(slice(30, -1)),
                      "BROKEN: the checkpoint covers 43 events but the export holds 30"),
        "root": (lambda r: r[-1]["checkpoint"].update(root="00" * 32),
                 "BROKEN: the Merkle root of the first 43 events differs from the checkpoint's root"),
        "signature": (flip_signature, "BROKEN: the checkpoint's signature does not verify"),
        "no checkpoint": (lambda r: r.pop(), "BROKEN: the export does not end with a checkpoint line"),
    }
    # when / then
    assert _verify(crypto_only_python, good)[0] == 0
    for name, (edit, message) in cases.items():
        assert _verify(crypto_only_python, tampered(name.replace(" ", "_"), edit)) == (1, message + "\n"), name


@pytest.mark.django_db
def test_a_full_rewrite_resigned_with_another_key_is_caught_by_what_was_kept_outside(
        real_log, crypto_only_python, tmp_path, settings, key, django_capture_on_commit_callbacks):
    # given an export whose checkpoint was also anchored outside the database
    settings.ATTEST_CHECKPOINT_ANCHOR_DIR = str(tmp_path / "anchor")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("export_audit_log", out=str(tmp_path / "before.jsonl"), stdout=open(tmp_path / "o", "w"))
    anchored = checkpoint_anchor_path(tmp_path / "anchor", 43)
    assert anchored.exists()

    # when someone with database-owner rights changes one historic event, rebuilds the chain and
    # the tree, and re-signs with a key of their own
    settings.ATTEST_CHECKPOINT_ANCHOR_DIR = None
    db_triggers.drop(connection)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET payload_json = %s WHERE seq = 5",
                       ['{"after":{"name":"rewritten"},"before":null,"reason":null}'])
        prev = AuditEvent.objects.get(seq=4).hash
        for event in AuditEvent.objects.filter(seq__gte=5).order_by("seq"):
            new_hash = event_hash(prev, audit_event_canonical(event))
            cursor.execute("UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
                           [prev, new_hash, event.seq])
            prev = new_hash
        cursor.execute("DELETE FROM governance_auditcheckpoint")
    AuditChainHead.objects.filter(pk=1).update(hash=prev)
    AuditMerkleNode.objects.all().delete()
    db_triggers.install(connection)
    settings.ATTEST_SIGNING_KEY = signing_key_pem()
    after = tmp_path / "after.jsonl"
    call_command("export_audit_log", out=str(after), stdout=open(tmp_path / "o", "w"))

    # then the rewrite is self-consistent (chain, tree and signature all check) ...
    code, output = _verify(crypto_only_python, after)
    assert code == 0 and output.startswith("OK 46 events"), output
    # ... but not against the pinned key or the anchored checkpoint
    assert _verify(crypto_only_python, after, "--public-key", key) == (
        1, f"BROKEN: the checkpoint is signed by key {public_key_hex(signing_key_load())}, not the pinned key\n")
    assert _verify(crypto_only_python, after, "--anchor", anchored) == (
        1, "BROKEN: the Merkle root of the first 43 events differs from the anchored checkpoint's root\n")
    assert _verify(crypto_only_python, tmp_path / "before.jsonl", "--anchor", anchored)[0] == 0
