"""The dossier API (dossier.pdf, evidence.zip): who reads it, what is stored and logged, refusals that
change nothing; the Celery task after commit; the audit trail summarised for a busy model."""

import hashlib
import io
import json
import time
import zipfile

import pytest
from pypdf import PdfReader
from rest_framework.test import APIClient

from governance.audit import AuditAction, audit_log_sequence
from governance.checkpoints import audit_checkpoint_create
from governance.gate import gate_evaluate
from governance.models import AuditEvent, AuditQueueEntry, Dossier
from governance.reports.pdf import dossier_pdf_render
from governance.reports.snapshot import dossier_snapshot_build
from governance.services.dossiers import dossier_schedule
from tests.governance.dossier_helpers import storage_in
from tests.governance.test_kpis import _release
from tests.governance.workflow_factories import World, person, team


def _events() -> int:
    return AuditEvent.objects.count() + AuditQueueEntry.objects.count()


@pytest.mark.django_db
def test_dossier_pdf_and_evidence_zip_over_the_api(settings, tmp_path):
    # given a released model
    storage_in(settings, tmp_path)
    world = World("limited")
    _release(world, world.v1)
    client = APIClient()
    url = f"/api/v1/models/{world.model.pk}/dossier.pdf"
    # when the auditor downloads the dossier
    client.force_authenticate(world.auditor)
    response = client.get(url)
    # then
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pdf = response.content
    dossier = Dossier.objects.get()
    assert response["X-Attest-Sha256"] == dossier.sha256 == hashlib.sha256(pdf).hexdigest()
    assert response["X-Attest-Manifest-Sha256"] == dossier.manifest_sha256
    assert dossier.generated_by == world.auditor and dossier.model_version is None
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Environment production" in text and "8. Deployments and rollbacks" in text
    audit_log_sequence()
    event = AuditEvent.objects.get(action=AuditAction.DOSSIER_GENERATED)
    assert json.loads(event.actor_json)["username"] == world.auditor.username
    # the team reads it too, for one version; the bundle holds the PDF and the manifests
    client.force_authenticate(world.scientist)
    assert client.get(url, {"version": 1}).status_code == 200
    response = client.get(f"/api/v1/models/{world.model.pk}/evidence.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        assert {"dossier.pdf", "MANIFEST.sha256", "events.jsonl"} <= set(bundle.namelist())
    assert Dossier.objects.count() == 3


@pytest.mark.django_db
def test_refusals_change_nothing(settings, tmp_path):
    # given
    storage_in(settings, tmp_path)
    world = World("limited")
    outsider = person("olga", "data_scientist")
    team("elsewhere", outsider)
    client = APIClient()
    audit_log_sequence()
    before = _events()
    cases = [(outsider, "dossier.pdf", {}, 404, "not_found"), (outsider, "evidence.zip", {}, 404, "not_found"),
             (world.ci, "dossier.pdf", {}, 403, "permission_denied"),
             (world.auditor, "dossier.pdf", {"version": 99}, 404, "not_found"),
             (world.auditor, "evidence.zip", {"version": "v1"}, 400, "validation_error")]
    for user, what, params, status, code in cases:
        client.force_authenticate(user)
        response = client.get(f"/api/v1/models/{world.model.pk}/{what}", params)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (user, what)
    client.force_authenticate(world.auditor)
    assert client.get("/api/v1/models/999999/dossier.pdf").status_code == 404
    # then
    assert Dossier.objects.count() == 0 and _events() == before


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_dossier_is_generated_by_the_worker_after_commit(settings, tmp_path, celery_worker):
    # given
    storage_in(settings, tmp_path)
    world = World("limited", prefix="w-")
    # when
    dossier_schedule(actor=world.compliance, model=world.model, version=1)
    # then the worker generates it once the request committed
    deadline = time.monotonic() + 60
    while not Dossier.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    dossier = Dossier.objects.get()
    assert (dossier.model, dossier.model_version, dossier.generated_by) == (world.model, world.v1, world.compliance)
    audit_log_sequence()
    assert AuditEvent.objects.filter(action=AuditAction.DOSSIER_REQUESTED).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.DOSSIER_GENERATED).count() == 1


@pytest.mark.django_db
def test_older_routine_events_are_summarised_with_counts_and_hash_ranges():
    # given a released model whose gate was then asked 120 more times
    world = World("limited")
    deployment = _release(world, world.v1)
    for _ in range(120):
        gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="staging",
                      artifact_sha256=world.v1.artifact_sha256)
    audit_checkpoint_create()
    # when
    summarised = dossier_snapshot_build(model=world.model, recent_routine=20)
    naive = dossier_snapshot_build(model=world.model, recent_routine=10**9)
    # then every event is accounted for once: in full or in a summary row
    gate_events = list(AuditEvent.objects.filter(action=AuditAction.GATE_EVALUATED).order_by("seq"))
    assert len(gate_events) == 121  # the release's gate question, and 120 more
    in_summary = sum(r.count for r in summarised.audit_summary)
    assert len(summarised.audit_rows) + in_summary == summarised.audit_event_count == naive.audit_event_count
    assert len(naive.audit_rows) == naive.audit_event_count and naive.audit_summary == ()
    # the decision the deployment cites stays in full, with its inclusion proof; the rest, oldest first, summarised
    cited_seq = next(e.seq for e in gate_events if e.object_id == str(deployment.decision.pk))
    assert cited_seq in {r.seq for r in summarised.audit_rows}
    assert in_summary == 120 - 20
    (row,) = summarised.audit_summary
    summarised_events = [e for e in gate_events if e.seq != cited_seq][:in_summary]
    assert (row.action, row.count, row.first_seq, row.last_seq, row.first_hash, row.last_hash) == (
        AuditAction.GATE_EVALUATED, 100, summarised_events[0].seq, summarised_events[-1].seq,
        summarised_events[0].hash, summarised_events[-1].hash)
    assert cited_seq in {p.seq for p in summarised.proofs} and all(p.verified for p in summarised.proofs)
    # and the summarised dossier is shorter than the naive one
    assert dossier_pdf_render(summarised).pages < dossier_pdf_render(naive).pages
