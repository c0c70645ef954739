"""The approval API: open, read, sign (password even over a token), withdraw, policies."""

import pytest
from rest_framework.test import APIClient

from governance.audit import AuditAction
from governance.models import ApprovalPolicy, ApprovalRequest, AuditQueueEntry, Signature
from tests.governance.workflow_factories import PASSWORD, World, person, token_for

pytestmark = pytest.mark.django_db
REQUESTS = "/api/v1/approval-requests/"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def open_via_api(world: World) -> dict:
    response = client_for(token_for(world.engineer)).post(
        REQUESTS, {"kind": "deployment", "model_version": world.v1.pk, "environment": "production"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def sign_url(pk: int) -> str:
    return f"{REQUESTS}{pk}/sign/"


def test_open_and_read_a_request():
    # given
    world = World("limited")
    # when
    body = open_via_api(world)
    detail = as_user(world.validator).get(f"{REQUESTS}{body['id']}/")
    # then
    assert (body["kind"], body["status"], body["model"], body["version"], body["environment"]) == (
        "deployment", "pending", "credit", 1, "production")
    assert body["policy"] == {"id": ApprovalPolicy.objects.get(risk_tier="limited").pk, "risk_tier": "limited",
                              "version": 1}
    assert body["signatures"] == [] and body["requested_by"] == "eng"
    assert detail.status_code == 200 and detail.json()["evidence_sha256"] == body["evidence_sha256"]


def test_mass_assignment_of_status_and_requester_is_ignored():
    world = World("limited")
    response = client_for(token_for(world.engineer)).post(REQUESTS, {
        "kind": "deployment", "model_version": world.v1.pk, "environment": "production", "status": "approved",
        "requested_by": world.compliance.pk, "evidence_sha256": "0" * 64}, format="json")
    assert response.status_code == 201
    request = ApprovalRequest.objects.get()
    assert (request.status, request.requested_by) == ("pending", world.engineer)


def test_open_with_missing_fields_is_400():
    world = World("limited")
    response = as_user(world.engineer).post(REQUESTS, {"kind": "deployment"}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == ["environment", "model_version"]


def test_sign_with_token_and_password_then_quorum():
    # given
    world = World("limited")
    body = open_via_api(world)
    # when: both officers sign through their API tokens, each re-entering the password
    first = client_for(token_for(world.validator)).post(
        sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve", "reason": "ok"}, format="json")
    second = client_for(token_for(world.compliance)).post(
        sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve"}, format="json")
    # then
    assert first.status_code == 201 and first.json()["status"] == "pending"
    assert second.status_code == 201 and second.json()["status"] == "approved"
    signature = second.json()["signatures"][0]
    assert {k: signature[k] for k in ("signer_name", "role", "meaning", "reason", "record_sha256")} == {
        "signer_name": "Val Tester", "role": "model_validator", "meaning": "approve", "reason": "ok",
        "record_sha256": body["evidence_sha256"]}
    assert signature["signed_at"].endswith("Z")


def test_token_alone_never_signs():
    world = World("limited")
    body = open_via_api(world)
    response = client_for(token_for(world.validator)).post(sign_url(body["id"]), {"meaning": "approve"},
                                                           format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "reauthentication_failed"
    assert not Signature.objects.exists()


def test_ci_service_token_cannot_sign():
    # given
    world = World("limited")
    body = open_via_api(world)
    ci = client_for(token_for(world.ci))
    before = AuditQueueEntry.objects.count()
    # when
    response = ci.post(
        sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve"}, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signature_not_allowed"
    assert not Signature.objects.exists() and AuditQueueEntry.objects.count() == before


def test_wrong_password_over_the_api_is_logged():
    world = World("limited")
    body = open_via_api(world)
    response = as_user(world.validator).post(sign_url(body["id"]), {"password": "x", "meaning": "approve"},
                                             format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "reauthentication_failed"
    assert AuditQueueEntry.objects.filter(action=AuditAction.SIGNING_REAUTH_FAILED).count() == 1


def test_signing_a_decided_request_is_409_invalid_transition():
    world = World("limited")
    body = open_via_api(world)
    as_user(world.engineer).post(f"{REQUESTS}{body['id']}/withdraw/", {"reason": "oops"}, format="json")
    response = as_user(world.validator).post(sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve"},
                                             format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


def test_signing_after_a_new_policy_version_is_409_evidence_stale_with_the_error_body():
    # given
    world = World("limited")
    body = open_via_api(world)
    policy = as_user(world.compliance).post("/api/v1/policies/", {
        "risk_tier": "limited", "max_approval_age_days": 10, "reason": "tighter"}, format="json")
    assert policy.status_code == 201 and policy.json()["version"] == 2
    # when
    response = as_user(world.validator).post(sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve"},
                                             format="json")
    # then
    assert response.status_code == 409
    what = "it was opened under the limited policy v1 and the limited policy v2 is in force now"
    assert response.json() == {"error": {
        "code": "evidence_stale",
        "message": (f"The evidence of request #{body['id']} changed since it was opened: {what}. A signature must "
                    "bind the current record (21 CFR 11.70), so this request can no longer be signed; the "
                    "requester can withdraw it and open a new one."),
        "fields": {"evidence": [what]}}}
    assert Signature.objects.count() == 0
    assert as_user(world.validator).get(f"{REQUESTS}{body['id']}/").json()["status"] == "pending"


def test_requester_signing_is_403_separation_of_duties():
    world = World("limited")
    response = as_user(world.compliance).post(
        REQUESTS, {"kind": "deployment", "model_version": world.v1.pk, "environment": "production"}, format="json")
    signed = as_user(world.compliance).post(sign_url(response.json()["id"]),
                                            {"password": PASSWORD, "meaning": "approve"}, format="json")
    assert signed.status_code == 403 and signed.json()["error"]["code"] == "separation_of_duties"


def test_auditor_reads_but_cannot_sign_or_open():
    world = World("limited")
    body = open_via_api(world)
    auditor = as_user(world.auditor)
    assert auditor.get(f"{REQUESTS}{body['id']}/").status_code == 200
    assert auditor.post(sign_url(body["id"]), {"password": PASSWORD, "meaning": "approve"},
                        format="json").status_code == 403
    assert auditor.post(REQUESTS, {"kind": "retraining", "model": "credit", "reason": "x"},
                        format="json").status_code == 403
    assert ApprovalRequest.objects.count() == 1


def test_another_teams_request_reads_as_missing():
    world = World("limited")
    body = open_via_api(world)
    stranger = as_user(person("stranger", "data_scientist"))
    assert stranger.get(f"{REQUESTS}{body['id']}/").status_code == 404
    assert stranger.get(REQUESTS).json()["count"] == 0


def test_list_filters_by_kind_and_status():
    world = World("limited")
    open_via_api(world)
    client = as_user(world.compliance)
    client.post(REQUESTS, {"kind": "retraining", "model": "credit", "reason": "drift"}, format="json")
    assert client.get(REQUESTS, {"kind": "retraining"}).json()["count"] == 1
    assert client.get(REQUESTS, {"status": "pending"}).json()["count"] == 2
    assert client.get(REQUESTS, {"status": "approved"}).json()["count"] == 0


def test_policies_list_and_edit_by_compliance_officer_only():
    # given
    world = World("limited")
    edit = {"risk_tier": "minimal", "reason": "two engineers", "required_roles": {"ml_engineer": 2}}
    # when
    listed = as_user(world.auditor).get("/api/v1/policies/")
    refused = as_user(world.engineer).post("/api/v1/policies/", edit, format="json")
    created = as_user(world.compliance).post("/api/v1/policies/", edit, format="json")
    # then
    assert [p["risk_tier"] for p in listed.json()["results"]] == ["high", "limited", "minimal", "unacceptable"]
    assert refused.status_code == 403
    assert created.status_code == 201
    assert (created.json()["version"], created.json()["required_roles"]) == (2, {"ml_engineer": 2})


def test_ci_service_reads_no_approvals_but_is_told_it_never_signs():
    world = World("limited")
    body = open_via_api(world)
    ci = client_for(token_for(world.ci))
    assert ci.get(REQUESTS).json()["count"] == 0
    assert ci.get(f"{REQUESTS}{body['id']}/").status_code == 404
    assert ci.post(sign_url(999999), {"password": PASSWORD, "meaning": "approve"},
                   format="json").json()["error"]["code"] == "signature_not_allowed"


@pytest.mark.parametrize("field,value", [("model_version", 2**63), ("dataset_versions", [2**63])])
def test_an_id_past_the_columns_range_is_400_not_an_overflow(field, value):
    world = World("limited")
    body = {"kind": "deployment", "model_version": world.v1.pk, "environment": "production", field: value}
    response = as_user(world.engineer).post(REQUESTS, body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == [field]
    assert not ApprovalRequest.objects.exists()


def test_a_policy_minimum_without_its_metric_is_400_over_the_api_too():
    world = World("limited")
    response = as_user(world.compliance).post("/api/v1/policies/", {
        "risk_tier": "limited", "reason": "stricter", "thresholds": {"metric_min": 0.95}}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_error")
    assert "metric" in response.json()["error"]["fields"]["thresholds"][0]
    assert ApprovalPolicy.objects.filter(risk_tier="limited").count() == 1
