"""Approval policies: the seeded defaults, versioned edits by compliance officers, requests keep their version."""

import pytest

from governance.audit import AuditAction
from governance.models import ApprovalPolicy, AuditQueueEntry
from governance.permissions import PERMISSIONS, Action, user_can
from governance.selectors import policy_current
from governance.services.approvals import approval_request_open
from governance.services.policies import policy_update
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role
from tests.governance.workflow_factories import World, person

pytestmark = pytest.mark.django_db


def test_defaults_seeded_by_migration():
    # when
    policies = {p.risk_tier: p for p in ApprovalPolicy.objects.all()}
    # then
    assert sorted(policies) == ["high", "limited", "minimal", "unacceptable"]
    high = policies["high"]
    assert high.version == 1 and high.approvable is True
    assert high.required_roles == {"model_validator": 1, "compliance_officer": 1, "risk_officer": 1}
    assert high.environments == ["staging", "production"]
    assert high.required_reports == ["fairness", "explainability"]
    assert high.thresholds == {"demographic_parity_ratio_min": 0.8, "equalized_odds_difference_max": 0.1,
                               "metric": "accuracy", "metric_min": 0.7}
    assert policies["limited"].required_roles == {"model_validator": 1, "compliance_officer": 1}
    assert policies["minimal"].required_roles == {"ml_engineer": 1}
    assert policies["unacceptable"].approvable is False


def test_compliance_officer_edit_creates_a_new_version_and_is_logged():
    # given
    officer = person("officer", "compliance_officer")
    # when
    policy = policy_update(actor=officer, risk_tier="limited",
                           changes={"required_roles": {"model_validator": 2, "compliance_officer": 1}},
                           reason="two validators from Q3")
    # then
    assert (policy.version, policy.created_by, policy.change_reason) == (2, officer, "two validators from Q3")
    assert policy_current(risk_tier="limited") == policy
    assert ApprovalPolicy.objects.get(risk_tier="limited", version=1).required_roles == {
        "model_validator": 1, "compliance_officer": 1}
    entry = AuditQueueEntry.objects.get(action=AuditAction.POLICY_UPDATED)
    assert entry.object_id == str(policy.pk)
    assert '"version":1' in entry.payload_json and '"version":2' in entry.payload_json


def test_requests_keep_the_version_they_were_opened_under():
    # given
    world = World("limited")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 7}, reason="tighter")
    request.refresh_from_db()
    # then
    assert request.policy.version == 1
    assert request.evidence["policy"]["version"] == 1


@pytest.mark.parametrize("who", ["model_validator", "ml_engineer", "auditor", "ci_service", "risk_officer"])
def test_only_compliance_officers_edit(who):
    user = person("someone", who)
    with pytest.raises(ApplicationError) as caught:
        policy_update(actor=user, risk_tier="limited", changes={"max_approval_age_days": 7}, reason="x")
    assert (caught.value.code, caught.value.status) == ("permission_denied", 403)
    assert ApprovalPolicy.objects.filter(risk_tier="limited").count() == 1
    assert not AuditQueueEntry.objects.exists()


def test_unacceptable_tier_cannot_be_made_approvable():
    officer = person("officer", "compliance_officer")
    with pytest.raises(ApplicationError) as caught:
        policy_update(actor=officer, risk_tier="unacceptable", changes={"approvable": True,
                                                                       "required_roles": {"risk_officer": 1}},
                      reason="try")
    assert caught.value.code == "not_approvable"


@pytest.mark.parametrize("changes,field", [
    ({"required_roles": {"ci_service": 1}}, "required_roles"),
    ({"required_roles": {"auditor": 1}}, "required_roles"),
    ({"required_roles": {"model_validator": 0}}, "required_roles"),
    ({"required_reports": ["horoscope"]}, "required_reports"),
    ({"environments": "production"}, "environments"),
    # A minimum with no metric named: the gate once applied it to accuracy, reported or not.
    ({"thresholds": {"metric_min": 0.9}}, "thresholds"),
    ({"thresholds": {"metric": " ", "metric_min": 0.9}}, "thresholds"),
    ({"thresholds": {"demographic_parity_ratio_min": "0.8"}}, "thresholds"),
])
def test_invalid_rules_are_refused(changes, field):
    officer = person("officer", "compliance_officer")
    with pytest.raises(Exception) as caught:
        policy_update(actor=officer, risk_tier="limited", changes=changes, reason="x")
    assert field in caught.value.message_dict
    assert ApprovalPolicy.objects.filter(risk_tier="limited").count() == 1


def test_unchanged_and_unknown_fields_are_refused():
    officer = person("officer", "compliance_officer")
    with pytest.raises(ApplicationError) as same:
        policy_update(actor=officer, risk_tier="minimal", changes={"max_approval_age_days": 30}, reason="x")
    with pytest.raises(ApplicationError) as unknown:
        policy_update(actor=officer, risk_tier="minimal", changes={"version": 9}, reason="x")
    assert (same.value.code, unknown.value.code) == ("policy_unchanged", "validation_error")


def test_permission_matrix_auditor_reads_only_and_ci_never_signs():
    # given
    auditor = person("aud", "auditor")
    ci = person("ci", "ci_service", "ml_engineer")
    # then
    assert user_can(auditor, Action.APPROVAL_READ) and user_can(auditor, Action.AUDIT_READ)
    assert not any(user_can(auditor, a) for a in (Action.APPROVAL_SIGN, Action.POLICY_UPDATE,
                                                   Action.DEPLOYMENT_RECORD, Action.GATE_EVALUATE))
    assert not user_can(ci, Action.APPROVAL_SIGN)
    assert user_can(ci, Action.DEPLOYMENT_RECORD) and user_can(ci, Action.GATE_EVALUATE)
    assert set(PERMISSIONS) == set(Role.values)
