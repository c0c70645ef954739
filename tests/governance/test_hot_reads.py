"""governance.hot_reads: each of the gate's SQL reads answers what the equivalent ORM query answers.

Same rows in the same order, every column equal (and of the same type), and the related object the
callers use already loaded, so the gate and the selectors that share these reads cannot drift from
what the models say.
"""

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import models
from django.utils import timezone

from governance import hot_reads
from governance.models import ApiToken, ApprovalPolicy, ApprovalRequest, Evaluation, Report, Signature
from governance.services.approvals import approval_request_open, approval_request_sign, approval_request_withdraw
from governance.services.policies import policy_update
from governance.services.tokens import api_token_issue
from registry import services as registry
from registry.models import ModelVersion
from tests.governance.workflow_factories import PASSWORD, World, dataset_version, person, sha, team

pytestmark = pytest.mark.django_db
Status = ApprovalRequest.Status


def values(instance: models.Model) -> dict[str, Any]:
    """Every concrete column of an instance, with its Python type."""
    return {f.attname: (type(getattr(instance, f.attname)), getattr(instance, f.attname))
            for f in type(instance)._meta.concrete_fields}


def assert_same_rows(ours: list, theirs: list) -> None:
    assert [o.pk for o in ours] == [t.pk for t in theirs]
    for o, t in zip(ours, theirs, strict=True):
        assert values(o) == values(t)


def approved(world: World, mv: ModelVersion | None = None, environment: str = "production") -> ApprovalRequest:
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=mv or world.v1,
                                    environment=environment)
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    return request


# --- token_with_roles -------------------------------------------------------------------------------

def _token(user: User) -> ApiToken:
    token, _ = api_token_issue(actor=None, user=user, scopes=None)
    return token


def _assert_token(found: tuple[ApiToken, set[str]] | None, user: User, django_assert_num_queries) -> set[str]:
    assert found is not None
    token, roles = found
    expected = ApiToken.objects.select_related("user").get(key_sha256=token.key_sha256)
    assert values(token) == values(expected)
    with django_assert_num_queries(0):  # the user came with the token
        assert values(token.user) == values(expected.user)
    assert token.user.pk == user.pk
    assert roles == set(user.groups.values_list("name", flat=True))
    return roles


def test_token_of_a_user_without_roles_has_an_empty_role_set(django_assert_num_queries):
    user = person("no-roles")
    token = _token(user)
    roles = _assert_token(hot_reads.token_with_roles(token.key_sha256), user, django_assert_num_queries)
    assert roles == set()


def test_token_of_a_user_with_two_roles_is_one_token_with_both(django_assert_num_queries):
    # given: two roles, so the join yields two rows for the one token
    user = person("two-roles", "ml_engineer", "data_scientist")
    token = _token(user)
    _token(person("other", "auditor"))
    # when
    roles = _assert_token(hot_reads.token_with_roles(token.key_sha256), user, django_assert_num_queries)
    # then
    assert roles == {"ml_engineer", "data_scientist"}


def test_unknown_token_key_is_none():
    _token(person("someone", "ml_engineer"))
    assert hot_reads.token_with_roles(sha("no such key")) is None


# --- version_with_membership ------------------------------------------------------------------------

def test_version_with_its_model_and_the_callers_membership(django_assert_num_queries):
    # given: a member, and a user of another team
    world = World("limited")
    v2 = registry.model_version_register(actor=world.engineer, model=world.model,
                                         artifact_uri=f"https://models.example.com/{sha('v2')}.skops",
                                         declared_sha256=sha("v2"), hyperparameters={"C": 0.5, "penalty": "l2"})
    stranger = person("stranger", "ml_engineer")
    team("elsewhere", stranger)
    expected = ModelVersion.objects.select_related("model").get(model__name=world.model.name, version=2)
    # when
    mine = hot_reads.version_with_membership(model_name=world.model.name, version=2, user_id=world.engineer.pk)
    theirs = hot_reads.version_with_membership(model_name=world.model.name, version=2, user_id=stranger.pk)
    # then
    assert mine is not None and theirs is not None
    (version, member), (other_version, other_member) = mine, theirs
    assert (member, other_member) == (True, False)
    assert version.pk == other_version.pk == v2.pk
    assert values(version) == values(expected)
    assert version.hyperparameters == {"C": 0.5, "penalty": "l2"}
    with django_assert_num_queries(0):
        assert values(version.model) == values(expected.model)


def test_unknown_model_or_version_is_none():
    world = World("limited")
    assert hot_reads.version_with_membership(model_name="nope", version=1, user_id=world.engineer.pk) is None
    assert hot_reads.version_with_membership(model_name=world.model.name, version=9,
                                             user_id=world.engineer.pk) is None


# --- policy_in_force --------------------------------------------------------------------------------

def test_policy_in_force_is_the_tiers_highest_version():
    # given: two new versions of the limited tier
    world = World("limited")
    policy_update(actor=world.compliance, risk_tier="limited", changes={"thresholds": {"max_dpd": 0.2}},
                  reason="a threshold")
    policy_update(actor=world.compliance, risk_tier="limited", changes={"environments": ["production", "dev"]},
                  reason="qa too")
    # when / then: every tier, as the ORM orders them
    for tier in ("minimal", "limited", "high", "unacceptable"):
        expected = ApprovalPolicy.objects.filter(risk_tier=tier).order_by("-version").first()
        found = hot_reads.policy_in_force(tier)
        assert found is not None and expected is not None
        assert values(found) == values(expected)
    assert hot_reads.policy_in_force("limited").environments == ["production", "dev"]
    assert hot_reads.policy_in_force("limited").version == 3


def test_policy_of_an_unknown_tier_is_none():
    assert hot_reads.policy_in_force("galactic") is None


# --- deployment_requests ----------------------------------------------------------------------------

def _orm_requests(mv: ModelVersion, environment: str) -> list[ApprovalRequest]:
    return list(ApprovalRequest.objects.select_related("policy").filter(
        kind="deployment", model_version=mv, environment=environment,
        status__in=(Status.APPROVED, Status.PENDING)).order_by("-created_at", "-id")[:20])


def test_requests_are_the_newest_twenty_approved_or_pending_with_their_policy(django_assert_num_queries):
    # given: an approved request, a withdrawn one, one for another environment and another version,
    # then copies of the approved one, several opened at the same instant (the order falls to -id)
    world = World("limited")
    first = approved(world)
    withdrawn = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                      environment="production")
    approval_request_withdraw(actor=world.engineer, request=withdrawn, reason="superseded")
    approved(world, environment="staging")
    v2 = registry.model_version_register(actor=world.engineer, model=world.model,
                                         artifact_uri=f"https://models.example.com/{sha('v2')}.skops",
                                         declared_sha256=sha("v2"))
    approved(world, mv=v2)
    pending = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    copied = {f.attname: getattr(first, f.attname) for f in ApprovalRequest._meta.concrete_fields
              if not f.primary_key}
    same_instant = timezone.now() + dt.timedelta(minutes=5)
    for n in range(22):
        status = Status.PENDING if n % 3 else Status.APPROVED
        copy = ApprovalRequest.objects.create(**{**copied, "status": status})
        at = same_instant if n < 12 else same_instant + dt.timedelta(seconds=n)
        ApprovalRequest.objects.filter(pk=copy.pk).update(created_at=at)
    expected = _orm_requests(world.v1, "production")
    assert len(expected) == 20
    # when
    found = hot_reads.deployment_requests(model_version_id=world.v1.pk, environment="production",
                                          statuses=(Status.APPROVED, Status.PENDING))
    # then
    assert_same_rows(found, expected)
    assert withdrawn.pk not in [r.pk for r in found]
    assert first.pk not in [r.pk for r in found] and pending.pk not in [r.pk for r in found]  # beyond the 20
    assert all(isinstance(r.evidence, dict) for r in found)
    with django_assert_num_queries(0):
        for ours, theirs in zip(found, expected, strict=True):
            assert values(ours.policy) == values(theirs.policy)


def test_requests_of_a_version_without_any_are_empty_and_a_single_one_is_found():
    world = World("limited")
    assert hot_reads.deployment_requests(model_version_id=world.v1.pk, environment="production",
                                         statuses=(Status.APPROVED, Status.PENDING)) == []
    request = approved(world)
    found = hot_reads.deployment_requests(model_version_id=world.v1.pk, environment="production",
                                          statuses=(Status.APPROVED, Status.PENDING))
    assert_same_rows(found, _orm_requests(world.v1, "production"))
    assert [r.pk for r in found] == [request.pk]
    assert found[0].decided_at is not None and found[0].status == Status.APPROVED


# --- signatures_with_roles --------------------------------------------------------------------------

STANDING = (Status.APPROVED.value, Status.PENDING.value)


def _signatures(mv: ModelVersion, environment: str = "production") -> list[Signature]:
    return hot_reads.signatures_with_roles(model_version_id=mv.pk, environment=environment, statuses=STANDING)


def test_signatures_in_order_and_whether_each_signer_still_holds_the_role():
    # given: both signers signed, then the compliance officer lost the role
    world = World("limited")
    request = approved(world)
    world.compliance.groups.remove(Group.objects.get(name="compliance_officer"))
    # when
    found = _signatures(world.v1)
    # then
    expected = list(Signature.objects.filter(request=request))  # the model's order: signed_at, id
    assert_same_rows(found, expected)
    assert {s.signer_id: s.signer_holds_role for s in found} == {world.validator.pk: True,
                                                                 world.compliance.pk: False}
    assert [s.role for s in found] == ["model_validator", "compliance_officer"]
    assert _signatures(world.v1, "staging") == []


def test_signatures_of_every_standing_request_of_the_version_and_environment_and_no_other():
    # given: for v1 to production an approved request, a withdrawn one and a pending one, each
    # signed; and an approved request for v1 to staging
    world = World("limited")
    first = approved(world)
    withdrawn = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                      environment="production")
    approval_request_sign(actor=world.validator, request=withdrawn, password=PASSWORD, meaning="reviewed")
    approval_request_withdraw(actor=world.engineer, request=withdrawn, reason="superseded")
    pending = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    approval_request_sign(actor=world.validator, request=pending, password=PASSWORD, meaning="approve")
    approved(world, environment="staging")
    # when
    found = _signatures(world.v1)
    # then: the standing requests' signatures, by request, each request's as signed (the ORM's order)
    expected = list(Signature.objects.filter(request__in=[first, pending]).order_by("request_id", "signed_at", "id"))
    assert_same_rows(found, expected)
    assert {s.request_id for s in found} == {first.pk, pending.pk}


# --- reports_of_version -----------------------------------------------------------------------------

def _report(world: World, mv: ModelVersion, kind: str, created_at: dt.datetime) -> Report:
    evaluation = Evaluation.objects.create(model_version=mv, dataset_version=world.data, sensitive_features=["age"],
                                           target_column="approved", status=Evaluation.Status.SUCCEEDED, progress=100)
    return Report.objects.create(kind=kind, evaluation=evaluation, model_version=mv,
                                 results={"kind": kind, "groups": [{"name": "a", "rate": 0.5}]},
                                 sha256=sha(f"{kind}{created_at}"), artifact_sha256=mv.artifact_sha256,
                                 dataset_sha256=world.data.sha256, library_versions={"fairlearn": "0.10"},
                                 created_at=created_at)


def test_reports_newest_first_ties_by_id_and_only_the_versions():
    # given: reports created out of order, two at the same instant, and one of another version
    world = World("limited")
    v2 = registry.model_version_register(actor=world.engineer, model=world.model,
                                         artifact_uri=f"https://models.example.com/{sha('v2')}.skops",
                                         declared_sha256=sha("v2"))
    now = timezone.now()
    middle = _report(world, world.v1, "fairness", now - dt.timedelta(days=1))
    tied_a = _report(world, world.v1, "explainability", now)
    oldest = _report(world, world.v1, "fairness", now - dt.timedelta(days=3))
    tied_b = _report(world, world.v1, "fairness", now)
    _report(world, v2, "fairness", now + dt.timedelta(days=1))
    # when
    found = hot_reads.reports_of_version(world.v1.pk)
    # then
    assert_same_rows(found, list(Report.objects.filter(model_version=world.v1)))  # -created_at, -id
    assert [r.pk for r in found] == [tied_b.pk, tied_a.pk, middle.pk, oldest.pk]
    assert isinstance(found[0].results, dict) and timezone.is_aware(found[0].created_at)
    assert hot_reads.reports_of_version(v2.pk + 1000) == []


# --- datasets_of_version ----------------------------------------------------------------------------

def test_datasets_are_the_training_and_the_evaluation_sets():
    # given: a version trained on two dataset versions and evaluated on one of them and a third
    world = World("limited")
    second = dataset_version(owner=world.engineer, team_=world.team, name="second")
    holdout = dataset_version(owner=world.engineer, team_=world.team, name="holdout", rows="40,1.0,1\n")
    mv = registry.model_version_register(actor=world.engineer, model=world.model,
                                         artifact_uri=f"https://models.example.com/{sha('v2')}.skops",
                                         declared_sha256=sha("v2"), training_datasets=[world.data, second],
                                         evaluation_datasets=[holdout, second])
    # when
    found = hot_reads.datasets_of_version(mv.pk)
    # then
    expected = [(use, dv.pk, dv.sha256, dv.version, dv.dataset.name)
                for use, relation in (("training", mv.training_datasets), ("evaluation", mv.evaluation_datasets))
                for dv in relation.select_related("dataset")]
    assert len(found) == 4
    assert sorted(found) == sorted(expected)
    assert {(use, name) for use, _, _, _, name in found} == {
        ("training", "loans"), ("training", "second"), ("evaluation", "holdout"), ("evaluation", "second")}
    assert all(isinstance(row, tuple) and len(row) == 5 for row in found)


def test_datasets_of_a_version_trained_on_nothing_are_empty():
    world = World("limited")
    mv = registry.model_version_register(actor=world.engineer, model=world.model,
                                         artifact_uri=f"https://models.example.com/{sha('bare')}.skops",
                                         declared_sha256=sha("bare"))
    assert hot_reads.datasets_of_version(mv.pk) == []
    assert sorted(hot_reads.datasets_of_version(world.v1.pk)) == [
        ("training", world.data.pk, world.data.sha256, world.data.version, "loans")]
