"""A model version's status follows governance: approved when a deployment request is, deployed when deployed."""

import json

import pytest
from rest_framework.test import APIClient

from governance.audit import AuditAction
from governance.gate import gate_evaluate
from governance.models import AuditQueueEntry
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.deployments import deployment_record
from registry.services import model_version_archive
from tests.governance.workflow_factories import PASSWORD, World, token_for

pytestmark = pytest.mark.django_db

STATUS_CHANGED = AuditAction.MODEL_VERSION_STATUS_CHANGED


def status_events(mv) -> list[dict]:
    entries = AuditQueueEntry.objects.filter(action=STATUS_CHANGED, object_id=str(mv.pk)).order_by("pk")
    return [json.loads(entry.payload_json) for entry in entries]


def approved_for(world: World, mv, environment: str):
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=mv,
                                    environment=environment)
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    return request


def deploy(world: World, mv, environment: str):
    decision = gate_evaluate(actor=world.ci, model_name=mv.model.name, version=mv.version, environment=environment,
                             artifact_sha256=mv.artifact_sha256)
    return deployment_record(actor=world.ci, model_version=mv, environment=environment,
                             decision_id=decision.decision_id)


def test_an_approved_deployment_request_approves_the_version_with_one_event():
    # given
    world = World("limited")
    # when: approved for two environments
    first = approved_for(world, world.v1, "staging")
    second = approved_for(world, world.v1, "production")
    # then: approved once, by the signer who completed the first quorum, right after that approval
    world.v1.refresh_from_db()
    assert (first.status, second.status, world.v1.status) == ("approved", "approved", "approved")
    events = status_events(world.v1)
    assert [(e["before"], e["after"]) for e in events] == [({"status": "registered"}, {"status": "approved"})]
    assert events[0]["reason"] == f"deployment request #{first.pk} (staging) approved"
    entry = AuditQueueEntry.objects.get(action=STATUS_CHANGED)
    previous = AuditQueueEntry.objects.filter(pk__lt=entry.pk).order_by("-pk").first()
    assert previous.action == AuditAction.APPROVAL_APPROVED
    assert json.loads(entry.actor_json)["username"] == world.signers()[-1].username


@pytest.mark.parametrize("decision", ["reject", "withdraw"])
def test_a_request_not_approved_leaves_the_version_registered(decision):
    # given
    world = World("limited")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    if decision == "reject":
        approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="reject",
                              reason="not calibrated")
    else:
        from governance.services.approvals import approval_request_withdraw
        approval_request_withdraw(actor=world.engineer, request=request, reason="changed plans")
    # then
    world.v1.refresh_from_db()
    assert world.v1.status == "registered"
    assert status_events(world.v1) == []


def test_a_deployment_deploys_the_version_and_a_later_approval_does_not_move_it_back():
    # given
    world = World("limited")
    approved_for(world, world.v1, "production")
    # when
    deploy(world, world.v1, "production")
    deploy(world, world.v1, "dev")  # outside the policy: no approval needed, already deployed
    approved_for(world, world.v1, "staging")
    # then
    world.v1.refresh_from_db()
    assert world.v1.status == "deployed"
    assert [(e["before"], e["after"]) for e in status_events(world.v1)] == [
        ({"status": "registered"}, {"status": "approved"}), ({"status": "approved"}, {"status": "deployed"})]


def test_a_deployment_outside_the_policy_deploys_a_registered_version():
    # given
    world = World("limited")
    # when
    deploy(world, world.v1, "dev")
    # then
    world.v1.refresh_from_db()
    assert world.v1.status == "deployed"
    assert [(e["before"], e["after"]) for e in status_events(world.v1)] == [
        ({"status": "registered"}, {"status": "deployed"})]
    assert list(AuditQueueEntry.objects.order_by("-pk").values_list("action", flat=True)[:2]) == [
        STATUS_CHANGED, AuditAction.DEPLOYMENT_RECORDED]


def test_an_archived_version_is_never_moved():
    # given: a pending request whose version is archived before the quorum is met
    world = World("limited")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    model_version_archive(actor=world.engineer, model_version=world.v1, reason="bad calibration")
    # when
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    # then: the request is approved, the version stays archived, no status event
    request.refresh_from_db()
    world.v1.refresh_from_db()
    assert (request.status, world.v1.status) == ("approved", "archived")
    assert status_events(world.v1) == []


def test_the_api_shows_the_status():
    # given
    world = World("limited")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.engineer)}")
    url = f"/api/v1/model-versions/{world.v1.pk}/"
    seen = [client.get(url).json()["status"]]
    # when
    approved_for(world, world.v1, "production")
    seen.append(client.get(url).json()["status"])
    deploy(world, world.v1, "production")
    seen.append(client.get(url).json()["status"])
    # then
    assert seen == ["registered", "approved", "deployed"]
