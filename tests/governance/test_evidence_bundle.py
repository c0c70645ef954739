"""The evidence bundle of the demo's high-risk model, checked by the stand-alone verifier (only
`cryptography` installed): accepted as built, rejected after any single file in it is changed."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from governance.audit import AuditAction, audit_log_sequence
from governance.models import AuditCheckpoint, AuditEvent
from registry.demo import ARRESTS_MODEL
from tests.governance.dossier_helpers import demo_governed, storage_under
from tests.governance.test_export_and_offline_verifier import _verify, crypto_only_python  # noqa: F401
from tests.module_data import module_data

pytestmark = pytest.mark.django_db


def _rewrite(source: Path, target: Path, edit) -> None:
    """Copy the zip, passing each member's bytes through edit(name, data)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info, edit(info.filename, old.read(info.filename)))


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


@pytest.fixture(scope="module")
def demo_bundle(django_db_setup, django_db_blocker, tmp_path_factory) -> Path:
    """The governed demo's bundle, built once for the module (the demo load is most of its time);
    each test reads the same database the bundle was made from."""
    root = tmp_path_factory.mktemp("evidence-bundle")
    bundle = root / "evidence.zip"
    with module_data(django_db_blocker, STORAGES=storage_under(root / "storage")):
        demo_governed()
        call_command("dossier", ARRESTS_MODEL, "--out", str(root / "d.pdf"), "--bundle", str(bundle),
                     stdout=io.StringIO(), stderr=io.StringIO())
        yield bundle


def test_the_verifier_accepts_the_demo_bundle(demo_bundle, crypto_only_python):  # noqa: F811
    # when
    checkpoint = AuditCheckpoint.objects.order_by("-size").first()
    code, output = _verify(crypto_only_python, demo_bundle, "--public-key", checkpoint.public_key)
    # then
    with zipfile.ZipFile(demo_bundle) as bundle:
        names = sorted(bundle.namelist())
        events = [json.loads(line) for line in bundle.read("events.jsonl").decode().splitlines()]
        manifest_sha = hashlib.sha256(bundle.read("evidence-manifest.json")).hexdigest()
        pdf = bundle.read("dossier.pdf")
    assert code == 0, output
    assert output == (f"OK bundle: {len(names)} files, {len(events)} events proved in checkpoint size "
                      f"{checkpoint.size}, root {checkpoint.root}, manifest {manifest_sha}\n")
    assert {"dossier.pdf", "snapshot.json", "model-card.json", "events.jsonl", "checkpoint.json", "public_key.txt",
            "evidence-manifest.json", "MANIFEST.sha256"} <= set(names)
    assert set(json.loads(zipfile.ZipFile(demo_bundle).read("model-card.json"))) == {
        "model_details", "model_parameters", "quantitative_analysis", "considerations"}
    actions = {e["action"] for e in events}
    assert {AuditAction.MODEL_REGISTERED, AuditAction.APPROVAL_SIGNED, AuditAction.GATE_EVALUATED} <= actions
    # the PDF in the bundle is the one stored and logged
    audit_log_sequence()
    generated = json.loads(AuditEvent.objects.get(action=AuditAction.DOSSIER_GENERATED).payload_json)["after"]
    assert generated["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert generated["manifest_sha256"] == manifest_sha
    exported = json.loads(AuditEvent.objects.get(action=AuditAction.EVIDENCE_BUNDLE_EXPORTED).payload_json)
    assert exported["after"]["sha256"] == hashlib.sha256(demo_bundle.read_bytes()).hexdigest()


def test_the_verifier_rejects_the_bundle_after_any_single_file_changed(demo_bundle, crypto_only_python,  # noqa: F811
                                                                       tmp_path):
    # given
    with zipfile.ZipFile(demo_bundle) as bundle:
        names = bundle.namelist()
    assert len(names) >= 8
    # when / then: one byte of one file, for every file
    for name in names:
        changed = tmp_path / f"changed-{name.replace('/', '_')}.zip"
        _rewrite(demo_bundle, changed, lambda member, data, name=name: _flip(data) if member == name else data)
        code, output = _verify(crypto_only_python, changed)
        assert code == 1 and output.startswith("BROKEN"), (name, output)
        expected = ("MANIFEST.sha256" if name == "MANIFEST.sha256" else f"{name} does not match its sha256")
        assert expected in output, (name, output)


def test_a_consistent_forgery_of_one_event_is_caught_by_its_proof(demo_bundle, crypto_only_python,  # noqa: F811
                                                                  tmp_path):
    # given someone changes one event and recomputes its hash, the manifests and MANIFEST.sha256
    with zipfile.ZipFile(demo_bundle) as bundle:
        files = {name: bundle.read(name) for name in bundle.namelist()}
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    forged = events[2]
    forged["object_repr"] = "forged"
    body = {k: forged[k] for k in ("seq", "timestamp", "actor", "action", "object_type", "object_id", "object_repr",
                                   "payload", "correlation_id")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    forged["hash"] = hashlib.sha256(bytes.fromhex(forged["prev_hash"]) + canonical).hexdigest()
    files["events.jsonl"] = "".join(json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
                                    for e in events).encode()
    del files["MANIFEST.sha256"]
    files["MANIFEST.sha256"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                                       for n, d in sorted(files.items())).encode()
    forgery = tmp_path / "forged.zip"
    with zipfile.ZipFile(forgery, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    # when
    code, output = _verify(crypto_only_python, forgery)
    # then
    assert (code, output) == (1, f"BROKEN at seq {forged['seq']}: the inclusion proof does not lead to the "
                                 "checkpoint's root\n")
