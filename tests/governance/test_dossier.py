"""`manage.py dossier` on the demo database: a PDF pypdf parses, with every section, every signer's
printed name and meaning and the checkpoint root, stored with its sha256 and audit-logged; every
page renders to PNG with pdftoppm."""

import hashlib
import io
import json
import re
import subprocess

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from pypdf import PdfReader

from governance.audit import AuditAction, audit_log_sequence
from governance.checkpoints import audit_checkpoint_create
from governance.models import ApprovalRequest, AuditCheckpoint, AuditEvent, Dossier
from governance.reports.pdf import SECTIONS, dossier_pdf_render
from governance.reports.snapshot import DossierSnapshot, dossier_snapshot_build
from governance.services.approvals import approval_request_open, approval_request_sign
from registry.demo import ARRESTS_MODEL
from registry.storage import blob_open
from tests.governance.dossier_helpers import PASSWORDS, SIGNERS, DemoGoverned, demo_governed, storage_under
from tests.module_data import module_data

pytestmark = pytest.mark.django_db


def _text(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def governed(django_db_setup, django_db_blocker, tmp_path_factory) -> DemoGoverned:
    """The governed demo, loaded once for the module, its blobs (and the dossiers') in one storage."""
    with module_data(django_db_blocker, STORAGES=storage_under(tmp_path_factory.mktemp("dossier-storage"))):
        yield demo_governed()


def test_manage_dossier_on_the_demo_writes_the_whole_dossier(governed, tmp_path):
    # given the demo with an approved deployment request of the high-risk model
    world = governed
    out = tmp_path / "arrests.pdf"
    stdout, stderr = io.StringIO(), io.StringIO()
    # when
    call_command("dossier", ARRESTS_MODEL, "--out", str(out), stdout=stdout, stderr=stderr)
    # then the PDF parses and shows every section, signer and the checkpoint root
    pdf = out.read_bytes()
    reader, text = _text(pdf)
    flat = re.sub(r"\s+", "", text)
    for number, title in enumerate(SECTIONS, start=1):
        assert f"{number}. {title}" in text, title
    assert world.approved.status == "approved"
    for _username, printed_name, meaning, _reason in SIGNERS:
        row = re.search(re.escape(printed_name) + r".{0,80}?(model_validator|compliance_officer|risk_officer)\s+"
                        + meaning, text, re.S)
        assert row is not None, printed_name
    checkpoint = AuditCheckpoint.objects.order_by("-size").first()
    assert checkpoint.root in flat and checkpoint.signature in flat
    # stored with its sha256, and its issue is in the log
    dossier = Dossier.objects.get()
    assert dossier.sha256 == hashlib.sha256(pdf).hexdigest() and dossier.pages == len(reader.pages)
    assert (dossier.checkpoint_size, dossier.checkpoint_root) == (checkpoint.size, checkpoint.root)
    assert dossier.manifest_sha256 in flat
    with blob_open(dossier.storage_key) as stored:
        assert stored.read() == pdf
    audit_log_sequence()
    event = AuditEvent.objects.get(action=AuditAction.DOSSIER_GENERATED)
    assert json.loads(event.payload_json)["after"]["sha256"] == dossier.sha256
    assert f"sha256 {dossier.sha256}" in stdout.getvalue()
    assert "dossier" in stderr.getvalue()  # the progress bar
    # every page renders
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True, timeout=120)
    assert len(list(tmp_path.glob("page-*.png"))) == len(reader.pages)


def test_manage_dossier_of_one_version_and_refusals(governed, tmp_path):
    # given the governed demo
    out = tmp_path / "v1.pdf"
    # when
    call_command("dossier", ARRESTS_MODEL, "--version", "1", "--out", str(out), stdout=io.StringIO(),
                 stderr=io.StringIO())
    # then only v1 is described; the v2 request is not in it
    _reader, text = _text(out.read_bytes())
    assert "Version 1" in text and "Version 2" not in text
    assert "Request #" not in text
    assert Dossier.objects.get().model_version.version == 1
    # and a missing model or version is refused, writing nothing
    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("dossier", "nope", "--out", str(tmp_path / "x.pdf"), stdout=io.StringIO())
    with pytest.raises(CommandError, match="has no version 9"):
        call_command("dossier", ARRESTS_MODEL, "--version", "9", "--out", str(tmp_path / "x.pdf"),
                     stdout=io.StringIO())
    assert Dossier.objects.count() == 1 and not (tmp_path / "x.pdf").exists()


# --- what the regulator reads, page by page (the rendered PDF's text) -------------------------------

def _rendered(model) -> tuple[DossierSnapshot, str]:
    """The dossier of `model` now, rendered, and its text (pypdf)."""
    snapshot = dossier_snapshot_build(model=model)
    return snapshot, _text(dossier_pdf_render(snapshot).pdf)[1]


def _section(text: str, number: int) -> str:
    """The text of section `number` (up to the next section's heading)."""
    start = text.index(f"{number}. {SECTIONS[number - 1]}", text.index("Contents") + 1)
    start = text.index(f"{number}. {SECTIONS[number - 1]}", start + 1)  # the heading, not the contents line
    end = text.find(f"{number + 1}. {SECTIONS[number]}", start) if number < len(SECTIONS) else -1
    return text[start:end if end > 0 else None]


def _retraining_request(world: DemoGoverned) -> ApprovalRequest:
    pending = ApprovalRequest.objects.filter(model=world.arrests, kind=ApprovalRequest.Kind.RETRAINING,
                                             status=ApprovalRequest.Status.PENDING).first()
    return pending or approval_request_open(actor=User.objects.get(username="emil"), kind="retraining",
                                            model=world.arrests, reason="Drift on colour and age since v2.")


def test_retraining_signatures_show_the_same_manifestation_as_deployment_approvals(governed):
    # given a retraining request of the high-risk model signed by the validator, covered by a checkpoint
    request = _retraining_request(governed)
    signature = approval_request_sign(actor=User.objects.get(username="vera"), request=request,
                                      password=PASSWORDS["vera"], meaning="approve", reason="Retrain on fresh data.")
    audit_log_sequence()
    audit_checkpoint_create()
    # when
    snapshot, text = _rendered(governed.arrests)
    # then section 11 shows the signature's reason, the record it signs, whether it binds it and its seq
    (shown,) = [s for a in snapshot.retraining_requests for s in a.signatures]
    assert shown.id == signature.pk and shown.binds_record and shown.audit_seq
    section = _section(text, 11)
    flat, words = re.sub(r"\s+", "", section), " ".join(section.split())
    assert "Printed name Role Meaning Reason Signed (UTC) Record sha256 Binds seq" in words
    assert "Vera Lindqvist (vera) model_validator approve Retrain on fresh data." in words
    assert re.sub(r"\s+", "", f"{shown.record_sha256}yes{shown.audit_seq}") in flat
    assert f"Recordsha256(signed){request.evidence_sha256}" in flat


def test_fairness_table_prints_undefined_rates_as_na_with_the_class_counts(governed):
    # given the demo's fairness reports, whose intersections have groups without actual positives or negatives
    snapshot, text = _rendered(governed.arrests)
    groups = [g for r in snapshot.reports if r.kind == "fairness" for f in r.results["features"].values()
              for g in f["groups"]]
    no_positives = [g for g in groups if g["positives"] == 0]
    no_negatives = [g for g in groups if g["negatives"] == 0]
    assert no_positives and no_negatives
    assert all(g["recall"] == 0 for g in no_positives) and all(g["fpr"] == 0 for g in no_negatives)  # fairlearn's 0
    # then each undefined rate is printed as n/a, never as "0 [0, 0]", and each group shows its classes
    flat = re.sub(r"\s+", "", _section(text, 5))
    assert flat.count("n/a(nopositives)") == len(no_positives)
    assert flat.count("n/a(nonegatives)") == len(no_negatives)
    assert "actualpos/neg" in flat
    group = no_negatives[0]
    assert re.sub(r"\s+", "", f"{group['count']}{group['positives']} / 0") in flat
    # and a headline decided by such a group says so
    (first,) = [r for r in snapshot.reports if r.kind == "fairness" and r.model_version == 1][:1]
    where = first.results["headline"]["where"]["equal_opportunity_difference"]
    deciding = next(g for g in first.results["features"][where["feature"]]["groups"] if g["group"] == where["group"])
    assert deciding["positives"] == 0
    words = " ".join(_section(text, 5).split())
    note = re.search(r"Undefined rates: ([^;.]*) come from " + re.escape(
        f"{where['feature']}: {where['group']}, a group of {deciding['count']} row(s) with no actual positives, so "
        "its recall (TPR) is undefined"), words)
    assert note is not None and "equal opportunity difference" in note.group(1)


def test_audit_trail_breaks_names_only_at_their_separators(governed):
    # given the demo's audit trail
    snapshot, text = _rendered(governed.arrests)
    section = _section(text, 14)
    # then every action and actor listed is printed whole, or broken after a "." or "_" only
    for row in snapshot.audit_rows:
        for name in (row.action, row.actor):
            parts = re.split(r"(?<=[._:])", name)
            assert re.search(r"\s?".join(re.escape(p) for p in parts), section), name


def test_verify_chapter_asks_for_the_covers_manifest_and_a_key_from_elsewhere(governed):
    # when
    snapshot, text = _rendered(governed.arrests)
    # then the command passes the cover's manifest hash; the key is the operator's, not the one printed
    section = _section(text, 16)
    flat = re.sub(r"\s+", "", section)
    assert ("pythonverify_attest_log.pyevidence.zip--public-key<theoperator'spublishedkey>--manifest"
            + snapshot.manifest_sha256) in flat
    assert snapshot.checkpoint.public_key not in flat
    assert "hashes to the value on the cover" not in section
    assert "Do not copy the key printed on the cover" in section


def test_policies_and_signing_key_read_as_a_reader_says_them(governed):
    # when
    snapshot, text = _rendered(governed.arrests)
    flat = re.sub(r"\s+", "", text)
    # then a policy's roles and reports are words, not Python
    assert "{'" not in text and "['" not in text
    policy = governed.approved.policy
    # in Role's order on both databases (PostgreSQL's jsonb keeps no key order)
    roles = "1 model_validator, 1 compliance_officer, 1 risk_officer"
    assert re.sub(r"\s+", "", f"roles {roles}; reports {', '.join(policy.required_reports)}") in flat
    # and the mapping names the checkpoint's public key as the cover prints it, and what the key id is
    cp = snapshot.checkpoint
    assert re.sub(r"\s+", "", f"signed (Ed25519) with public key {cp.public_key[:16]}… (key id {cp.key_id}: the "
                  "first 16 hex of that key's sha256)") in flat
