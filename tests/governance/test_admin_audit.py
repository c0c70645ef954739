"""The audit admin: read-only pages that show an event's canonical form, hashes and proof."""

import datetime as dt
import re

import pytest

from governance.audit import audit_log_sequence
from governance.checkpoints import audit_checkpoint_create
from governance.models import AuditCheckpoint, AuditEvent
from tests.governance.audit_helpers import record_events, signing_key_pem


@pytest.fixture
def admin_client_(client, make_user, settings):
    settings.ATTEST_SIGNING_KEY = signing_key_pem()
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    return client


@pytest.mark.django_db
def test_event_pages_show_hashes_and_proof(admin_client_):
    # given
    record_events(6)
    checkpoint = audit_checkpoint_create()
    event = AuditEvent.objects.get(seq=3)
    # when
    listing = admin_client_.get("/admin/governance/auditevent/")
    detail = admin_client_.get("/admin/governance/auditevent/3/change/")
    # then
    assert listing.status_code == 200 and event.hash[:12] in listing.content.decode()
    page = detail.content.decode()
    assert detail.status_code == 200
    assert event.hash in page and event.prev_hash in page
    assert "&quot;audit_path&quot;" in page and checkpoint.root in page
    assert "&quot;object_repr&quot;:&quot;team 2&quot;" in page  # canonical JSON, escaped by the template


@pytest.mark.django_db
def test_nothing_can_be_added_changed_or_deleted(admin_client_):
    # given
    record_events(2)
    audit_checkpoint_create()
    audit_log_sequence()
    # when / then
    assert admin_client_.get("/admin/governance/auditevent/add/").status_code == 403
    assert admin_client_.post("/admin/governance/auditevent/1/delete/", {"post": "yes"}).status_code == 403
    assert admin_client_.post("/admin/governance/auditcheckpoint/1/delete/", {"post": "yes"}).status_code in (403, 404)
    assert admin_client_.get("/admin/governance/auditcheckpoint/").status_code == 200
    assert AuditEvent.objects.count() == 3 and AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_event_and_checkpoint_times_show_seconds_and_utc(admin_client_):
    # given
    record_events(2)
    checkpoint = audit_checkpoint_create()
    event = AuditEvent.objects.get(seq=2)
    utc = "%Y-%m-%d %H:%M:%S UTC"
    # when
    pages = {
        "event list": (admin_client_.get("/admin/governance/auditevent/"), event.timestamp),
        "event detail": (admin_client_.get("/admin/governance/auditevent/2/change/"), event.timestamp),
        "checkpoint detail": (admin_client_.get(f"/admin/governance/auditcheckpoint/{checkpoint.pk}/change/"),
                              checkpoint.created_at),
    }
    # then: in the second and with the zone, as the approval pages show them; never "4:03 a.m."
    for name, (response, value) in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, name
        assert value.astimezone(dt.UTC).strftime(utc) in html, name
        assert not re.search(r"\d{1,2}:\d{2} [ap]\.m\.|\b(noon|midnight)\b", html), name
