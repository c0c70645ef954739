"""The monitoring API: uploads (CSV, Parquet, JSON records; empty or non-tabular refused), monitors,
alerts and their actions, and who may do what."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from governance.audit import AuditAction
from governance.models import AuditEvent, AuditQueueEntry
from monitoring.models import ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch
from tests.governance.workflow_factories import PASSWORD, person, token_for
from tests.monitoring.conftest import sample

BATCHES = "/api/v1/monitoring-batches/"
MONITORS = "/api/v1/monitors/"
ALERTS = "/api/v1/alerts/"


def client(user, *scopes) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user, *scopes)}")
    return api


def csv_upload(frame, name="batch.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, frame.to_csv(index=False).encode(), content_type="text/csv")


def stored(storage_root) -> list[str]:
    return sorted(str(p) for p in storage_root.rglob("*") if p.is_file() and "blobs" in p.parts)


def ingested() -> int:
    """Events of batch ingestion, chained or still queued."""
    action = AuditAction.MONITORING_BATCH_INGESTED
    return AuditQueueEntry.objects.filter(action=action).count() + AuditEvent.objects.filter(action=action).count()


def post_batch(api, monitor, upload):
    return api.post(BATCHES, {"monitor": monitor.pk, "file": upload}, format="multipart")


def test_a_csv_batch_is_stored_and_checked_on_commit(shop, django_capture_on_commit_callbacks, celery_eager):
    api = client(shop.world.ci, "registry:read", "monitoring:write")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(api, shop.monitor, csv_upload(sample(300, seed=4)))
    assert response.status_code == 201, response.json()
    body = response.json()
    batch = MonitoringBatch.objects.get()
    assert (body["id"], body["format"], body["row_count"], body["sha256"]) == (batch.pk, "csv", 300, batch.sha256)
    assert body["has_labels"] is True and body["has_predictions"] is True
    assert DriftResult.objects.filter(batch=batch).count() == 1
    # the same bytes again: the stored batch, 200, nothing new
    again = post_batch(api, shop.monitor, csv_upload(sample(300, seed=4)))
    assert again.status_code == 200 and again.json()["id"] == batch.pk
    assert again.json()["result"] == DriftResult.objects.get().pk
    assert ingested() == 1


def test_parquet_and_json_records_are_batches_too(shop):
    api = client(shop.world.engineer)
    buffer = io.BytesIO()
    sample(200, seed=4).to_parquet(buffer, index=False)
    parquet = post_batch(api, shop.monitor, SimpleUploadedFile("x.bin", buffer.getvalue()))
    records = sample(50, seed=6).to_dict(orient="records")
    as_file = post_batch(api, shop.monitor, SimpleUploadedFile("r.txt", json.dumps(records).encode()))
    as_body = api.post(BATCHES, {"monitor": shop.monitor.pk, "records": sample(60, seed=7).to_dict(orient="records")},
                       format="json")
    assert [r.status_code for r in (parquet, as_file, as_body)] == [201, 201, 201]
    assert [r.json()["format"] for r in (parquet, as_file, as_body)] == ["parquet", "json", "json"]
    assert [r.json()["row_count"] for r in (parquet, as_file, as_body)] == [200, 50, 60]


@pytest.mark.parametrize(("content", "code"), [
    (b"", "empty_batch"),
    (b"   \n", "empty_batch"),
    (b"age,income,colour\n", "empty_batch"),
    (b"[]", "empty_batch"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_tabular"),
    (b'{"not": "records", "nested": {"a": 1}}', "not_tabular"),
    (b"[1, 2, 3]", "not_tabular"),
    (b"[{\"age\": 1", "unreadable_batch"),
    (b"PAR1garbage-not-a-parquet-file", "unreadable_batch"),
])
def test_an_empty_or_non_tabular_upload_is_400_with_a_code_and_stores_nothing(shop, storage_root, content, code):
    before = stored(storage_root)
    response = post_batch(client(shop.world.engineer), shop.monitor, SimpleUploadedFile("b.csv", content))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not MonitoringBatch.objects.exists()
    assert stored(storage_root) == before
    assert ingested() == 0


@pytest.mark.parametrize("field", ["model_version", "reference"])
def test_an_id_past_the_columns_range_is_400_not_an_overflow(shop, field):
    monitors = DriftMonitor.objects.count()
    body = {"model_version": shop.version.pk, "environment": "staging", field: 2**63}
    response = client(shop.world.engineer).post(MONITORS, body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == [field]
    assert DriftMonitor.objects.count() == monitors


def test_an_empty_records_body_is_400(shop):
    response = client(shop.world.engineer).post(BATCHES, {"monitor": shop.monitor.pk, "records": []}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "empty_batch")


def test_an_oversize_batch_is_413_and_stores_nothing(shop, storage_root, settings):
    settings.ATTEST_MAX_UPLOAD_BYTES = 1000
    response = post_batch(client(shop.world.engineer), shop.monitor, csv_upload(sample(400, seed=4)))
    assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")
    assert not MonitoringBatch.objects.exists()


def test_someone_of_another_team_neither_sees_nor_feeds_the_monitor(shop):
    stranger = person("stranger", "ml_engineer")
    api = client(stranger)
    assert api.get(f"{MONITORS}{shop.monitor.pk}/").status_code == 404
    assert api.get(MONITORS).json()["count"] == 0
    response = post_batch(api, shop.monitor, csv_upload(sample(100, seed=4)))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert not MonitoringBatch.objects.exists()


def test_a_token_without_monitoring_write_cannot_send_batches(shop):
    response = post_batch(client(shop.world.engineer, "registry:read"), shop.monitor, csv_upload(sample(50, seed=4)))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


def test_monitors_are_created_and_changed_over_the_api(shop):
    api = client(shop.world.engineer)
    response = api.post(MONITORS, {"model_version": shop.version.pk, "environment": "staging",
                                   "features": [{"name": "age", "test": "psi", "threshold": 0.2}, {"name": "colour"}],
                                   "breach_severity": "warning"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["features"] == [{"name": "age", "kind": "numeric", "test": "psi", "threshold": 0.2},
                                {"name": "colour", "kind": "categorical", "test": None, "threshold": None}]
    assert body["reference"] == shop.reference.pk and body["label_column"] == "approved"
    duplicate = api.post(MONITORS, {"model_version": shop.version.pk, "environment": "staging"}, format="json")
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "monitor_exists")
    unknown = api.post(MONITORS, {"model_version": shop.version.pk, "environment": "dev",
                                  "features": [{"name": "shoe_size"}]}, format="json")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_feature")
    wrong_test = api.post(MONITORS, {"model_version": shop.version.pk, "environment": "dev",
                                     "features": [{"name": "colour", "test": "ks"}]}, format="json")
    assert (wrong_test.status_code, wrong_test.json()["error"]["code"]) == (400, "invalid_test")
    patched = api.patch(f"{MONITORS}{body['id']}/", {"drift_share": 0.25, "reason": "stricter"}, format="json")
    assert patched.status_code == 200 and patched.json()["drift_share"] == 0.25
    assert AuditQueueEntry.objects.filter(action=AuditAction.MONITOR_UPDATED).count() == 1


def _drifted_alert(shop) -> ComplianceAlert:
    from tests.monitoring.test_alerts import drifted

    return drifted(shop)


def test_alerts_list_filter_and_carry_the_contract_fields(shop):
    alert = _drifted_alert(shop)
    api = client(shop.world.auditor)
    body = api.get(ALERTS, {"status": "open"}).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert {k: row[k] for k in ("id", "model", "severity", "status")} == {
        "id": alert.pk, "model": shop.world.model.name, "severity": "critical", "status": "open"}
    assert api.get(ALERTS, {"status": "resolved"}).json()["count"] == 0
    assert api.get(ALERTS, {"status": "bogus"}).status_code == 400
    results = api.get(f"{MONITORS}{shop.monitor.pk}/results/").json()
    assert results["count"] == 1 and results["results"][0]["drifted_features"] == ["age", "colour"]


def test_the_auditor_reads_alerts_but_changes_nothing(shop):
    alert = _drifted_alert(shop)
    api = client(shop.world.auditor)
    assert api.get(f"{ALERTS}{alert.pk}/").status_code == 200
    for action in ("acknowledge", "resolve", "dismiss"):
        response = api.post(f"{ALERTS}{alert.pk}/{action}/", {"reason": "x", "password": PASSWORD}, format="json")
        assert response.status_code == 403
    response = api.post(MONITORS, {"model_version": shop.version.pk, "environment": "dev"}, format="json")
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"
    assert DriftMonitor.objects.count() == 1


def test_a_non_officer_cannot_resolve_a_critical_alert_and_an_officer_can_with_a_password(shop):
    alert = _drifted_alert(shop)
    engineer = client(shop.world.engineer)
    denied = engineer.post(f"{ALERTS}{alert.pk}/resolve/", {"reason": "fixed", "password": PASSWORD}, format="json")
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "signer_role_missing")
    acknowledged = engineer.post(f"{ALERTS}{alert.pk}/acknowledge/", {"reason": "on it"}, format="json")
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    officer = client(shop.world.compliance)
    unsigned = officer.post(f"{ALERTS}{alert.pk}/resolve/", {"reason": "fixed"}, format="json")
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (403, "signature_required")
    signed = officer.post(f"{ALERTS}{alert.pk}/resolve/", {"reason": "fixed upstream", "password": PASSWORD},
                          format="json")
    assert signed.status_code == 200
    body = signed.json()
    assert body["status"] == "resolved"
    assert [{k: s[k] for k in ("signer_name", "role", "meaning", "reason")} for s in body["signatures"]] == [
        {"signer_name": "Comp Tester", "role": "compliance_officer", "meaning": "resolve", "reason": "fixed upstream"}]
    assert len(body["signatures"][0]["record_sha256"]) == 64
    assert body["signatures"][0]["signed_at"].endswith("Z")


def test_a_foreign_alert_reads_as_missing(shop):
    alert = _drifted_alert(shop)
    api = client(person("stranger", "data_scientist"))
    assert api.get(f"{ALERTS}{alert.pk}/").status_code == 404
    assert api.post(f"{ALERTS}{alert.pk}/acknowledge/", {"reason": "x"}, format="json").status_code == 404
    assert api.get(ALERTS).json()["count"] == 0
