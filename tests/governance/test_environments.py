"""Environments are declared (ATTEST_ENVIRONMENTS): a name outside the list is refused everywhere.

Before this rule the gate answered `allowed` for `Production` or `prodution` on a high-risk model,
because no policy covers a misspelt environment and an uncovered environment needs no approval.
"""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from governance.gate import CHECK_CODES, gate_evaluate
from governance.models import ApprovalPolicy, ApprovalRequest, AuditEvent, Deployment, GateDecision
from governance.services.approvals import approval_request_open
from governance.services.deployments import deployment_record
from governance.services.policies import policy_update
from mlops_site.common.errors import ApplicationError
from monitoring.models import DriftMonitor
from monitoring.services.monitors import drift_monitor_create
from tests.governance.workflow_factories import World, token_for

pytestmark = pytest.mark.django_db
NEAR_MISSES = ["Production", "PRODUCTION", "prodution", "prod", "live"]


def gate_ask(world: World, environment: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.ci)}")
    return client.post("/api/v1/gate/", {"model": world.model.name, "version": 1, "environment": environment,
                                         "artifact_sha256": world.v1.artifact_sha256}, format="json")


@pytest.mark.parametrize("environment", NEAR_MISSES)
def test_the_gate_refuses_a_misspelt_environment_and_writes_nothing(environment):
    # given: a high-risk model with no approval at all
    world = World("high")
    events = AuditEvent.objects.count()
    # when
    response = gate_ask(world, environment)
    # then: a 400 naming the known environments, no decision stored, no event
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "environment_unknown"
    assert "dev, shadow, staging, production" in error["message"]
    assert list(error["fields"]) == ["environment"]
    assert GateDecision.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_an_uncovered_environment_says_which_checks_it_did_not_make():
    # given
    world = World("high")
    # when: dev is known but outside the high-risk policy
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="dev",
                             artifact_sha256=world.v1.artifact_sha256)
    # then: the policy checks pass as "not checked", never as measured; the others are made
    checks = {c["code"]: c for c in decision.checks}
    assert list(checks) == list(CHECK_CODES)
    for code in ("approval_expired", "signer_role_missing", "report_missing", "report_stale",
                 "fairness_threshold_failed", "performance_threshold_failed"):
        assert checks[code]["passed"] and checks[code]["message"].startswith("Not checked:"), code
        assert "does not cover 'dev'" in checks[code]["message"]
    assert checks["artifact_hash_mismatch"]["message"] == "The artifact is the registered one."


@override_settings(ATTEST_ENVIRONMENTS=("dev", "staging", "production", "canary"))
def test_a_declared_environment_is_accepted():
    world = World("limited")
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="canary",
                             artifact_sha256=world.v1.artifact_sha256)
    assert decision.environment == "canary"


def test_a_deployment_to_an_unknown_environment_is_refused():
    world = World("minimal")
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="dev",
                             artifact_sha256=world.v1.artifact_sha256)
    with pytest.raises(ApplicationError) as caught:
        deployment_record(actor=world.ci, model_version=world.v1, environment="Dev", decision_id=decision.decision_id)
    assert (caught.value.code, caught.value.status) == ("environment_unknown", 400)
    assert Deployment.objects.count() == 0


def test_an_approval_request_for_an_unknown_environment_is_refused():
    world = World("limited")
    with pytest.raises(ApplicationError) as caught:
        approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                              environment="Production")
    assert caught.value.code == "environment_unknown"
    assert ApprovalRequest.objects.count() == 0


def test_a_policy_cannot_cover_an_unknown_environment():
    world = World("limited")
    versions = ApprovalPolicy.objects.filter(risk_tier="limited").count()
    with pytest.raises(ApplicationError) as caught:
        policy_update(actor=world.compliance, risk_tier="limited", reason="add prod",
                      changes={"environments": ["staging", "production", "Prod"]})
    assert caught.value.code == "environment_unknown"
    assert list(caught.value.fields) == ["environments"]
    assert ApprovalPolicy.objects.filter(risk_tier="limited").count() == versions


def test_a_monitor_for_an_unknown_environment_is_refused():
    world = World("limited")
    with pytest.raises(ApplicationError) as caught:
        drift_monitor_create(actor=world.engineer, model_version=world.v1, environment="prodution")
    assert caught.value.code == "environment_unknown"
    assert DriftMonitor.objects.count() == 0
