"""Reads the governance admin shows, as selectors (STYLE.md: reads in selectors.py): a policy
version's previous version and its rule-by-rule diff, and the roles of a user that sign."""

import pytest

from governance import selectors
from governance.models import ApprovalPolicy
from governance.services.policies import policy_update
from tests.governance.workflow_factories import World, person

pytestmark = pytest.mark.django_db


def test_version_1_has_no_previous_version_and_every_rule_is_new():
    v1 = ApprovalPolicy.objects.get(risk_tier="high", version=1)
    assert selectors.policy_previous(policy=v1) is None
    rows = selectors.policy_diff(old=None, new=v1)
    assert [row["rule"] for row in rows] == ["approvable", "environments", "required_roles", "required_reports",
                                             "thresholds", "max_report_age_days", "max_approval_age_days"]
    assert all(row["before"] == "—" for row in rows)


def test_the_next_version_differs_only_by_the_rules_changed():
    # given
    world = World(tier="high")
    v1 = ApprovalPolicy.objects.get(risk_tier="high", version=1)
    v2 = policy_update(actor=world.compliance, risk_tier="high", changes={"max_approval_age_days": 7},
                       reason="tighter")
    v3 = policy_update(actor=world.compliance, risk_tier="high", changes={"max_approval_age_days": 5},
                       reason="tighter still")
    # when
    previous = selectors.policy_previous(policy=v3)
    rows = selectors.policy_diff(old=previous, new=v3)
    # then: the version just before, not the first one; one rule changed
    assert previous.pk == v2.pk
    assert rows == [{"rule": "max_approval_age_days", "before": 7, "after": 5}]
    assert selectors.policy_diff(old=v1, new=v1) == []


def test_the_signing_roles_leave_out_the_auditor_and_the_ci_identity():
    assert selectors.approval_signing_roles(user=person("val", "model_validator", "auditor")) == {"model_validator"}
    assert selectors.approval_signing_roles(user=person("bot", "ci_service")) == set()
    assert selectors.approval_signing_roles(user=person("co", "compliance_officer", "risk_officer")) == {
        "compliance_officer", "risk_officer"}
