"""Approval requests: opening, the quorum, withdrawal, expiry, and every illegal transition."""

import datetime as dt

import pytest
from django.utils import timezone

from governance.audit import AuditAction
from governance.models import ApprovalRequest, AuditQueueEntry, Signature
from governance.services.approvals import (
    approval_request_expire,
    approval_request_open,
    approval_request_sign,
    approval_request_withdraw,
    approval_requests_expire_due,
)
from governance.services.signatures import approval_request_record_sha256
from mlops_site.common.errors import ApplicationError
from tests.governance.workflow_factories import PASSWORD, World, person

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditQueueEntry.objects.order_by("pk").values_list("action", flat=True))


def open_deployment(world: World, environment: str = "production") -> ApprovalRequest:
    return approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                 environment=environment)


def approve_all(world: World, request: ApprovalRequest) -> ApprovalRequest:
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    return request


def test_open_records_evidence_policy_version_and_event():
    # given
    world = World("limited")
    # when
    request = open_deployment(world)
    # then
    assert request.status == "pending"
    assert request.policy.risk_tier == "limited" and request.policy.version == 1
    assert request.evidence["artifact_sha256"] == world.v1.artifact_sha256
    assert request.evidence["datasets"] == [{"use": "training", "id": world.data.pk, "dataset": "loans",
                                             "version": 1, "sha256": world.data.sha256}]
    assert request.evidence["reports"] == []
    assert request.evidence["policy"] == {"id": request.policy_id, "risk_tier": "limited", "version": 1}
    assert request.evidence_sha256 == approval_request_record_sha256(request)
    assert actions()[-1] == AuditAction.APPROVAL_REQUESTED


def test_quorum_of_required_roles_approves():
    # given
    world = World("high")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="staging")
    # when
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    approval_request_sign(actor=world.compliance, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    status_after_two = request.status
    approval_request_sign(actor=world.risk, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    # then
    assert status_after_two == "pending"
    assert request.status == "approved" and request.decided_at is not None
    assert sorted(request.signatures.values_list("role", flat=True)) == [
        "compliance_officer", "model_validator", "risk_officer"]
    # the approved deployment request also moves the version's status (registered -> approved)
    assert actions()[-3:] == [AuditAction.APPROVAL_SIGNED, AuditAction.APPROVAL_APPROVED,
                              AuditAction.MODEL_VERSION_STATUS_CHANGED]


def test_reviewed_signature_does_not_count_toward_quorum():
    # given
    world = World("limited")
    request = open_deployment(world)
    # when
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="reviewed")
    approval_request_sign(actor=world.compliance, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    # then
    assert request.status == "pending"
    assert list(request.signatures.values_list("meaning", flat=True)) == ["reviewed", "approve"]


def test_a_required_signers_rejection_rejects():
    # given
    world = World("limited")
    request = open_deployment(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # when
    approval_request_sign(actor=world.compliance, request=request, password=PASSWORD, meaning="reject",
                          reason="no fairness review")
    request.refresh_from_db()
    # then
    assert request.status == "rejected"
    assert request.decision_reason == "no fairness review"
    assert actions()[-1] == AuditAction.APPROVAL_REJECTED


def test_reject_without_reason_is_refused_and_writes_nothing():
    # given
    world = World("limited")
    request = open_deployment(world)
    before = actions()
    # when
    with pytest.raises(ApplicationError) as caught:
        approval_request_sign(actor=world.compliance, request=request, password=PASSWORD, meaning="reject")
    # then
    assert caught.value.code == "reason_required"
    assert Signature.objects.count() == 0 and actions() == before


def test_unacceptable_tier_is_never_approvable():
    # given
    world = World("unacceptable")
    # when
    with pytest.raises(ApplicationError) as caught:
        open_deployment(world)
    # then
    assert (caught.value.code, caught.value.status) == ("not_approvable", 409)
    assert ApprovalRequest.objects.count() == 0


def test_environment_outside_the_policy_is_refused():
    world = World("limited")
    with pytest.raises(ApplicationError) as caught:
        open_deployment(world, environment="dev")
    assert caught.value.code == "environment_not_covered"


def test_second_pending_request_for_the_same_target_is_refused():
    world = World("limited")
    first = open_deployment(world)
    with pytest.raises(ApplicationError) as caught:
        open_deployment(world)
    assert (caught.value.code, caught.value.status) == ("approval_request_pending", 409)
    assert str(first.pk) in caught.value.message


def test_withdraw_by_requester():
    # given
    world = World("limited")
    request = open_deployment(world)
    # when
    approval_request_withdraw(actor=world.engineer, request=request, reason="wrong environment")
    request.refresh_from_db()
    # then
    assert request.status == "withdrawn"
    assert actions()[-1] == AuditAction.APPROVAL_WITHDRAWN


def test_withdraw_by_someone_else_is_forbidden():
    world = World("limited")
    request = open_deployment(world)
    with pytest.raises(ApplicationError) as caught:
        approval_request_withdraw(actor=world.scientist, request=request)
    assert (caught.value.code, caught.value.status) == ("permission_denied", 403)


def test_expire_after_max_age():
    # given
    world = World("limited")
    request = open_deployment(world)
    later = timezone.now() + dt.timedelta(days=31)
    # when
    count = approval_requests_expire_due(now=later)
    request.refresh_from_db()
    # then
    assert count == 1 and request.status == "expired"
    assert actions()[-1] == AuditAction.APPROVAL_EXPIRED


def test_expire_before_max_age_is_refused():
    world = World("limited")
    request = open_deployment(world)
    with pytest.raises(ApplicationError) as caught:
        approval_request_expire(request=request)
    assert caught.value.code == "not_expired"


def _to(world: World, status: str) -> ApprovalRequest:
    request = open_deployment(world)
    if status == "approved":
        approve_all(world, request)
    elif status == "rejected":
        approval_request_sign(actor=world.compliance, request=request, password=PASSWORD, meaning="reject",
                              reason="no")
    elif status == "withdrawn":
        approval_request_withdraw(actor=world.engineer, request=request)
    elif status == "expired":
        approval_request_expire(request=request, now=timezone.now() + dt.timedelta(days=31))
    request.refresh_from_db()
    assert request.status == status
    return request


@pytest.mark.parametrize("status", ["approved", "rejected", "withdrawn", "expired"])
@pytest.mark.parametrize("move", ["approve", "reject", "reviewed", "withdraw", "expire"])
def test_every_illegal_transition_is_409(status, move):
    # given
    world = World("limited")
    request = _to(world, status)
    outsider = person("late-validator", "model_validator")
    before = (actions(), Signature.objects.count())
    # when
    with pytest.raises(ApplicationError) as caught:
        if move in ("approve", "reject", "reviewed"):
            approval_request_sign(actor=outsider, request=request, password=PASSWORD, meaning=move, reason="r")
        elif move == "withdraw":
            approval_request_withdraw(actor=world.engineer, request=request)
        else:
            approval_request_expire(request=request, now=timezone.now() + dt.timedelta(days=400))
    # then
    assert (caught.value.code, caught.value.status) == ("invalid_transition", 409)
    request.refresh_from_db()
    assert request.status == status
    assert (actions(), Signature.objects.count()) == before
