"""The approval workflow as a hypothesis RuleBasedStateMachine (RELIABILITY.md, stateful workflow).

Random sequences of: register a version (a new artifact, other data, a retrain), open a
deployment or retraining request, sign (any person, any meaning, right or wrong password),
withdraw, expire, change the policy, swap an artifact behind the registry's back, raise and
clear a critical alert, ask the gate and deploy, CI registering a retrain. After every step:

- no deployment exists without the policy's signatures on the current hashes: an
  independent oracle, written here from the rules and not from governance.gate, must agree
  with every gate answer, and every deployment cites an allowing decision on its artifact;
- every request's status agrees with its signatures (quorum, rejection);
- every state change has its audit event: the events written are exactly the ones the
  model of the workflow expects, and a refused call writes none (but a failed
  re-authentication writes its own, and the fifth its lock);
- every version's status is the one the model expects: `approved` once a deployment request
  for it is approved, `deployed` once it is deployed, never back, each move one event.

`make test` runs ATTEST_STATEFUL_EXAMPLES sequences (500 by default); a nightly run raises it.
"""

import datetime as dt
import hashlib
import itertools
import os

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from governance.audit import AuditAction as A
from governance.gate import gate_alert_check_register, gate_alert_check_unregister, gate_evaluate
from governance.models import ApprovalPolicy, ApprovalRequest, AuditEvent, AuditQueueEntry, Deployment, Signature
from governance.services.approvals import (
    approval_request_expire,
    approval_request_open,
    approval_request_sign,
    approval_request_withdraw,
    retraining_registration_check,
)
from governance.services.deployments import deployment_record
from governance.services.policies import policy_update
from mlops_site.common.errors import ApplicationError
from registry.models import ModelVersion, RegisteredModel
from tests.governance.workflow_factories import PASSWORD, dataset_version, person, team

EXAMPLES = int(os.environ.get("ATTEST_STATEFUL_EXAMPLES", "500"))
STEPS = int(os.environ.get("ATTEST_STATEFUL_STEPS", "10"))
ENVIRONMENTS = ["staging", "production", "production", "dev"]
TIERS = ["minimal", "limited", "limited", "high", "unacceptable"]
MEANINGS = ["approve", "approve", "reject", "reviewed"]
LOCK_AFTER = 5
_names = itertools.count(1)



def _written_since(mark: int) -> list[tuple[int, str]]:
    """(entry id, action) of every event recorded after entry `mark`, in the order written: queued
    ones (the test's transaction never commits) and those a `chain_now` writer chained at once
    (the gate, on PostgreSQL), whose ids come from the queue's own sequence."""
    queued = AuditQueueEntry.objects.filter(pk__gt=mark).values_list("pk", "action")
    chained = AuditEvent.objects.filter(entry_id__gt=mark).values_list("entry_id", "action")
    return sorted([*queued, *chained])

class Base:
    """People, a team and data sets shared by every sequence (each sequence rolls back its own writes)."""

    def __init__(self) -> None:
        self.engineer = person("eng", "ml_engineer")
        self.ci = person("ci", "ci_service")
        self.signers = [
            person("val", "model_validator"), person("comp", "compliance_officer"), person("risk", "risk_officer"),
            person("eng2", "ml_engineer"), person("both", "model_validator", "compliance_officer"),
            person("aud", "auditor"), self.ci, self.engineer,
        ]
        self.compliance = self.signers[1]
        # Roles never change during a sequence: read them once.
        self.roles = {u.pk: set(u.groups.values_list("name", flat=True)) for u in self.signers}
        self.team = team("team", self.engineer, self.ci, self.signers[3])
        self.datasets = [dataset_version(owner=self.engineer, team_=self.team, name=f"data{i}", rows=f"{i},1.0,1\n")
                         for i in range(3)]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Workflow(RuleBasedStateMachine):
    base: Base

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.alert = False
        gate_alert_check_register(self._alert_check)
        self.expected: list[str] = []
        self.failures: dict[int, int] = {}
        self.locked: set[int] = set()
        self.versions: list[ModelVersion] = []
        self.requests: list[ApprovalRequest] = []
        # The status each version should have, moved by the model's own reading of the rules.
        self.statuses: dict[int, str] = {}

    def teardown(self) -> None:
        gate_alert_check_unregister(self._alert_check)
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _alert_check(self, mv) -> str | None:
        return "critical alert open" if self.alert and mv.model_id == self.model.pk else None

    # --- set-up -------------------------------------------------------------------------------------

    @initialize(tier=st.sampled_from(TIERS))
    def start(self, tier):
        b = self.base
        # Registration is the registry's use case, tested there; rows are made directly here so
        # that hundreds of sequences fit in the suite's time (no registry event is expected).
        self.model = RegisteredModel.objects.create(name=f"m{next(_names)}", team=b.team, risk_tier=tier,
                                                    created_by=b.engineer)
        self._register(actor=b.engineer, datasets=[b.datasets[0]], parent=None)
        self.mark = max((entry_id for entry_id, _ in _written_since(0)), default=0)
        self.expected = []

    def _register(self, *, actor, datasets, parent) -> ModelVersion:
        mv = ModelVersion.objects.create(
            model=self.model, version=len(self.versions) + 1, artifact_sha256=_sha(f"artifact-{next(_names)}"),
            artifact_format="reference", parent=parent, metrics={"accuracy": 0.9}, created_by=actor)
        mv.training_datasets.set(datasets)
        mv.authors.set([self.base.engineer])
        self.versions.append(mv)
        self.statuses[mv.pk] = "registered"
        return mv

    # --- rules --------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.versions) < 6)
    @rule(data=st.integers(0, 2), parent=st.booleans())
    def register_version(self, data, parent):
        self._register(actor=self.base.engineer, datasets=[self.base.datasets[data]],
                       parent=self.versions[-1] if parent else None)

    @precondition(lambda self: len(self.versions) < 6)
    @rule()
    def ci_registers_retrain_of_live(self):
        live = Deployment.objects.filter(model=self.model).order_by("-deployed_at", "-id").first()
        if live is None:
            return
        approved = self._retraining_in_force(timezone.now())
        try:
            retraining_registration_check(actor=self.base.ci, model=self.model, parent=live.model_version)
        except ApplicationError as error:
            assert error.code == "retraining_not_approved" and not approved
            return
        assert approved
        self._register(actor=self.base.ci, datasets=[self.base.datasets[0]], parent=live.model_version)

    @rule(v=st.integers(0, 5), env=st.sampled_from(ENVIRONMENTS))
    def open_deployment_request(self, v, env):
        mv = self.versions[v % len(self.versions)]
        try:
            request = approval_request_open(actor=self.base.engineer, kind="deployment", model_version=mv,
                                            environment=env)
        except ApplicationError as error:
            assert error.code in {"not_approvable", "environment_not_covered", "approval_request_pending"}
            return
        self.requests.append(request)
        self.expected.append(A.APPROVAL_REQUESTED)

    @rule()
    def open_retraining_request(self):
        try:
            request = approval_request_open(actor=self.base.engineer, kind="retraining", model=self.model,
                                            reason="drift")
        except ApplicationError as error:
            assert error.code in {"not_approvable", "approval_request_pending"}
            return
        self.requests.append(request)
        self.expected.append(A.APPROVAL_REQUESTED)

    @precondition(lambda self: self.requests)
    @rule(r=st.integers(0, 20), who=st.integers(0, 7), meaning=st.sampled_from(MEANINGS),
          good_password=st.sampled_from([True, True, True, False]))
    def sign(self, r, who, meaning, good_password):
        request = self.requests[r % len(self.requests)]
        signer = self.base.signers[who]
        try:
            approval_request_sign(actor=signer, request=request, password=PASSWORD if good_password else "wrong",
                                  meaning=meaning, reason="because")
        except ApplicationError as error:
            if error.code == "reauthentication_failed" or (error.code == "signing_locked" and
                                                           signer.pk not in self.locked):
                assert not good_password
                self.failures[signer.pk] = self.failures.get(signer.pk, 0) + 1
                self.expected.append(A.SIGNING_REAUTH_FAILED)
                if self.failures[signer.pk] == LOCK_AFTER:
                    self.locked.add(signer.pk)
                    self.expected.append(A.SIGNING_LOCKED)
            elif error.code == "signing_locked":
                assert signer.pk in self.locked
            elif error.code == "evidence_stale":
                assert good_password and self._evidence_moved(request)
            return
        assert good_password and signer.pk not in self.locked
        assert not self._evidence_moved(request)
        self.failures[signer.pk] = 0
        before = request.status
        request.refresh_from_db()
        self.expected.append(A.APPROVAL_SIGNED)
        if request.status == "approved" and before != "approved":
            self._approved(request)
        elif request.status != before:
            self.expected.append(A.APPROVAL_REJECTED)

    @precondition(lambda self: self.requests)
    @rule(r=st.integers(0, 20), pick=st.integers(0, 7), complete=st.booleans())
    def approve_as_a_needed_signer(self, r, pick, complete):
        # Random signers rarely meet a quorum: this rule walks the happy path on purpose.
        request = self.requests[r % len(self.requests)]
        request.refresh_from_db()
        while request.status == "pending" and self._approve_once(request, pick) and complete:
            request.refresh_from_db()

    def _approve_once(self, request: ApprovalRequest, pick: int) -> bool:
        done = {s.signer_id for s in Signature.objects.filter(request=request)}
        counts: dict[str, int] = {}
        for role in Signature.objects.filter(request=request, meaning="approve").values_list("role", flat=True):
            counts[role] = counts.get(role, 0) + 1
        needed = [role for role, n in request.policy.required_roles.items() if counts.get(role, 0) < n]
        candidates = [u for u in self.base.signers if u.pk not in done and u.pk not in self.locked
                      and u.pk not in (self.base.engineer.pk, self.base.ci.pk)
                      and self.base.roles[u.pk] & set(needed)]
        if not candidates:
            return False
        signer = candidates[pick % len(candidates)]
        role = sorted(self.base.roles[signer.pk] & set(needed))[0]
        if self._evidence_moved(request):
            # A request whose evidence moved since it was opened is never signed (21 CFR 11.70).
            with pytest.raises(ApplicationError) as refused:
                approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve", role=role)
            assert refused.value.code == "evidence_stale"
            return False
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve", role=role)
        self.failures[signer.pk] = 0
        self.expected.append(A.APPROVAL_SIGNED)
        request.refresh_from_db()
        if request.status == "approved":
            self._approved(request)
        return True

    def _approved(self, request: ApprovalRequest) -> None:
        # An approved deployment request moves a registered version to approved (never back).
        self.expected.append(A.APPROVAL_APPROVED)
        if request.kind == "deployment" and self.statuses[request.model_version_id] == "registered":
            self.statuses[request.model_version_id] = "approved"
            self.expected.append(A.MODEL_VERSION_STATUS_CHANGED)

    @precondition(lambda self: self.requests)
    @rule(r=st.integers(0, 20))
    def withdraw(self, r):
        request = self.requests[r % len(self.requests)]
        try:
            approval_request_withdraw(actor=self.base.engineer, request=request, reason="changed plans")
        except ApplicationError as error:
            request.refresh_from_db()
            assert error.code == "invalid_transition" and request.status != "pending"
            return
        request.refresh_from_db()
        self.expected.append(A.APPROVAL_WITHDRAWN)

    @precondition(lambda self: self.requests)
    @rule(r=st.integers(0, 20))
    def expire(self, r):
        request = self.requests[r % len(self.requests)]
        try:
            approval_request_expire(request=request, now=timezone.now() + dt.timedelta(days=400))
        except ApplicationError as error:
            request.refresh_from_db()
            assert error.code == "invalid_transition" and request.status != "pending"
            return
        request.refresh_from_db()
        self.expected.append(A.APPROVAL_EXPIRED)

    @rule()
    def change_policy(self):
        current = ApprovalPolicy.objects.filter(risk_tier=self.model.risk_tier).order_by("-version").first()
        policy_update(actor=self.base.compliance, risk_tier=self.model.risk_tier,
                      changes={"max_report_age_days": current.max_report_age_days % 90 + 1}, reason="review")
        self.expected.append(A.POLICY_UPDATED)

    @rule(v=st.integers(0, 5))
    def swap_artifact_behind_the_registry(self, v):
        # Tampering, not a use case: no event is expected, but no approval may survive it.
        mv = self.versions[v % len(self.versions)]
        ModelVersion.objects.filter(pk=mv.pk).update(artifact_sha256=_sha(f"swapped-{next(_names)}"))
        mv.refresh_from_db()

    @rule(on=st.booleans())
    def critical_alert(self, on):
        self.alert = on

    @rule(v=st.integers(0, 5), env=st.sampled_from(ENVIRONMENTS[:2]), pick=st.integers(0, 7))
    def request_approve_and_deploy(self, v, env, pick):
        # The whole happy path in one step, so that most sequences deploy something and the
        # other rules then act on live versions, approved requests and recorded deployments.
        self.open_deployment_request(v, env)
        mv = self.versions[v % len(self.versions)]
        request = ApprovalRequest.objects.filter(model_version=mv, environment=env, status="pending").first()
        if request is not None:
            while request.status == "pending" and self._approve_once(request, pick):
                request.refresh_from_db()
        self._gate_and_deploy(mv, env, honest=True)

    @precondition(lambda self: self.requests)
    @rule(r=st.integers(0, 20), honest=st.booleans())
    def gate_and_deploy_a_requested_version(self, r, honest):
        request = self.requests[r % len(self.requests)]
        if request.kind == "deployment":
            self._gate_and_deploy(request.model_version, request.environment, honest)

    @rule(v=st.integers(0, 5), env=st.sampled_from(ENVIRONMENTS), honest=st.booleans())
    def gate_and_deploy(self, v, env, honest):
        self._gate_and_deploy(self.versions[v % len(self.versions)], env, honest)

    def _gate_and_deploy(self, mv, env, honest):
        mv.refresh_from_db()
        shipped = mv.artifact_sha256 if honest else _sha("something else")
        decision = gate_evaluate(actor=self.base.ci, model_name=self.model.name, version=mv.version, environment=env,
                                 artifact_sha256=shipped)
        self.expected.append(A.GATE_EVALUATED)
        assert decision.allowed == (honest and self._oracle_allows(mv, env)), decision.checks
        try:
            deployment_record(actor=self.base.ci, model_version=mv, environment=env, decision_id=decision.decision_id)
        except ApplicationError as error:
            assert not decision.allowed and error.code == "gate_decision_invalid"
            return
        assert decision.allowed
        self.expected.append(A.DEPLOYMENT_RECORDED)
        if self.statuses[mv.pk] != "deployed":
            self.statuses[mv.pk] = "deployed"
            self.expected.append(A.MODEL_VERSION_STATUS_CHANGED)

    # --- the oracle: the rules, restated independently of governance.gate ----------------------------

    def _policy(self) -> ApprovalPolicy:
        return ApprovalPolicy.objects.filter(risk_tier=self.model.risk_tier).order_by("-version").first()

    def _evidence_moved(self, request: ApprovalRequest) -> bool:
        """Whether a deployment request's artifact, datasets or policy version moved since it was opened."""
        if request.kind != "deployment":
            return False
        mv = ModelVersion.objects.get(pk=request.model_version_id)
        datasets = sorted([(d.pk, d.sha256) for d in mv.training_datasets.all()]
                          + [(d.pk, d.sha256) for d in mv.evaluation_datasets.all()])
        return (request.evidence["artifact_sha256"] != mv.artifact_sha256
                or request.evidence["policy"]["id"] != self._policy().pk
                or sorted((d["id"], d["sha256"]) for d in request.evidence["datasets"]) != datasets)

    def _live_versions(self) -> set[int]:
        latest = {}
        for d in Deployment.objects.filter(model=self.model).order_by("deployed_at", "id"):
            latest[d.environment] = d.model_version_id
        return set(latest.values())

    def _retraining_in_force(self, at) -> bool:
        for request in ApprovalRequest.objects.filter(model=self.model, kind="retraining", status="approved",
                                                      decided_at__lte=at):
            if request.decided_at + dt.timedelta(days=request.policy.max_approval_age_days) >= at:
                return True
        return False

    def _oracle_allows(self, mv: ModelVersion, env: str) -> bool:
        policy = self._policy()
        if self.alert or not policy.approvable:
            return False
        if env not in policy.environments:
            return True
        if policy.required_reports:  # no reports exist until the reports issue
            return False
        if mv.parent_id is not None and not self._retraining_in_force(mv.created_at):
            return False
        approved = ApprovalRequest.objects.filter(kind="deployment", model_version=mv, environment=env,
                                                  status="approved").order_by("-decided_at", "-id").first()
        if approved is None:
            return False
        if approved.evidence["artifact_sha256"] != mv.artifact_sha256 or approved.evidence["policy"]["id"] != policy.pk:
            return False
        datasets = sorted((d.pk, d.sha256) for d in mv.training_datasets.all())
        if sorted((d["id"], d["sha256"]) for d in approved.evidence["datasets"]) != datasets:
            return False
        return self._quorum(approved, policy)

    def _quorum(self, request: ApprovalRequest, policy: ApprovalPolicy, signatures=None) -> bool:
        authors = {self.base.engineer.pk, self.base.ci.pk}
        counts: dict[str, int] = {}
        seen = set()
        if signatures is None:
            signatures = list(Signature.objects.filter(request=request))
        for s in (s for s in signatures if s.meaning == "approve"):
            roles = self.base.roles[s.signer_id]
            assert s.signer_id not in seen and s.signer_id != request.requested_by_id and s.signer_id not in authors
            assert s.role in roles and s.record_sha256 == request.evidence_sha256
            seen.add(s.signer_id)
            counts[s.role] = counts.get(s.role, 0) + 1
        return all(counts.get(role, 0) >= n for role, n in policy.required_roles.items())

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def workflow_invariants(self):
        if not hasattr(self, "mark"):
            return
        # Every state change has its audit event, and refusals wrote none.
        written = [action for _, action in _written_since(self.mark)]
        assert written == self.expected
        # Each version's status is the one the workflow's decisions give it.
        assert dict(ModelVersion.objects.filter(model=self.model).values_list("pk", "status")) == self.statuses
        # No deployment without an allowing decision on its version, environment and artifact.
        for d in Deployment.objects.filter(model=self.model).select_related("decision"):
            assert d.decision.allowed and all(c["passed"] for c in d.decision.checks)
            assert (d.decision.model_version_id, d.decision.environment, d.decision.artifact_sha256) == (
                d.model_version_id, d.environment, d.artifact_sha256)
        # A request's status agrees with its signatures.
        signatures: dict[int, list[Signature]] = {}
        for s in Signature.objects.filter(request__model=self.model):
            signatures.setdefault(s.request_id, []).append(s)
        for request in ApprovalRequest.objects.filter(model=self.model).select_related("policy"):
            mine = signatures.get(request.pk, [])
            rejects = sum(s.meaning == "reject" for s in mine)
            quorum = self._quorum(request, request.policy, mine)
            assert {"approved": rejects == 0 and quorum, "rejected": rejects == 1,
                    "pending": rejects == 0 and not quorum}.get(request.status, True), request.status


@pytest.mark.django_db
def test_workflow_state_machine():
    # given: the people and data every sequence shares
    Workflow.base = Base()
    # when / then: each sequence checks the invariants after every step
    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
