"""POST /api/v1/gate/ and /api/v1/deployments/: the contract's shapes, status codes and audit seq."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit import AuditAction
from governance.gate import CHECK_CODES
from governance.models import AuditEvent, AuditQueueEntry, Deployment, GateDecision
from governance.services.approvals import approval_request_open, approval_request_sign
from tests.governance.workflow_factories import PASSWORD, World, logged, person, token_for

pytestmark = pytest.mark.django_db
GATE = "/api/v1/gate/"
DEPLOYMENTS = "/api/v1/deployments/"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def approved(world: World, mv=None, environment="production"):
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=mv or world.v1,
                                    environment=environment)
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    return request


def gate_body(world: World, mv=None, **overrides) -> dict:
    mv = mv or world.v1
    return {"model": mv.model.name, "version": mv.version, "environment": "production",
            "artifact_sha256": mv.artifact_sha256, **overrides}


def test_allowed_answer_has_exactly_the_contract_shape_and_audit_seq(audit_flush):
    # given
    world = World("limited")
    approved(world)
    audit_flush()
    ci = client_for(token_for(world.ci))
    # when
    response = ci.post(GATE, gate_body(world), format="json")
    # then
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["allowed", "audit_seq", "checks", "decision_id", "environment", "evaluated_at",
                            "model", "version"]
    assert (body["allowed"], body["model"], body["version"], body["environment"]) == (
        True, "credit", 1, "production")
    assert [c["code"] for c in body["checks"]] == list(CHECK_CODES)
    assert all(sorted(c) == ["code", "message", "passed"] for c in body["checks"])
    event = AuditEvent.objects.get(seq=body["audit_seq"])
    assert event.action == AuditAction.GATE_EVALUATED
    assert event.object_id == str(GateDecision.objects.get(decision_id=body["decision_id"]).pk)


def test_denial_is_a_200_with_the_failing_checks():
    world = World("limited")
    response = client_for(token_for(world.ci)).post(GATE, gate_body(world), format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is False
    assert [c["code"] for c in body["checks"] if not c["passed"]] == ["approval_missing", "signer_role_missing"]
    assert isinstance(body["audit_seq"], int)


def test_unknown_model_or_version_is_404_with_the_error_body():
    world = World("limited")
    ci = client_for(token_for(world.ci))
    for body in (gate_body(world, model="nope"), gate_body(world, version=42)):
        response = ci.post(GATE, body, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not GateDecision.objects.exists()


@pytest.mark.parametrize("body", [
    {},
    {"model": "credit", "version": 1, "environment": "production"},
    {"model": "credit", "version": "one", "environment": "production", "artifact_sha256": "a" * 64},
    {"model": "credit", "version": 1, "environment": "production", "artifact_sha256": "XYZ"},
    {"model": "credit", "version": 1, "environment": "../prod", "artifact_sha256": "a" * 64},
    {"model": "credit", "version": 0, "environment": "production", "artifact_sha256": "a" * 64},
    # Past the column's range: once an OverflowError in the driver, i.e. a 500.
    {"model": "credit", "version": 2**63, "environment": "production", "artifact_sha256": "a" * 64},
    {"model": "credit", "version": 2**31, "environment": "production", "artifact_sha256": "a" * 64},
])
def test_bad_body_is_400_and_writes_nothing(body):
    world = World("limited")
    response = client_for(token_for(world.ci)).post(GATE, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not GateDecision.objects.exists()
    assert not logged(AuditAction.GATE_EVALUATED)


def test_token_without_gate_scope_is_403():
    world = World("limited")
    response = client_for(token_for(world.ci, "registry:read")).post(GATE, gate_body(world), format="json")
    assert response.status_code == 403
    assert not GateDecision.objects.exists()


def test_auditor_cannot_ask_the_gate_and_anonymous_is_401():
    world = World("limited")
    auditor = APIClient()
    auditor.force_authenticate(world.auditor)
    assert auditor.post(GATE, gate_body(world), format="json").status_code == 403
    assert APIClient().post(GATE, gate_body(world), format="json").status_code == 401
    assert not GateDecision.objects.exists()


def test_another_teams_model_reads_as_missing():
    world = World("limited")
    stranger = person("stranger-ci", "ci_service")
    response = client_for(token_for(stranger)).post(GATE, gate_body(world), format="json")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_gate_request_costs_few_statements_and_never_reads_its_seq_back(django_assert_max_num_queries):
    # given: committed data, and a first request that pays the token's last_used_at update
    world = World("limited")
    approved(world)
    ci_token = token_for(world.ci)
    ci = client_for(ci_token)
    assert ci.post(GATE, gate_body(world), format="json").status_code == 200
    # when: the token with its user and roles (one statement), BEGIN, version+membership, policy,
    # requests, signatures with their signers' roles, the reports, the dataset versions, open
    # critical alerts (monitoring's check, MLflow alias alerts included), the decision, then the
    # event: PostgreSQL chains it in the same transaction (head if free, insert+head, COMMIT);
    # SQLite queues it (entry, COMMIT) and the sequencer chains it (BEGIN, head, dequeue, insert,
    # head, COMMIT)
    expected = 14 if connection.vendor == "postgresql" else 18
    with django_assert_max_num_queries(expected):
        response = ci.post(GATE, gate_body(world), format="json")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is True
    event = AuditEvent.objects.get(seq=body["audit_seq"])
    assert event.object_id == str(GateDecision.objects.get(decision_id=body["decision_id"]).pk)
    assert json.loads(event.actor_json) == {"id": world.ci.pk, "username": world.ci.username,
                                            "roles": ["ci_service"], "token": ci_token[:12]}
    assert AuditQueueEntry.objects.count() == 0


# --- deployments -----------------------------------------------------------------------------------

def test_record_and_query_what_was_live_at_a_time():
    # given
    world = World("limited")
    approved(world)
    ci = client_for(token_for(world.ci))
    decision = ci.post(GATE, gate_body(world), format="json").json()
    # when
    created = ci.post(DEPLOYMENTS, {"model": "credit", "version": 1, "environment": "production",
                                    "decision_id": decision["decision_id"]}, format="json")
    later = (timezone.now() + dt.timedelta(seconds=1)).isoformat()
    before = (timezone.now() - dt.timedelta(days=1)).isoformat()
    live = ci.get(DEPLOYMENTS, {"environment": "production", "at": later})
    earlier = ci.get(DEPLOYMENTS, {"environment": "production", "at": before})
    # then
    assert created.status_code == 201, created.json()
    row = created.json()
    assert {k: row[k] for k in ("model", "version", "environment", "artifact_sha256", "deployed_by",
                                "decision_id")} == {
        "model": "credit", "version": 1, "environment": "production",
        "artifact_sha256": world.v1.artifact_sha256, "deployed_by": "ci", "decision_id": decision["decision_id"]}
    assert [s["signer_name"] for s in row["approval"]["signatures"]] == ["Val Tester", "Comp Tester"]
    assert live.status_code == 200
    assert [(r["model"], r["version"]) for r in live.json()["results"]] == [("credit", 1)]
    assert earlier.json()["count"] == 0


def test_deployment_on_a_denied_decision_is_409_and_writes_nothing():
    world = World("limited")
    ci = client_for(token_for(world.ci))
    decision = ci.post(GATE, gate_body(world), format="json").json()
    response = ci.post(DEPLOYMENTS, {"model": "credit", "version": 1, "environment": "production",
                                     "decision_id": decision["decision_id"]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "gate_decision_invalid"
    assert not Deployment.objects.exists()
    assert not AuditQueueEntry.objects.filter(action=AuditAction.DEPLOYMENT_RECORDED).exists()


def test_deployments_bad_at_is_400():
    world = World("limited")
    response = client_for(token_for(world.ci)).get(DEPLOYMENTS, {"at": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_the_directly_built_answer_is_byte_for_byte_what_its_serializer_renders():
    # given: an approved version, asked once with its artifact and once with another
    from rest_framework.renderers import JSONRenderer

    from governance.api.approval_serializers import GateDecisionOutputSerializer

    world = World("limited")
    approved(world)
    ci = client_for(token_for(world.ci))
    for overrides, allowed, failing in (({}, True, []), ({"artifact_sha256": "a" * 64}, False,
                                                         ["artifact_hash_mismatch"])):
        # when
        response = ci.post(GATE, gate_body(world, **overrides), format="json")
        # then: the body GateApi builds by hand is the one GateDecisionOutputSerializer describes,
        # fed from the stored decision and its audit event
        assert response.status_code == 200
        body = response.json()
        decision = GateDecision.objects.get(decision_id=body["decision_id"])
        event = AuditEvent.objects.get(action=AuditAction.GATE_EVALUATED, object_id=str(decision.pk))
        expected = GateDecisionOutputSerializer({
            "allowed": decision.allowed, "decision_id": decision.decision_id, "model": world.model.name,
            "version": world.v1.version, "environment": "production", "evaluated_at": decision.evaluated_at,
            "audit_seq": event.seq, "checks": decision.checks}).data
        rendered = JSONRenderer().render(expected)
        assert body == json.loads(rendered)
        assert response.content == rendered
        assert (body["allowed"], [c["code"] for c in body["checks"] if not c["passed"]]) == (allowed, failing)
        assert body["decision_id"] == str(decision.decision_id)
        assert isinstance(body["evaluated_at"], str) and isinstance(body["audit_seq"], int)
        assert all(list(c) == ["code", "passed", "message"] for c in body["checks"])
