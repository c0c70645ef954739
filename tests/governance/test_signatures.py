"""Electronic signatures: re-authentication and the lock, separation of duties, manifestation, binding."""

import pytest

from governance.audit import AuditAction
from governance.models import ApprovalRequest, AuditEvent, AuditQueueEntry, Signature, SigningCredentialState
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.signatures import SIGNING_FAILURE_LIMIT, signature_verify, signing_unlock
from mlops_site.common.errors import ApplicationError
from tests.governance import tamper
from tests.governance.workflow_factories import PASSWORD, World, person, version

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditQueueEntry.objects.order_by("pk").values_list("action", flat=True))


def open_request(world: World, actor=None, model_version=None) -> ApprovalRequest:
    return approval_request_open(actor=actor or world.engineer, kind="deployment",
                                 model_version=model_version or world.v1, environment="production")


def refused(**kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        approval_request_sign(**kwargs)
    return caught.value


# --- manifestation ---------------------------------------------------------------------------------

def test_signature_shows_printed_name_role_meaning_utc_time_and_record_hash():
    # given
    world = World("limited")
    request = open_request(world)
    # when
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD,
                                      meaning="approve", reason="validated on holdout")
    # then
    assert signature.printed_name == "Val Tester"
    assert (signature.role, signature.meaning, signature.reason) == ("model_validator", "approve",
                                                                     "validated on holdout")
    assert signature.signed_at.utcoffset().total_seconds() == 0
    assert signature.record_sha256 == request.evidence_sha256
    assert signature_verify(signature) is True


def test_signatures_are_never_edited_or_deleted():
    world = World("limited")
    signature = approval_request_sign(actor=world.validator, request=open_request(world), password=PASSWORD,
                                      meaning="approve")
    signature.reason = "changed my mind"
    with pytest.raises(PermissionError):
        signature.save()
    with pytest.raises(PermissionError):
        signature.delete()


# --- re-authentication -----------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["", None, "wrong-password"])
def test_missing_or_wrong_password_is_refused_and_logged(password):
    # given
    world = World("limited")
    request = open_request(world)
    # when
    error = refused(actor=world.validator, request=request, password=password, meaning="approve")
    # then
    assert (error.code, error.status) == ("reauthentication_failed", 403)
    assert Signature.objects.count() == 0
    assert actions()[-1] == AuditAction.SIGNING_REAUTH_FAILED
    assert SigningCredentialState.objects.get(user=world.validator).failed_attempts == 1


def test_another_users_password_does_not_sign():
    world = World("limited")
    request = open_request(world)
    error = refused(actor=world.validator, request=request, password="someone-elses", meaning="approve")
    assert error.code == "reauthentication_failed"


def test_five_failures_lock_signing_and_the_lock_is_logged():
    # given
    world = World("limited")
    request = open_request(world)
    codes = []
    # when
    for _ in range(SIGNING_FAILURE_LIMIT):
        codes.append(refused(actor=world.validator, request=request, password="nope", meaning="approve").code)
    after_lock = refused(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # then
    assert codes == ["reauthentication_failed"] * 4 + ["signing_locked"]
    assert (after_lock.code, after_lock.status) == ("signing_locked", 403)
    assert actions().count(AuditAction.SIGNING_REAUTH_FAILED) == 5
    assert actions().count(AuditAction.SIGNING_LOCKED) == 1
    assert Signature.objects.count() == 0


def test_unlock_by_compliance_officer_restores_signing():
    # given
    world = World("limited")
    request = open_request(world)
    for _ in range(SIGNING_FAILURE_LIMIT):
        refused(actor=world.validator, request=request, password="nope", meaning="approve")
    # when
    signing_unlock(actor=world.compliance, user=world.validator, reason="identity confirmed by phone")
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # then
    assert signature.pk is not None
    assert actions().count(AuditAction.SIGNING_UNLOCKED) == 1


def test_unlock_by_non_officer_is_forbidden():
    world = World("limited")
    with pytest.raises(ApplicationError) as caught:
        signing_unlock(actor=world.engineer, user=world.validator, reason="x")
    assert caught.value.code == "permission_denied"


def test_a_good_signature_resets_the_failure_count():
    # given
    world = World("high")
    request = open_request(world)
    for _ in range(SIGNING_FAILURE_LIMIT - 1):
        refused(actor=world.validator, request=request, password="nope", meaning="approve")
    # when
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="reviewed")
    # then
    assert SigningCredentialState.objects.get(user=world.validator).failed_attempts == 0


def test_failure_is_committed_although_the_request_is_refused(transactional_db):
    # given: no surrounding test transaction, as in a real request
    world = World("limited", prefix="tx")
    request = open_request(world)
    # when
    refused(actor=world.validator, request=request, password="nope", meaning="approve")
    # then: the failure event is chained in the log, and the counter was kept
    assert AuditEvent.objects.filter(action=AuditAction.SIGNING_REAUTH_FAILED).count() == 1
    assert SigningCredentialState.objects.get(user=world.validator).failed_attempts == 1


# --- who may sign ----------------------------------------------------------------------------------

def test_ci_service_never_signs_even_with_its_password():
    world = World("minimal")
    world.ci.groups.add(*world.signing_engineer.groups.all())  # CI holding ml_engineer too changes nothing
    error = refused(actor=world.ci, request=open_request(world), password=PASSWORD, meaning="approve")
    assert (error.code, error.status) == ("signature_not_allowed", 403)
    assert not SigningCredentialState.objects.exists()


@pytest.mark.parametrize("who", ["auditor", "scientist"])
def test_roles_that_never_sign(who):
    world = World("limited")
    error = refused(actor=getattr(world, who), request=open_request(world), password=PASSWORD, meaning="approve")
    assert (error.code, error.status) == ("signature_not_allowed", 403)


def test_requester_cannot_sign():
    # given: a compliance officer opens the request, then tries to approve it
    world = World("limited")
    request = open_request(world, actor=world.compliance)
    # when
    error = refused(actor=world.compliance, request=request, password=PASSWORD, meaning="approve")
    # then
    assert (error.code, error.status) == ("separation_of_duties", 403)
    assert "requester" in error.message
    assert Signature.objects.count() == 0


def test_an_author_of_the_version_cannot_sign():
    # given
    world = World("limited")
    v2 = version(owner=world.engineer, model_=world.model, authors=[world.validator])
    request = open_request(world, model_version=v2)
    # when
    error = refused(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # then
    assert (error.code, error.status) == ("separation_of_duties", 403)
    assert "author" in error.message


def test_the_registrant_of_the_version_cannot_sign():
    # given: minimal tier needs an ml_engineer; the engineer who registered v1 is one
    world = World("minimal")
    request = open_request(world, actor=world.scientist)
    # when
    error = refused(actor=world.engineer, request=request, password=PASSWORD, meaning="approve")
    # then
    assert error.code == "separation_of_duties"


def test_one_person_fills_one_required_role_once():
    # given: one person holds both roles the limited policy needs
    world = World("limited")
    both = person("both", "model_validator", "compliance_officer")
    request = open_request(world)
    approval_request_sign(actor=both, request=request, password=PASSWORD, meaning="approve")
    # when
    error = refused(actor=both, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    # then
    assert (error.code, error.status) == ("separation_of_duties", 403)
    assert request.status == "pending"
    assert Signature.objects.count() == 1


def test_signer_must_hold_the_role_they_sign_as():
    world = World("high")
    error = refused(actor=world.validator, request=open_request(world), password=PASSWORD, meaning="approve",
                    role="risk_officer")
    assert (error.code, error.status) == ("signer_role_missing", 403)


def test_signer_without_a_required_role_is_refused():
    # given: the minimal policy needs an ml_engineer, not a validator
    world = World("minimal")
    error = refused(actor=world.validator, request=open_request(world), password=PASSWORD, meaning="approve")
    assert (error.code, error.status) == ("signer_role_missing", 403)


def test_a_filled_role_takes_no_more_approvals():
    # given
    world = World("limited")
    second_validator = person("val2", "model_validator")
    request = open_request(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # when
    error = refused(actor=second_validator, request=request, password=PASSWORD, meaning="approve")
    # then
    assert (error.code, error.status) == ("role_already_filled", 409)


# --- binding ---------------------------------------------------------------------------------------

def test_signature_moved_to_another_request_fails_verification():
    # given
    world = World("limited")
    first = open_request(world)
    v2 = version(owner=world.engineer, model_=world.model)
    second = open_request(world, model_version=v2)
    signature = approval_request_sign(actor=world.validator, request=first, password=PASSWORD, meaning="approve")
    # when: moved behind the ORM's back (a privileged UPDATE, past the append-only triggers)
    with tamper.triggers_bypassed():
        Signature.objects.filter(pk=signature.pk).update(request=second)
    signature.refresh_from_db()
    # then
    assert signature_verify(signature) is False


def test_signature_kept_after_the_record_changed_fails_verification():
    # given
    world = World("limited")
    request = open_request(world)
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    evidence = dict(request.evidence, artifact_sha256="f" * 64)
    # when
    ApprovalRequest.objects.filter(pk=request.pk).update(evidence=evidence)
    signature.refresh_from_db()
    # then
    assert signature_verify(signature) is False


def test_signature_with_a_record_hash_of_another_request_fails_verification():
    world = World("limited")
    request = open_request(world)
    other = open_request(world, model_version=version(owner=world.engineer, model_=world.model))
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    with tamper.triggers_bypassed():
        Signature.objects.filter(pk=signature.pk).update(record_sha256=other.evidence_sha256)
    signature.refresh_from_db()
    assert signature_verify(signature) is False


# --- evidence moved since opening (21 CFR 11.70) ---------------------------------------------------

def test_signing_after_a_new_policy_version_is_409_evidence_stale_and_writes_nothing():
    # given: the limited tier's policy gets a new version after the request was opened
    from governance.services.policies import policy_update

    world = World("limited")
    request = open_request(world)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 10},
                  reason="tighter")
    before = actions()
    # when
    error = refused(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # then
    assert (error.code, error.status) == ("evidence_stale", 409)
    assert error.message == (
        f"The evidence of request #{request.pk} changed since it was opened: it was opened under the limited "
        "policy v1 and the limited policy v2 is in force now. A signature must bind the current record "
        "(21 CFR 11.70), so this request can no longer be signed; the requester can withdraw it and open a new one.")
    assert Signature.objects.count() == 0
    assert actions() == before
    assert AuditAction.APPROVAL_SIGNED not in actions()
    request.refresh_from_db()
    assert request.status == "pending"


def test_signing_after_the_artifact_moved_names_both_hashes():
    # given: the version's artifact replaced behind the registry's back
    from registry.models import ModelVersion

    world = World("limited")
    request = open_request(world)
    old = world.v1.artifact_sha256
    ModelVersion.objects.filter(pk=world.v1.pk).update(artifact_sha256="e" * 64)
    # when
    error = refused(actor=world.validator, request=request, password=PASSWORD, meaning="reject", reason="moved")
    # then
    assert error.code == "evidence_stale"
    assert error.fields == {"evidence": [f"the artifact sha256 was {old} and is now {'e' * 64}"]}
    assert Signature.objects.count() == 0


def test_wrong_password_on_a_stale_request_is_still_reauthentication_failed():
    # given: re-authentication comes first, and its failure is still counted
    from governance.services.policies import policy_update

    world = World("limited")
    request = open_request(world)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 10},
                  reason="tighter")
    # when
    error = refused(actor=world.validator, request=request, password="wrong", meaning="approve")
    # then
    assert error.code == "reauthentication_failed"
    assert actions()[-1] == AuditAction.SIGNING_REAUTH_FAILED


def test_the_requester_of_a_stale_request_is_still_separation_of_duties():
    # given
    from governance.services.policies import policy_update

    world = World("limited")
    request = open_request(world, actor=world.compliance)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 10},
                  reason="tighter")
    # when
    error = refused(actor=world.compliance, request=request, password=PASSWORD, meaning="approve")
    # then
    assert error.code == "separation_of_duties"


def test_a_stale_request_withdrawn_and_reopened_can_be_signed():
    # given
    from governance.services.approvals import approval_request_withdraw
    from governance.services.policies import policy_update

    world = World("limited")
    stale = open_request(world)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_approval_age_days": 10},
                  reason="tighter")
    approval_request_withdraw(actor=world.engineer, request=stale, reason="evidence moved")
    fresh = open_request(world)
    # when
    signature = approval_request_sign(actor=world.validator, request=fresh, password=PASSWORD, meaning="approve")
    # then
    assert signature.record_sha256 == fresh.evidence_sha256
    assert fresh.policy.version == 2
