"""Deployments: only on an allowing, fresh, unused gate decision; rollback; what was live when; retraining guard."""

import datetime as dt

import pytest
from django.utils import timezone

from governance.audit import AuditAction
from governance.gate import gate_evaluate
from governance.models import AuditQueueEntry, Deployment, GateDecision
from governance.selectors import deployment_live_at
from governance.services.approvals import (
    approval_request_open,
    approval_request_sign,
    retraining_registration_check,
)
from governance.services.deployments import deployment_record
from governance.services.policies import policy_update
from mlops_site.common.errors import ApplicationError
from tests.governance import tamper
from tests.governance.workflow_factories import PASSWORD, World, person, version

pytestmark = pytest.mark.django_db


def approve(world: World, request):
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    return request


def approved_for(world: World, mv, environment: str = "production"):
    return approve(world, approval_request_open(actor=world.engineer, kind="deployment", model_version=mv,
                                                environment=environment))


def decide(world: World, mv, environment: str = "production") -> GateDecision:
    return gate_evaluate(actor=world.ci, model_name=mv.model.name, version=mv.version, environment=environment,
                         artifact_sha256=mv.artifact_sha256)


def refused(**kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        deployment_record(**kwargs)
    assert not Deployment.objects.filter(decision__decision_id=kwargs["decision_id"]).exists()
    return caught.value


def test_deploy_on_an_allowing_decision():
    # given
    world = World("limited")
    request = approved_for(world, world.v1)
    decision = decide(world, world.v1)
    # when
    deployment = deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                                   decision_id=decision.decision_id)
    # then
    assert (deployment.model, deployment.model_version, deployment.environment) == (world.model, world.v1,
                                                                                    "production")
    assert deployment.artifact_sha256 == world.v1.artifact_sha256
    assert (deployment.decision, deployment.approval_request, deployment.deployed_by) == (decision, request, world.ci)
    assert (deployment.previous, deployment.is_rollback) == (None, False)
    # the deployment also moves the version's status (approved -> deployed)
    assert list(AuditQueueEntry.objects.order_by("-pk").values_list("action", flat=True)[:2]) == [
        AuditAction.MODEL_VERSION_STATUS_CHANGED, AuditAction.DEPLOYMENT_RECORDED]
    world.v1.refresh_from_db()
    assert world.v1.status == "deployed"


def test_denied_decision_cannot_deploy():
    world = World("limited")
    decision = decide(world, world.v1)
    error = refused(actor=world.ci, model_version=world.v1, environment="production",
                    decision_id=decision.decision_id)
    assert (error.code, error.status) == ("gate_decision_invalid", 409)


def test_decision_for_another_environment_or_version_cannot_deploy():
    world = World("limited")
    approved_for(world, world.v1, environment="staging")
    decision = decide(world, world.v1, environment="staging")
    v2 = version(owner=world.engineer, model_=world.model)
    assert refused(actor=world.ci, model_version=world.v1, environment="production",
                   decision_id=decision.decision_id).code == "gate_decision_invalid"
    assert refused(actor=world.ci, model_version=v2, environment="staging",
                   decision_id=decision.decision_id).code == "gate_decision_invalid"


def test_unknown_decision_cannot_deploy():
    world = World("limited")
    error = refused(actor=world.ci, model_version=world.v1, environment="production",
                    decision_id="00000000-0000-0000-0000-000000000000")
    assert error.code == "gate_decision_invalid"


def test_a_decision_deploys_once():
    world = World("limited")
    approved_for(world, world.v1)
    decision = decide(world, world.v1)
    deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                      decision_id=decision.decision_id)
    with pytest.raises(ApplicationError) as caught:
        deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                          decision_id=decision.decision_id)
    assert caught.value.code == "gate_decision_used"
    assert Deployment.objects.count() == 1


def test_old_decision_is_stale():
    world = World("limited")
    approved_for(world, world.v1)
    decision = decide(world, world.v1)
    with tamper.triggers_bypassed():  # backdated: the service never edits a decision
        GateDecision.objects.filter(pk=decision.pk).update(evaluated_at=timezone.now() - dt.timedelta(minutes=16))
    error = refused(actor=world.ci, model_version=world.v1, environment="production",
                    decision_id=decision.decision_id)
    assert error.code == "gate_decision_stale"


def test_evidence_moved_since_the_decision_is_stale():
    # given
    world = World("limited")
    approved_for(world, world.v1)
    decision = decide(world, world.v1)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 10}, reason="x")
    # when
    error = refused(actor=world.ci, model_version=world.v1, environment="production",
                    decision_id=decision.decision_id)
    # then
    assert error.code == "gate_decision_stale"
    assert "approval_missing" in error.message


@pytest.mark.parametrize("who", ["auditor", "validator", "outsider_ci"])
def test_who_may_not_deploy(who):
    world = World("limited")
    approved_for(world, world.v1)
    decision = decide(world, world.v1)
    actor = person("other-ci", "ci_service") if who == "outsider_ci" else getattr(world, who)
    error = refused(actor=actor, model_version=world.v1, environment="production",
                    decision_id=decision.decision_id)
    assert (error.code, error.status) == ("permission_denied", 403)


def test_rollback_deploys_an_earlier_approved_version_and_live_at_answers_history():
    # given
    world = World("limited")
    v2 = version(owner=world.engineer, model_=world.model)
    approved_for(world, world.v1)
    approved_for(world, v2)
    first = deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                              decision_id=decide(world, world.v1).decision_id)
    t1 = timezone.now()
    second = deployment_record(actor=world.ci, model_version=v2, environment="production",
                               decision_id=decide(world, v2).decision_id)
    t2 = timezone.now()
    # when
    rollback = deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                                 decision_id=decide(world, world.v1).decision_id)
    # then
    assert (rollback.is_rollback, rollback.previous) == (True, second)
    assert (second.is_rollback, second.previous) == (False, first)
    assert [d.model_version for d in deployment_live_at(environment="production", at=t1)] == [world.v1]
    assert [d.model_version for d in deployment_live_at(environment="production", at=t2)] == [v2]
    assert [d.model_version for d in deployment_live_at(environment="production")] == [world.v1]
    assert deployment_live_at(environment="staging") == []
    assert deployment_live_at(environment="production", at=first.deployed_at - dt.timedelta(seconds=1)) == []


def test_rollback_needs_its_own_valid_approval():
    # given: v1 was approved, then the policy changed; only v2 is approved under the new one
    world = World("limited")
    v2 = version(owner=world.engineer, model_=world.model)
    approved_for(world, world.v1)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 20}, reason="x")
    approved_for(world, v2)
    deployment_record(actor=world.ci, model_version=v2, environment="production",
                      decision_id=decide(world, v2).decision_id)
    # when
    decision = decide(world, world.v1)
    # then
    assert decision.allowed is False
    assert refused(actor=world.ci, model_version=world.v1, environment="production",
                   decision_id=decision.decision_id).code == "gate_decision_invalid"


def test_retraining_the_live_version_by_ci_needs_approval():
    # given
    world = World("limited")
    approved_for(world, world.v1)
    deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                      decision_id=decide(world, world.v1).decision_id)
    # when
    with pytest.raises(ApplicationError) as caught:
        retraining_registration_check(actor=world.ci, model=world.model, parent=world.v1)
    retraining_registration_check(actor=world.engineer, model=world.model, parent=world.v1)  # people may
    request = approval_request_open(actor=world.engineer, kind="retraining", model=world.model,
                                    reason="quarterly refresh")
    approve(world, request)
    retraining_registration_check(actor=world.ci, model=world.model, parent=world.v1)
    # then
    assert (caught.value.code, caught.value.status) == ("retraining_not_approved", 409)
    assert request.evidence["live_version"] == {"id": world.v1.pk, "version": 1,
                                                "artifact_sha256": world.v1.artifact_sha256}


def test_retraining_request_needs_a_reason():
    world = World("limited")
    with pytest.raises(ApplicationError) as caught:
        approval_request_open(actor=world.engineer, kind="retraining", model=world.model, reason=" ")
    assert caught.value.code == "reason_required"


def test_registry_refuses_a_ci_retrain_of_the_live_version_without_approval():
    # given: v1 is live in production
    world = World("limited")
    approved_for(world, world.v1)
    deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                      decision_id=decide(world, world.v1).decision_id)
    versions_before = world.model.versions.count()
    # when: CI registers a retrain of v1 through the registry's own service
    with pytest.raises(ApplicationError) as caught:
        version(owner=world.ci, model_=world.model, artifact="retrain-1", parent=world.v1)
    # then: governance's guard refused it and nothing was registered
    assert (caught.value.code, caught.value.status) == ("retraining_not_approved", 409)
    assert world.model.versions.count() == versions_before
    # and once a retraining request is approved, the same registration goes through
    request = approval_request_open(actor=world.engineer, kind="retraining", model=world.model, reason="drift")
    approve(world, request)
    retrained = version(owner=world.ci, model_=world.model, artifact="retrain-1", parent=world.v1)
    assert retrained.parent == world.v1


def test_lineage_shows_deployments_downstream_of_the_version():
    from registry.selectors import lineage_graph

    # given
    world = World("limited")
    approved_for(world, world.v1)
    deployment = deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                                   decision_id=decide(world, world.v1).decision_id)
    # when
    graph = lineage_graph(user=world.engineer, node=f"dataset_version:{world.data.pk}")
    # then
    node = next(n for n in graph["nodes"] if n["id"] == f"deployment:{deployment.pk}")
    assert (node["type"], node["environment"], node["sha256"]) == ("deployment", "production",
                                                                   world.v1.artifact_sha256)
    assert {"source": f"model_version:{world.v1.pk}", "target": f"deployment:{deployment.pk}",
            "relation": "deployed_to"} in graph["edges"]
