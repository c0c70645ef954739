"""The gate: every check, approvals that follow the evidence, expiry, and a decision that is stored and logged."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from governance.audit import AuditAction
from governance.gate import (
    CHECK_CODES,
    gate_alert_check_register,
    gate_alert_check_unregister,
    gate_checks_compute,
    gate_evaluate,
)
from governance.models import ApprovalRequest, GateDecision, Signature
from governance.selectors import report_provider_set
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.policies import policy_update
from mlops_site.common.errors import ApplicationError
from registry import services as registry
from registry.models import ModelVersion
from tests.governance import tamper
from tests.governance.workflow_factories import PASSWORD, World, dataset_version, logged, version

pytestmark = pytest.mark.django_db


def approved(world: World, model_version: ModelVersion | None = None, environment: str = "production"):
    request = approval_request_open(actor=world.engineer, kind="deployment",
                                    model_version=model_version or world.v1, environment=environment)
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    assert request.status == "approved"
    return request


def ask(world: World, model_version: ModelVersion | None = None, environment: str = "production",
        artifact: str | None = None) -> GateDecision:
    mv = model_version or world.v1
    return gate_evaluate(actor=world.ci, model_name=mv.model.name, version=mv.version, environment=environment,
                         artifact_sha256=artifact or mv.artifact_sha256)


def failed(decision_or_checks) -> dict[str, str]:
    checks = decision_or_checks.checks if isinstance(decision_or_checks, GateDecision) else decision_or_checks
    return {c["code"]: c["message"] for c in checks if not c["passed"]}


@pytest.fixture
def reports():
    """Reports for versions, as the reports issue's provider will list them."""
    from governance import selectors

    store: dict[int, list[dict]] = {}
    installed = selectors._report_provider  # the reports app's provider: put it back afterwards
    report_provider_set(lambda mv: store.get(mv.pk, []))
    yield store
    report_provider_set(installed)


def test_allowed_when_every_check_passes_and_the_decision_is_stored_and_logged():
    # given
    world = World("limited")
    request = approved(world)
    # when
    decision = ask(world)
    # then
    assert decision.allowed is True
    assert [c["code"] for c in decision.checks] == list(CHECK_CODES)
    assert all(c["passed"] for c in decision.checks)
    assert decision.approval_request == request
    assert GateDecision.objects.get(decision_id=decision.decision_id).allowed is True
    [entry] = logged(AuditAction.GATE_EVALUATED)
    assert getattr(entry, "entry_id", entry.pk) == decision.audit_entry.pk
    assert entry.object_id == str(decision.pk)
    assert '"allowed":true' in entry.payload_json and world.v1.artifact_sha256 in entry.payload_json


def test_no_approval_is_denied_with_approval_missing_and_roles():
    # given
    world = World("limited")
    # when
    decision = ask(world)
    # then
    assert decision.allowed is False
    assert sorted(failed(decision)) == ["approval_missing", "signer_role_missing"]
    assert failed(decision)["signer_role_missing"] == (
        "Required approvals missing: model_validator (0/1), compliance_officer (0/1).")
    assert len(logged(AuditAction.GATE_EVALUATED)) == 1


def test_partial_signatures_name_the_missing_role():
    world = World("limited")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    decision = ask(world)
    assert failed(decision)["signer_role_missing"] == "Required approvals missing: compliance_officer (0/1)."
    assert f"Request #{request.pk} is pending." in failed(decision)["approval_missing"]


def test_other_artifact_than_registered_is_a_hash_mismatch():
    world = World("limited")
    approved(world)
    decision = ask(world, artifact="a" * 64)
    assert sorted(failed(decision)) == ["artifact_hash_mismatch"]


def test_new_artifact_version_has_no_approval():
    # given
    world = World("limited")
    approved(world)
    v2 = version(owner=world.engineer, model_=world.model, artifact="retrained", datasets=[world.data])
    # when
    decision = ask(world, model_version=v2)
    # then
    assert "approval_missing" in failed(decision)


def test_artifact_changed_after_sign_off_voids_the_approval():
    # given
    world = World("limited")
    approved(world)
    ModelVersion.objects.filter(pk=world.v1.pk).update(artifact_sha256="b" * 64)
    world.v1.refresh_from_db()
    # when
    decision = ask(world)
    # then
    assert sorted(failed(decision)) == ["approval_missing"]
    assert "b" * 64 in failed(decision)["approval_missing"]


def test_new_dataset_version_after_sign_off_voids_the_approval():
    # given
    world = World("limited")
    approved(world)
    newer = dataset_version(owner=world.engineer, team_=world.team, rows="40,1.0,1\n")
    world.v1.training_datasets.add(newer)
    # when
    decision = ask(world)
    # then
    assert sorted(failed(decision)) == ["approval_missing"]
    assert "dataset versions" in failed(decision)["approval_missing"]


def test_new_policy_version_after_sign_off_voids_the_approval():
    # given
    world = World("limited")
    approved(world)
    policy_update(actor=world.compliance, risk_tier="limited", changes={"max_report_age_days": 30},
                  reason="fresher reports")
    # when
    decision = ask(world)
    # then
    assert sorted(failed(decision)) == ["approval_missing"]
    assert "v1" in failed(decision)["approval_missing"] and "v2" in failed(decision)["approval_missing"]


def test_report_changed_after_sign_off_is_report_stale(reports):
    # given
    world = World("limited")
    approved(world)
    # when: a report appears after the sign-off
    reports[world.v1.pk] = [{"id": 7, "kind": "fairness", "sha256": "c" * 64,
                             "artifact_sha256": world.v1.artifact_sha256, "created_at": timezone.now(),
                             "results": {}}]
    decision = ask(world)
    # then
    assert sorted(failed(decision)) == ["report_stale"]


def test_required_reports_missing_on_the_high_tier():
    world = World("high")
    approved(world)
    decision = ask(world)
    assert sorted(failed(decision)) == ["fairness_threshold_failed", "report_missing"]
    assert failed(decision)["report_missing"] == (
        f"Required report(s) missing for {world.v1}: fairness, explainability.")


def test_fairness_and_staleness_of_reports_on_the_high_tier(reports):
    # given
    world = World("high")
    old = timezone.now() - dt.timedelta(days=100)
    reports[world.v1.pk] = [
        {"id": 1, "kind": "fairness", "sha256": "1" * 64, "artifact_sha256": world.v1.artifact_sha256,
         "created_at": old, "results": {"demographic_parity_ratio": 0.7, "equalized_odds_difference": 0.05}},
        {"id": 2, "kind": "explainability", "sha256": "2" * 64, "artifact_sha256": "9" * 64,
         "created_at": timezone.now(), "results": {}},
    ]
    approved(world)
    # when
    decision = ask(world)
    # then
    assert sorted(failed(decision)) == ["fairness_threshold_failed", "report_stale"]
    assert failed(decision)["fairness_threshold_failed"] == (
        "Fairness thresholds failed (report #1): demographic parity ratio 0.7 < 0.8.")
    assert failed(decision)["report_stale"] == (
        "Stale report(s): fairness is older than 90 days; explainability was computed on another artifact.")


def test_performance_threshold_on_the_high_tier():
    world = World("high")
    weak = version(owner=world.engineer, model_=world.model, metrics={"accuracy": 0.55})
    silent = version(owner=world.engineer, model_=world.model, metrics={})
    assert failed(ask(world, model_version=weak))["performance_threshold_failed"] == (
        "accuracy 0.55 (declared at registration; no report measured it) < 0.7.")
    assert failed(ask(world, model_version=silent))["performance_threshold_failed"] == (
        f"{silent} reports no accuracy.")


def test_approval_expires_after_the_policy_maximum_age():
    # given
    world = World("limited")
    approved(world)
    # when
    checks, _ = gate_checks_compute(model_version=world.v1, environment="production",
                                    artifact_sha256=world.v1.artifact_sha256,
                                    now=timezone.now() + dt.timedelta(days=31))
    # then
    assert sorted(failed(checks)) == ["approval_expired"]


def test_an_approval_without_a_decision_time_cannot_be_aged_so_the_gate_fails_closed():
    # given an approved request whose decision time is missing (no service writes that; a bad restore could)
    world = World("limited")
    request = approved(world)
    ApprovalRequest.objects.filter(pk=request.pk).update(decided_at=None)
    # when
    checks, used = gate_checks_compute(model_version=world.v1, environment="production",
                                       artifact_sha256=world.v1.artifact_sha256)
    # then
    assert used.pk == request.pk
    assert failed(checks) == {"approval_expired": f"Approval #{request.pk} has no decision time to age it from."}


def test_unacceptable_tier_is_never_allowed():
    world = World("unacceptable")
    decision = ask(world)
    assert decision.allowed is False
    assert failed(decision)["approval_missing"] == "The unacceptable risk tier can never be approved for deployment."


def test_environment_outside_the_policy_needs_no_approval():
    world = World("limited")
    decision = ask(world, environment="dev")
    assert decision.allowed is True


def test_approval_is_per_environment():
    world = World("limited")
    approved(world, environment="staging")
    assert "approval_missing" in failed(ask(world, environment="production"))


def test_archived_version_is_denied():
    world = World("limited")
    approved(world)
    registry.model_version_archive(actor=world.engineer, model_version=world.v1, reason="superseded")
    world.v1.refresh_from_db()
    assert sorted(failed(ask(world))) == ["model_version_archived"]


def test_signer_who_lost_the_role_no_longer_counts():
    world = World("limited")
    approved(world)
    world.validator.groups.remove(Group.objects.get(name="model_validator"))
    assert sorted(failed(ask(world))) == ["signer_role_missing"]


def test_signature_moved_away_fails_the_gate():
    # given
    world = World("limited")
    request = approved(world)
    other = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                  environment="staging")
    signature = request.signatures.get(role="model_validator")
    # when: moved by a database owner, past the append-only triggers
    with tamper.triggers_bypassed():
        Signature.objects.filter(pk=signature.pk).update(request=other)
    # then
    assert sorted(failed(ask(world))) == ["signer_role_missing"]


def test_record_changed_after_signing_fails_the_gate():
    world = World("limited")
    request = approved(world)
    ApprovalRequest.objects.filter(pk=request.pk).update(reason="edited afterwards")
    decision = ask(world)
    assert "approval_missing" in failed(decision)
    assert "do not verify" in failed(decision)["approval_missing"]


def test_open_critical_alert_check_is_pluggable():
    world = World("limited")
    approved(world)

    def alert(mv):
        return f"Critical alert open on {mv.model.name}." if mv.pk == world.v1.pk else None

    gate_alert_check_register(alert)
    try:
        decision = ask(world)
    finally:
        gate_alert_check_unregister(alert)
    assert failed(decision) == {"open_critical_alert": "Critical alert open on credit."}


def test_retrained_version_needs_an_approved_retraining_request():
    # given
    world = World("limited")
    child = version(owner=world.engineer, model_=world.model, parent=world.v1)
    approved(world, model_version=child)
    # when
    before = failed(ask(world, model_version=child))
    retrain = approval_request_open(actor=world.engineer, kind="retraining", model=world.model,
                                    reason="drift on income")
    for signer in world.signers():
        approval_request_sign(actor=signer, request=retrain, password=PASSWORD, meaning="approve")
    grandchild = version(owner=world.engineer, model_=world.model, parent=child)
    approved(world, model_version=grandchild)
    after = failed(ask(world, model_version=grandchild))
    # then
    assert sorted(before) == ["retraining_not_approved"]
    assert after == {}


def test_unknown_model_or_version_is_404_and_writes_nothing():
    world = World("limited")
    for name, number in (("nope", 1), (world.model.name, 99)):
        with pytest.raises(ApplicationError) as caught:
            gate_evaluate(actor=world.ci, model_name=name, version=number, environment="production",
                          artifact_sha256="a" * 64)
        assert (caught.value.code, caught.value.status) == ("not_found", 404)
    assert not GateDecision.objects.exists()
    assert not logged(AuditAction.GATE_EVALUATED)


def test_the_gate_reads_little(django_assert_max_num_queries):
    world = World("limited")
    approved(world)
    world.ci.groups.all()  # the CI user is loaded, as authentication leaves it
    # savepoint, roles, version+model+membership, policy, requests, signatures with their
    # signers' roles, the reports, the dataset versions (one query for both uses), open critical
    # alerts (monitoring's check, MLflow alias alerts included), decision, the event (PostgreSQL
    # chains it at once: head if free, insert+head; SQLite queues it), release
    with django_assert_max_num_queries(13 if connection.vendor == "postgresql" else 12):
        decision = ask(world)
    assert decision.allowed is True
