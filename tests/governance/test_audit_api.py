"""The audit-log read API: who may read, list and filters, proofs, checkpoints, consistency, verify."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_log_sequence
from governance.audit_selectors import audit_event_contract
from governance.checkpoints import audit_checkpoint_create, inclusion_proof_valid
from governance.merkle import verify_consistency
from governance.models import AuditCheckpoint, AuditEvent
from governance.services.tokens import api_token_issue
from tests.governance.audit_helpers import record_events, signing_key_pem

EVENTS = "/api/v1/audit/events/"


@pytest.fixture(autouse=True)
def _key(settings):
    settings.ATTEST_SIGNING_KEY = signing_key_pem()


@pytest.fixture
def auditor(make_user):
    return make_user("audrey", roles=["auditor"])


@pytest.fixture
def log(make_user):
    """12 events by alice, 3 by bob, a checkpoint (size 15) and its event."""
    alice, bob = make_user("alice"), make_user("bob")
    record_events(12, actor=alice)
    record_events(3, actor=bob, start=100)
    audit_checkpoint_create()
    audit_log_sequence()
    return alice, bob


def _token(user, scopes):
    with transaction.atomic():
        _, key = api_token_issue(actor=user, user=user, scopes=scopes)
    audit_log_sequence()
    return key


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["auditor", "compliance_officer", "risk_officer", "model_validator"])
def test_governance_roles_read_the_log(api_client, make_user, log, role):
    api_client.force_authenticate(make_user("reader", roles=[role]))
    assert api_client.get(EVENTS).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", [EVENTS, "/api/v1/audit/checkpoints/", "/api/v1/audit/events/1/proof/",
                                 "/api/v1/audit/checkpoints/15/", "/api/v1/audit/verify/",
                                 "/api/v1/audit/checkpoints/consistency/?first=15&second=15"])
def test_other_users_are_refused(api_client, make_user, log, url):
    # given
    api_client.force_authenticate(make_user("dora", roles=["data_scientist", "ml_engineer", "ci_service"]))
    before = AuditEvent.objects.count()
    # when
    response = api_client.get(url)
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert AuditEvent.objects.count() == before
    api_client.force_authenticate(None)
    assert api_client.get(url).status_code in (401, 403)


@pytest.mark.django_db
def test_staff_and_superusers_read_the_log(api_client, make_user, log):
    api_client.force_authenticate(make_user("staff", is_staff=True))
    assert api_client.get(EVENTS).status_code == 200
    api_client.force_authenticate(make_user("root", is_superuser=True))
    assert api_client.get(EVENTS).status_code == 200


@pytest.mark.django_db
def test_tokens_need_the_audit_read_scope(api_client, auditor, log):
    # given
    with_scope = _token(auditor, ["audit:read"])
    without = _token(auditor, ["registry:read"])
    # then
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {with_scope}")
    assert api_client.get(EVENTS).status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {without}")
    response = api_client.get(EVENTS)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "The token lacks the scope this operation needs: audit:read."


@pytest.mark.django_db
def test_events_are_listed_in_the_contracts_shape(api_client, auditor, log):
    # given
    api_client.force_authenticate(auditor)
    # when
    body = api_client.get(EVENTS, {"page_size": 5}).json()
    # then
    assert body["count"] == 16
    assert [e["seq"] for e in body["results"]] == [1, 2, 3, 4, 5]
    assert body["results"][0] == audit_event_contract(AuditEvent.objects.get(seq=1))
    first = body["results"][0]
    assert first["actor"] == {"id": log[0].pk, "username": "alice", "roles": []}
    assert first["payload"] == {"after": {"name": "team 0"}, "before": None, "reason": None}
    assert first["prev_hash"] == "0" * 64 and body["results"][1]["prev_hash"] == first["hash"]


@pytest.mark.django_db
def test_events_filter_by_actor_object_action_and_time(api_client, auditor, log):
    # given
    alice, bob = log
    api_client.force_authenticate(auditor)

    def seqs(**params):
        response = api_client.get(EVENTS, {"page_size": 100, **params})
        assert response.status_code == 200, response.json()
        return [e["seq"] for e in response.json()["results"]]

    middle = AuditEvent.objects.get(seq=13).timestamp
    # then
    assert seqs(actor="bob") == [13, 14, 15]
    assert seqs(actor=str(bob.pk)) == [13, 14, 15]
    assert seqs(actor="bo") == []
    assert seqs(object_type="registry.team", object_id="101") == [14]
    assert seqs(action="governance.audit.checkpoint_signed") == [16]
    assert seqs(object_type="governance.auditcheckpoint") == [16]
    assert seqs(since=middle.isoformat(), actor="bob") == [13, 14, 15]
    assert seqs(until=middle.isoformat(), action="registry.team.created", actor="bob") == []
    later = (timezone.now() + dt.timedelta(days=1)).isoformat()
    assert seqs(since=later) == []


@pytest.mark.django_db
def test_bad_filters_are_400(api_client, auditor, log):
    api_client.force_authenticate(auditor)
    response = api_client.get(EVENTS, {"since": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == ["since"]


@pytest.mark.django_db
def test_inclusion_proof_of_an_event(api_client, auditor, log):
    # given
    api_client.force_authenticate(auditor)
    checkpoint = AuditCheckpoint.objects.get()
    # when
    body = api_client.get("/api/v1/audit/events/7/proof/").json()
    explicit = api_client.get("/api/v1/audit/events/7/proof/", {"checkpoint": 15}).json()
    # then
    assert body == explicit
    assert set(body) == {"seq", "leaf_index", "tree_size", "leaf_hash", "audit_path", "root", "checkpoint"}
    assert (body["seq"], body["leaf_index"], body["tree_size"], body["root"]) == (7, 6, 15, checkpoint.root)
    assert body["checkpoint"] == checkpoint.as_contract()
    assert len(body["audit_path"]) == 4
    assert inclusion_proof_valid(body)


@pytest.mark.django_db
@pytest.mark.parametrize("url,status,code", [
    ("/api/v1/audit/events/999/proof/", 404, "audit_event_not_found"),
    ("/api/v1/audit/events/16/proof/", 404, "checkpoint_not_found"),
    ("/api/v1/audit/events/3/proof/?checkpoint=9", 404, "checkpoint_not_found"),
    ("/api/v1/audit/events/3/proof/?checkpoint=x", 400, "validation_error"),
    ("/api/v1/audit/events/3/proof/?checkpoint=-1", 400, "validation_error"),
    (f"/api/v1/audit/events/{2**64}/proof/", 404, "audit_event_not_found"),
    ("/api/v1/audit/checkpoints/7/", 404, "checkpoint_not_found"),
    (f"/api/v1/audit/checkpoints/{2**64}/", 404, "checkpoint_not_found"),
    ("/api/v1/audit/checkpoints/consistency/?first=15", 400, "validation_error"),
    ("/api/v1/audit/checkpoints/consistency/?first=15&second=3", 400, "consistency_order"),
    ("/api/v1/audit/checkpoints/consistency/?first=3&second=15", 404, "checkpoint_not_found"),
])
def test_unknown_and_bad_requests(api_client, auditor, log, url, status, code):
    api_client.force_authenticate(auditor)
    response = api_client.get(url)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_checkpoints_and_consistency(api_client, auditor, log):
    # given a second checkpoint
    record_events(5, start=200)
    audit_checkpoint_create()
    api_client.force_authenticate(auditor)
    first, second = AuditCheckpoint.objects.order_by("size")
    # when
    listed = api_client.get("/api/v1/audit/checkpoints/").json()
    one = api_client.get("/api/v1/audit/checkpoints/21/").json()
    proof = api_client.get("/api/v1/audit/checkpoints/consistency/", {"first": 15, "second": 21}).json()
    # then
    assert listed["results"] == [first.as_contract(), second.as_contract()]
    assert one == second.as_contract()
    assert (proof["first"], proof["second"]) == (first.as_contract(), second.as_contract())
    assert verify_consistency(15, 21, bytes.fromhex(first.root), bytes.fromhex(second.root),
                              [bytes.fromhex(p) for p in proof["consistency_path"]])


@pytest.mark.django_db
def test_verify_reports_ok_with_count_and_head(api_client, auditor, log):
    api_client.force_authenticate(auditor)
    body = api_client.get("/api/v1/audit/verify/").json()
    head = AuditEvent.objects.get(seq=16).hash
    assert (body["ok"], body["count"], body["head"], body["broken_seq"]) == (True, 16, head, None)
    assert body["line"] == f"OK 16 events, head {head}"
