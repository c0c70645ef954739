"""The evidence bundle of the demo's high-risk model, checked by the stand-alone verifier (only
`cryptography` installed): accepted as built, rejected after any single file in it is changed, and
rejected after the tampering an attacker would try: a file changed with MANIFEST.sha256 recomputed
("naive"), and the same with everything not signed recomputed too — the report's sha256, the
snapshot, the evidence manifest and the PDF's subject ("resealed"). A resealed bundle is caught by
the signed audit events where they bind the file (reports, charts), and otherwise by the manifest
sha256 of the PDF's cover pinned with --manifest."""

import hashlib
import io
import json
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

from governance.audit import AuditAction, audit_log_sequence
from governance.models import AuditCheckpoint, AuditEvent, Dossier
from registry.demo import ARRESTS_MODEL
from tests.governance.dossier_helpers import demo_governed, storage_under
from tests.governance.test_export_and_offline_verifier import (  # noqa: F401
    VERIFIER,
    _verify,
    crypto_only_python,
)
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
    # given the manifest sha256 the PDF's cover prints
    cover = Dossier.objects.get().manifest_sha256
    checkpoint = AuditCheckpoint.objects.order_by("-size").first()
    # when
    code, output = _verify(crypto_only_python, demo_bundle, "--public-key", checkpoint.public_key)
    pinned_code, pinned = _verify(crypto_only_python, demo_bundle, "--public-key", checkpoint.public_key,
                                  "--manifest", cover)
    # then
    with zipfile.ZipFile(demo_bundle) as bundle:
        names = sorted(bundle.namelist())
        events = [json.loads(line) for line in bundle.read("events.jsonl").decode().splitlines()]
        manifest_sha = hashlib.sha256(bundle.read("evidence-manifest.json")).hexdigest()
        pdf = bundle.read("dossier.pdf")
    assert manifest_sha == cover
    line = (f"OK bundle: {len(names)} files, 4 reports and 14 charts checked, {len(events)} events proved in "
            f"checkpoint size {checkpoint.size}, root {checkpoint.root}, manifest {manifest_sha}")
    assert (code, output) == (0, f"{line} (not pinned: compare it with the PDF's cover)\n")
    assert (pinned_code, pinned) == (0, f"{line} (pinned)\n")
    assert {"dossier.pdf", "snapshot.json", "model-card.json", "events.jsonl", "checkpoint.json", "public_key.txt",
            "evidence-manifest.json", "verify_attest_log.py", "MANIFEST.sha256"} <= set(names)
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


# --- tampering as an attacker would do it -----------------------------------------------------------

@dataclass(frozen=True)
class FirstFairness:
    """The demo's first fairness report in the bundle: its id (not 1 on PostgreSQL, whose sequences a
    rolled-back test does not reset), its member, two of its charts and its report.created event's seq."""

    id: str
    report: str
    swapped: tuple[str, str]
    seq: int


@pytest.fixture(scope="module")
def fair(demo_bundle) -> FirstFairness:
    files = _members(demo_bundle)
    rid = min((m.group(1) for m in (re.fullmatch(r"reports/fairness-(\d+)\.json", n) for n in files) if m), key=int)
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    [seq] = [e["seq"] for e in events if e["action"] == AuditAction.REPORT_CREATED and str(e["object_id"]) == rid]
    return FirstFairness(id=rid, report=f"reports/fairness-{rid}.json", seq=seq,
                         swapped=(f"reports/charts/{rid}-fairness-sex.png", f"reports/charts/{rid}-fairness-age.png"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _bundle_json(value) -> bytes:
    """The way the bundle writes its JSON members (an attacker copies it)."""
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def _pack(files: dict[str, bytes], target: Path) -> Path:
    """The zip of `files` with MANIFEST.sha256 recomputed."""
    files = {name: data for name, data in files.items() if name != "MANIFEST.sha256"}
    files["MANIFEST.sha256"] = "".join(f"{_sha(data)}  {name}\n" for name, data in sorted(files.items())).encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(files):
            out.writestr(name, files[name])
    return target


def _edit_json(files: dict[str, bytes], name: str, edit) -> None:
    value = json.loads(files[name])
    edit(value)
    files[name] = _bundle_json(value)


def _reseal(files: dict[str, bytes]) -> str:
    """Recompute everything not signed: the snapshot and model-card entries, the evidence manifest,
    the snapshot's copy of it and its sha256, and the PDF's subject. Returns the new manifest sha256."""
    [old_sha] = re.findall(rb"/Subject \(manifest ([0-9a-f]{64})\)", files["dossier.pdf"])
    snapshot = json.loads(files["snapshot.json"])
    manifest = json.loads(files["evidence-manifest.json"])
    content = {key: value for key, value in snapshot.items() if key not in ("manifest", "manifest_sha256")}
    digests = {"snapshot": _sha(_canonical(content)), "model card": _sha(_canonical(json.loads(
        files["model-card.json"])))}
    entries = [[kind, name, digests.get(kind, digest)] for kind, name, digest in manifest["entries"]]
    files["evidence-manifest.json"] = _canonical({"checkpoint": manifest["checkpoint"], "entries": entries})
    new_sha = _sha(files["evidence-manifest.json"])
    snapshot["manifest"] = [{"kind": kind, "name": name, "sha256": digest} for kind, name, digest in entries]
    snapshot["manifest_sha256"] = new_sha
    files["snapshot.json"] = _bundle_json(snapshot)
    files["dossier.pdf"] = files["dossier.pdf"].replace(old_sha, new_sha.encode())
    return new_sha


def _set_entry(files: dict[str, bytes], kind: str, name: str, digest: str) -> None:
    def edit(manifest):
        [entry] = [e for e in manifest["entries"] if e[:2] == [kind, name]]
        entry[2] = digest
    manifest = json.loads(files["evidence-manifest.json"])
    edit(manifest)
    files["evidence-manifest.json"] = _canonical(manifest)


def _snapshot_report(snapshot: dict, report_id: str) -> dict:
    [record] = [r for r in snapshot["reports"] if r["id"] == report_id]
    return record


def _cover() -> str:
    return Dossier.objects.get().manifest_sha256


@pytest.mark.parametrize("attacker", ["naive", "resealed"])
def test_changed_headline_values_of_a_report_are_caught(demo_bundle, fair, crypto_only_python,  # noqa: F811
                                                        tmp_path, attacker):
    # given the fairness report's headline disparity rewritten to look harmless
    files = _members(demo_bundle)
    report = json.loads(files[fair.report])
    report["results"]["headline"]["demographic_parity_difference"] = 0.01
    report["results"]["headline"]["demographic_parity_ratio"] = 0.99
    if attacker == "resealed":  # its sha256, the snapshot's copy and the manifest's entry follow
        report["sha256"] = _sha(_canonical(report["results"]))
        _edit_json(files, "snapshot.json", lambda s: _snapshot_report(s, fair.id).update(
            results=report["results"], sha256=report["sha256"]))
        _set_entry(files, "report", f"fairness report {fair.id} (v1)", report["sha256"])
    files[fair.report] = _bundle_json(report)
    if attacker == "resealed":
        _reseal(files)
    # when
    code, output = _verify(crypto_only_python, _pack(files, tmp_path / "tampered.zip"))
    # then: the signed governance.report.created event still holds the true sha256
    assert (code, output) == (1, {
        "naive": f"BROKEN: {fair.report}: its results do not hash to its sha256\n",
        "resealed": f"BROKEN at seq {fair.seq}: {fair.report}: its sha256 is not the one its "
                    "governance.report.created event records\n"}[attacker])


@pytest.mark.parametrize("attacker", ["naive", "resealed"])
def test_a_swapped_chart_is_caught(demo_bundle, fair, crypto_only_python, tmp_path, attacker):  # noqa: F811
    # given the fairness charts by sex and by age swapped
    files = _members(demo_bundle)
    sex, age = fair.swapped
    files[sex], files[age] = files[age], files[sex]
    if attacker == "resealed":  # the snapshot's chart hashes and the manifest's entries follow
        def swap(snapshot):
            charts = {c["name"]: c for c in _snapshot_report(snapshot, fair.id)["charts"]}
            charts["fairness-sex"]["sha256"], charts["fairness-age"]["sha256"] = _sha(files[sex]), _sha(files[age])
        _edit_json(files, "snapshot.json", swap)
        _set_entry(files, "chart", f"fairness report {fair.id}: fairness-sex", _sha(files[sex]))
        _set_entry(files, "chart", f"fairness report {fair.id}: fairness-age", _sha(files[age]))
        _reseal(files)
    # when
    code, output = _verify(crypto_only_python, _pack(files, tmp_path / "tampered.zip"))
    # then
    assert (code, output) == (1, {
        "naive": f"BROKEN at seq {fair.seq}: {sex} does not match its sha256 in the "
                 "governance.report.created event and the manifests\n",
        "resealed": f"BROKEN at seq {fair.seq}: {fair.report}: its charts are not those its "
                    "governance.report.created event records\n"}[attacker])


@pytest.mark.parametrize("attacker", ["naive", "resealed"])
def test_a_pending_request_marked_approved_in_the_snapshot_is_caught(demo_bundle, crypto_only_python,  # noqa: F811
                                                                     tmp_path, attacker):
    # given the pending retraining request shown as approved
    files = _members(demo_bundle)

    def approve(snapshot):
        [pending] = [a for a in snapshot["approvals"] if a["status"] == "pending"]
        pending["status"] = "approved"
    _edit_json(files, "snapshot.json", approve)
    forged = _reseal(files) if attacker == "resealed" else ""
    # when
    code, output = _verify(crypto_only_python, _pack(files, tmp_path / "tampered.zip"), "--manifest", _cover())
    # then
    assert (code, output) == (1, {
        "naive": "BROKEN: snapshot.json does not match its sha256 in evidence-manifest.json ('snapshot')\n",
        "resealed": f"BROKEN: evidence-manifest.json hashes to {forged}, not to the pinned {_cover()} (the PDF "
                    "cover's manifest sha256): the bundle is not the one the dossier describes\n"}[attacker])


@pytest.mark.parametrize("attacker", ["naive", "resealed"])
def test_changed_model_card_wording_is_caught(demo_bundle, crypto_only_python, tmp_path, attacker):  # noqa: F811
    # given the model card's limitations softened
    files = _members(demo_bundle)
    _edit_json(files, "model-card.json", lambda card: card["considerations"].update(limitations=["None known."]))
    forged = _reseal(files) if attacker == "resealed" else ""
    # when
    code, output = _verify(crypto_only_python, _pack(files, tmp_path / "tampered.zip"), "--manifest", _cover())
    # then
    assert (code, output) == (1, {
        "naive": "BROKEN: model-card.json does not match its sha256 in evidence-manifest.json ('model card')\n",
        "resealed": f"BROKEN: evidence-manifest.json hashes to {forged}, not to the pinned {_cover()} (the PDF "
                    "cover's manifest sha256): the bundle is not the one the dossier describes\n"}[attacker])


def test_an_event_removed_consistently_is_caught_by_the_pinned_manifest(demo_bundle, crypto_only_python,  # noqa: F811
                                                                        tmp_path):
    # given the withdrawal of request #2 removed from events.jsonl, the manifest and the snapshot alike
    files = _members(demo_bundle)
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    [gone] = [e for e in events if e["action"] == "governance.approval.withdrawn"]
    files["events.jsonl"] = b"".join(_canonical(e) + b"\n" for e in events if e is not gone)
    manifest = json.loads(files["evidence-manifest.json"])
    manifest["entries"].remove(["event", f"seq {gone['seq']}", gone["hash"]])
    files["evidence-manifest.json"] = _canonical(manifest)

    def forget(snapshot):
        snapshot["audit_seqs"].remove(gone["seq"])
        snapshot["audit_rows"] = [row for row in snapshot["audit_rows"] if row["seq"] != gone["seq"]]
        snapshot["audit_event_count"] -= 1
    _edit_json(files, "snapshot.json", forget)
    forged = _reseal(files)
    tampered = _pack(files, tmp_path / "tampered.zip")
    # when
    unpinned = _verify(crypto_only_python, tampered)
    pinned = _verify(crypto_only_python, tampered, "--manifest", _cover())
    # then: consistent on its own (its manifest sha256 is not the cover's), caught once pinned
    assert unpinned[0] == 0 and f"manifest {forged} (not pinned" in unpinned[1], unpinned
    assert forged != _cover()
    assert pinned == (1, f"BROKEN: evidence-manifest.json hashes to {forged}, not to the pinned {_cover()} (the PDF "
                         "cover's manifest sha256): the bundle is not the one the dossier describes\n")


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("notes.txt", b"nothing to see\n", "notes.txt is not covered by the evidence manifest or the audit events"),
    ("reports/charts/1-extra.png", b"\x89PNG", "reports/charts/1-extra.png is not covered by the evidence manifest "
                                               "or the audit events"),
    ("verify_attest_log.py", b"print('OK bundle')\n", "verify_attest_log.py does not match its sha256 in "
                                                       "evidence-manifest.json ('verifier')"),
], ids=["extra file", "extra chart", "verifier replaced"])
def test_a_file_not_covered_by_the_manifest_or_the_events_is_reported(demo_bundle, crypto_only_python,  # noqa: F811
                                                                      tmp_path, name, data, reason):
    # given a file added (or the shipped verifier replaced) and MANIFEST.sha256 recomputed
    files = _members(demo_bundle)
    files[name] = data
    # when
    code, output = _verify(crypto_only_python, _pack(files, tmp_path / "tampered.zip"), "--manifest", _cover())
    # then
    assert (code, output) == (1, f"BROKEN: {reason}\n")


def test_the_bundle_ships_the_verifier_its_manifest_lists(demo_bundle, crypto_only_python, tmp_path):  # noqa: F811
    # given the verifier a reader finds inside the bundle
    files = _members(demo_bundle)
    shipped = tmp_path / "verify_attest_log.py"
    shipped.write_bytes(files["verify_attest_log.py"])
    entries = json.loads(files["evidence-manifest.json"])["entries"]
    # when
    done = subprocess.run([crypto_only_python, "-I", str(shipped), str(demo_bundle), "--manifest", _cover()],
                          capture_output=True, text=True, timeout=120)
    # then
    assert files["verify_attest_log.py"] == VERIFIER.read_bytes()
    assert ["verifier", "verify_attest_log.py", _sha(VERIFIER.read_bytes())] in entries
    assert [kind for kind, _name, _digest in entries if kind in ("snapshot", "model card", "verifier")] == [
        "snapshot", "model card", "verifier"]
    assert done.returncode == 0 and done.stdout.endswith(f"manifest {_cover()} (pinned)\n"), done


def test_attest_verify_log_passes_the_pinned_manifest_to_the_verifier(demo_bundle, capsys):
    from attest_cli.main import main

    cover = Dossier.objects.get().manifest_sha256
    assert main(["verify-log", str(demo_bundle), "--manifest", cover]) == 0
    assert main(["verify-log", str(demo_bundle), "--manifest", "0" * 64]) == 1
    assert "BROKEN" in capsys.readouterr().out
