"""`manage.py dossier` on the demo database: a PDF pypdf parses, with every section, every signer's
printed name and meaning and the checkpoint root, stored with its sha256 and audit-logged; every
page renders to PNG with pdftoppm."""

import hashlib
import io
import json
import re
import subprocess

import pytest
from django.core.management import CommandError, call_command
from pypdf import PdfReader

from governance.audit import AuditAction, audit_log_sequence
from governance.models import AuditCheckpoint, AuditEvent, Dossier
from governance.reports.pdf import SECTIONS
from registry.demo import ARRESTS_MODEL
from registry.storage import blob_open
from tests.governance.dossier_helpers import SIGNERS, DemoGoverned, demo_governed, storage_under
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
