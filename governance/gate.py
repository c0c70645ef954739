"""The deployment gate: may artifact X of model M version N go to environment E now?

`gate_evaluate` computes every check of CONTRACT.md (plus `retraining_not_approved`), stores
the answer as a GateDecision and writes one audit event with the inputs and the checks. A
denial is an answer, not an error. The checks recompute the evidence as it stands (artifact
hash, dataset versions, reports, the tier's current policy version) and compare it with what
was signed, so approvals follow the evidence: any change voids them.

It reads little (seven statements, asserted in tests), each written once as SQL in
governance.hot_reads and shared with the selectors that record an approval's evidence, and it
writes two rows (docs/BENCHMARKS.md, "Gate"): the decision and its event, which on PostgreSQL
joins the chain in the same transaction when the head is free (`chain_now`, docs/audit-log.md).
On PostgreSQL the checks' six reads (policy, requests, signatures, reports, datasets, alerts)
go to the database in one round trip (`sql_rows.read_ahead`); the checks then ask for them one
by one, as everywhere else.

Checks that need other apps stay pluggable so that governance imports nothing above it:
`gate_alert_check_register` takes a function (model version -> message or None) that
reports an open critical alert, and optionally the statement it runs, to be read ahead;
monitoring's compliance alerts install theirs.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import hot_reads
from governance.audit import AuditAction, audit_event_record
from governance.models import ApprovalPolicy, ApprovalRequest, GateDecision, Signature
from governance.selectors import evidence_for_deployment, model_version_reports, policy_current
from governance.services.approvals import retraining_approval_for
from governance.services.signatures import evidence_changes, signature_verify
from mlops_site.common import sql_rows
from registry.models import ModelVersion

Status = ApprovalRequest.Status
# The deployment requests the gate weighs: the approval, else the request still waiting.
_STANDING = (Status.APPROVED.value, Status.PENDING.value)

CHECK_CODES = (
    "approval_missing",
    "approval_expired",
    "signer_role_missing",
    "report_missing",
    "report_stale",
    "fairness_threshold_failed",
    "performance_threshold_failed",
    "open_critical_alert",
    "artifact_hash_mismatch",
    "model_version_archived",
    "retraining_not_approved",
)

# Thresholds a policy may set (ApprovalPolicy.thresholds keys).
DP_RATIO_MIN = "demographic_parity_ratio_min"
EO_DIFFERENCE_MAX = "equalized_odds_difference_max"
METRIC = "metric"
METRIC_MIN = "metric_min"
# "include" (default) or "exclude": whether groups below the report's minimum size count
# towards the fairness thresholds (the report's `headline` or `headline_excluding_small`).
FAIRNESS_SMALL_GROUPS = "fairness_small_groups"

_alert_checks: list[Callable[[ModelVersion], str | None]] = []
_alert_statements: dict[Callable[[ModelVersion], str | None], Callable[[ModelVersion], sql_rows.Statement]] = {}


def gate_alert_check_register(check: Callable[[ModelVersion], str | None], *,
                              statement: Callable[[ModelVersion], sql_rows.Statement] | None = None) -> None:
    """Add a check that returns a message when the version's model has an open critical alert.

    `statement` (model version -> the SQL and parameters the check reads through
    `sql_rows.fetch_rows`) lets the gate send that read with its own in one round trip.
    """
    if check not in _alert_checks:
        _alert_checks.append(check)
    if statement is not None:
        _alert_statements[check] = statement


def gate_alert_check_unregister(check: Callable[[ModelVersion], str | None]) -> None:
    if check in _alert_checks:
        _alert_checks.remove(check)
    _alert_statements.pop(check, None)


@dataclasses.dataclass
class GateContext:
    """Everything the checks read, loaded once."""

    model_version: ModelVersion
    environment: str
    artifact_sha256: str
    now: dt.datetime
    policy: ApprovalPolicy
    approved: ApprovalRequest | None
    pending: ApprovalRequest | None
    signatures: list[Signature]
    signer_roles: dict[int, set[str]]  # signer -> the roles they signed as and still hold
    reports: list[dict[str, Any]]
    evidence: dict[str, Any] | None

    @property
    def covered(self) -> bool:
        return self.policy.approvable and self.policy.covers(self.environment)

    @property
    def changed(self) -> list[str]:
        """The parts of the approval's evidence that moved since it was signed (the shared comparison)."""
        if self.approved is None:
            return []
        return evidence_changes(recorded=self.approved.evidence, current=self.evidence)


def _context(*, model_version: ModelVersion, environment: str, artifact_sha256: str, now: dt.datetime) -> GateContext:
    policy = policy_current(risk_tier=model_version.model.risk_tier)
    requests = hot_reads.deployment_requests(model_version_id=model_version.pk, environment=environment,
                                             statuses=_STANDING)
    approved = max((r for r in requests if r.status == Status.APPROVED), key=lambda r: (r.decided_at, r.pk),
                   default=None)
    pending = next((r for r in requests if r.status == Status.PENDING), None)
    focus = approved or pending
    signatures: list[Signature] = []
    signer_roles: dict[int, set[str]] = {}
    if focus is not None:
        # Whether each signer still holds the role they signed as comes with the signatures (the
        # only role of a signer the checks ask about). Read for every standing request, so that
        # the read needs no earlier answer; the focus's are kept.
        signatures = [s for s in hot_reads.signatures_with_roles(model_version_id=model_version.pk,
                                                                 environment=environment, statuses=_STANDING)
                      if s.request_id == focus.pk]
        for signature in signatures:
            if signature.signer_holds_role:  # type: ignore[attr-defined]  # set by hot_reads
                signer_roles.setdefault(signature.signer_id, set()).add(signature.role)
    reports = model_version_reports(model_version) if policy.required_reports or approved else []
    evidence = None
    if approved is not None:
        evidence = evidence_for_deployment(model_version=model_version, environment=environment, policy=policy,
                                           reports=reports)
    return GateContext(model_version=model_version, environment=environment, artifact_sha256=artifact_sha256,
                       now=now, policy=policy, approved=approved, pending=pending, signatures=signatures,
                       signer_roles=signer_roles, reports=reports, evidence=evidence)


def _valid_approvals(ctx: GateContext) -> list[Signature]:
    """Approving signatures that verify and whose signers still hold the role they signed as."""
    request = ctx.approved or ctx.pending
    return [s for s in ctx.signatures
            if s.meaning == Signature.Meaning.APPROVE and signature_verify(s, request)
            and s.role in ctx.signer_roles.get(s.signer_id, set())]


# --- the checks: each returns (passed, message) -----------------------------------------------------

def _not_covered(ctx: GateContext) -> str:
    """Why a check that only a covering policy asks for passes: says so, so that a pass is never read as
    "measured and fine" (an environment outside the policy needs no approval, reports or thresholds)."""
    if not ctx.policy.approvable:
        return f"Not checked: the {ctx.policy.risk_tier} risk tier can never be approved (see approval_missing)."
    return f"Not checked: {ctx.policy} does not cover {ctx.environment!r}."


def check_approval_missing(ctx: GateContext) -> tuple[bool, str]:
    policy, approved = ctx.policy, ctx.approved
    if not policy.approvable:
        return False, f"The {policy.risk_tier} risk tier can never be approved for deployment."
    if not policy.covers(ctx.environment):
        return True, f"{policy} does not cover {ctx.environment!r}; no approval is required there."
    if approved is None:
        waiting = f" Request #{ctx.pending.pk} is pending." if ctx.pending else ""
        return False, f"No approved deployment request for {ctx.model_version} to {ctx.environment}.{waiting}"
    signed, now, changed = approved.evidence, ctx.evidence or {}, ctx.changed
    if "artifact_sha256" in changed:
        return False, (f"Approval #{approved.pk} was signed for artifact {signed.get('artifact_sha256')}; "
                       f"the version's artifact is now {now.get('artifact_sha256')}.")
    if "datasets" in changed:
        return False, f"The dataset versions of {ctx.model_version} changed after approval #{approved.pk}."
    if "policy" in changed:
        was, is_ = signed.get("policy") or {}, now.get("policy") or {}
        return False, (f"Approval #{approved.pk} was signed under the {was.get('risk_tier')} policy "
                       f"v{was.get('version')}; the policy in force is {is_.get('risk_tier')} v{is_.get('version')}.")
    broken = [s.pk for s in ctx.signatures if not signature_verify(s, approved)]
    if broken:
        return False, (f"Signature(s) {', '.join(map(str, broken))} do not verify against the record of "
                       f"approval #{approved.pk}.")
    return True, f"Approval #{approved.pk} covers this artifact, its data and policy v{policy.version}."


def check_approval_expired(ctx: GateContext) -> tuple[bool, str]:
    approved = ctx.approved
    if not ctx.covered:
        return True, _not_covered(ctx)
    if approved is None:
        return True, "No approval to age."
    if approved.decided_at is None:
        # Every approval records when it was decided; a row without that time cannot be aged, so it
        # does not count (the gate fails closed).
        return False, f"Approval #{approved.pk} has no decision time to age it from."
    until = approved.decided_at + dt.timedelta(days=approved.policy.max_approval_age_days)
    if until < ctx.now:
        return False, f"Approval #{approved.pk} expired at {until.isoformat()}."
    return True, f"Approval #{approved.pk} is valid until {until.isoformat()}."


def check_signer_role_missing(ctx: GateContext) -> tuple[bool, str]:
    if not ctx.covered:
        return True, _not_covered(ctx)
    counts: dict[str, int] = {}
    for signature in _valid_approvals(ctx):
        counts[signature.role] = counts.get(signature.role, 0) + 1
    missing = [f"{role} ({counts.get(role, 0)}/{count})" for role, count in ctx.policy.required_roles.items()
               if counts.get(role, 0) < count]
    if missing:
        return False, f"Required approvals missing: {', '.join(missing)}."
    return True, "Every required role approved."


def _reports_by_kind(ctx: GateContext) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for report in ctx.reports:
        latest.setdefault(report["kind"], report)
    return latest


def check_report_missing(ctx: GateContext) -> tuple[bool, str]:
    if not ctx.covered:
        return True, _not_covered(ctx)
    if not ctx.policy.required_reports:
        return True, "No reports required."
    present = _reports_by_kind(ctx)
    missing = [kind for kind in ctx.policy.required_reports if kind not in present]
    if missing:
        return False, f"Required report(s) missing for {ctx.model_version}: {', '.join(missing)}."
    return True, "Every required report exists."


def check_report_stale(ctx: GateContext) -> tuple[bool, str]:
    if not ctx.covered:
        return True, _not_covered(ctx)
    if ctx.approved is not None and ctx.evidence is not None and "reports" in ctx.changed:
        return False, f"The reports changed after approval #{ctx.approved.pk} was signed."
    stale = []
    max_age = dt.timedelta(days=ctx.policy.max_report_age_days)
    for kind, report in _reports_by_kind(ctx).items():
        if kind not in ctx.policy.required_reports:
            continue
        if report.get("artifact_sha256") not in (None, ctx.model_version.artifact_sha256):
            stale.append(f"{kind} was computed on another artifact")
        created = report.get("created_at")
        if created is not None and created + max_age < ctx.now:
            stale.append(f"{kind} is older than {ctx.policy.max_report_age_days} days")
    if stale:
        return False, "Stale report(s): " + "; ".join(stale) + "."
    return True, "Reports are fresh and match the signed ones."


def _headline_value(results: dict[str, Any], metric: str, *, exclude_small: bool) -> tuple[Any, str]:
    """A headline number of a fairness report and where it occurs (" at feature=group"), if said."""
    key = "headline_excluding_small" if exclude_small and isinstance(results.get("headline_excluding_small"),
                                                                     dict) else "headline"
    found = results.get(key)
    headline: dict[str, Any] = found if isinstance(found, dict) else results
    where = (headline.get("where") or {}).get(metric) or {}
    at = f" at {where.get('feature')}={where.get('group')}" if where.get("feature") is not None else ""
    if at and where.get("small"):
        at += f" (a small group, under {results.get('min_group_size')} rows)"
    return headline.get(metric), at


def check_fairness_threshold_failed(ctx: GateContext) -> tuple[bool, str]:
    thresholds = ctx.policy.thresholds
    if not ctx.covered:
        return True, _not_covered(ctx)
    if not ({DP_RATIO_MIN, EO_DIFFERENCE_MAX} & set(thresholds)):
        return True, "No fairness thresholds."
    report = _reports_by_kind(ctx).get("fairness")
    if report is None:
        return False, "No fairness report to check the thresholds against."
    results, failures = report.get("results") or {}, []
    exclude_small = thresholds.get(FAIRNESS_SMALL_GROUPS) == "exclude"
    if DP_RATIO_MIN in thresholds:
        value, at = _headline_value(results, "demographic_parity_ratio", exclude_small=exclude_small)
        if value is None or value < thresholds[DP_RATIO_MIN]:
            failures.append(f"demographic parity ratio {value}{at} < {thresholds[DP_RATIO_MIN]}")
    if EO_DIFFERENCE_MAX in thresholds:
        value, at = _headline_value(results, "equalized_odds_difference", exclude_small=exclude_small)
        if value is None or value > thresholds[EO_DIFFERENCE_MAX]:
            failures.append(f"equalized odds difference {value}{at} > {thresholds[EO_DIFFERENCE_MAX]}")
    if failures:
        return False, f"Fairness thresholds failed (report #{report.get('id')}): " + "; ".join(failures) + "."
    return True, "Fairness within thresholds."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_performance_threshold_failed(ctx: GateContext) -> tuple[bool, str]:
    thresholds = ctx.policy.thresholds
    if not ctx.covered:
        return True, _not_covered(ctx)
    if METRIC_MIN not in thresholds:
        return True, "No performance threshold."
    metric = thresholds.get(METRIC, "accuracy")
    # Attest's own measurement (the fairness report's overall figure, on the evaluation data) comes
    # first: a figure declared at registration is whatever the registrant wrote, so it decides only
    # when Attest measured none.
    report = _reports_by_kind(ctx).get("fairness")
    measured = (((report or {}).get("results") or {}).get("overall") or {}).get(metric)
    declared = (ctx.model_version.metrics or {}).get(metric)
    if _is_number(measured):
        value, source = measured, f" (fairness report #{(report or {}).get('id')})"
        if _is_number(declared) and declared != measured:
            source = f" (fairness report #{(report or {}).get('id')}; {declared} declared at registration)"
    elif _is_number(declared):
        value, source = declared, " (declared at registration; no report measured it)"
    else:
        return False, f"{ctx.model_version} reports no {metric}."
    if value < thresholds[METRIC_MIN]:
        return False, f"{metric} {value}{source} < {thresholds[METRIC_MIN]}."
    return True, f"{metric} {value}{source} >= {thresholds[METRIC_MIN]}."


def check_open_critical_alert(ctx: GateContext) -> tuple[bool, str]:
    for check in _alert_checks:
        message = check(ctx.model_version)
        if message:
            return False, message
    return True, "No open critical alert."


def check_artifact_hash_mismatch(ctx: GateContext) -> tuple[bool, str]:
    if ctx.artifact_sha256 != ctx.model_version.artifact_sha256:
        return False, (f"The artifact to ship ({ctx.artifact_sha256}) is not {ctx.model_version}'s "
                       f"({ctx.model_version.artifact_sha256}).")
    return True, "The artifact is the registered one."


def check_model_version_archived(ctx: GateContext) -> tuple[bool, str]:
    mv = ctx.model_version
    if mv.archived_at is not None or mv.status == ModelVersion.Status.ARCHIVED or mv.model.archived_at is not None:
        return False, f"{mv} is archived."
    return True, f"{mv} is not archived."


def check_retraining_not_approved(ctx: GateContext) -> tuple[bool, str]:
    mv = ctx.model_version
    if mv.parent_id is None:
        return True, "Not a retrained version."
    if not ctx.covered:
        return True, _not_covered(ctx)
    request = retraining_approval_for(model=mv.model, at=mv.created_at)
    if request is None:
        return False, f"{mv} is a retrain without an approved retraining request before it was registered."
    return True, f"Retraining approved by request #{request.pk}."


CHECKS: dict[str, Callable[[GateContext], tuple[bool, str]]] = {
    "approval_missing": check_approval_missing,
    "approval_expired": check_approval_expired,
    "signer_role_missing": check_signer_role_missing,
    "report_missing": check_report_missing,
    "report_stale": check_report_stale,
    "fairness_threshold_failed": check_fairness_threshold_failed,
    "performance_threshold_failed": check_performance_threshold_failed,
    "open_critical_alert": check_open_critical_alert,
    "artifact_hash_mismatch": check_artifact_hash_mismatch,
    "model_version_archived": check_model_version_archived,
    "retraining_not_approved": check_retraining_not_approved,
}
# The registry and the published codes agree (checked at import, also under python -O).
if tuple(CHECKS) != CHECK_CODES:
    raise ImportError("governance.gate: CHECKS and CHECK_CODES name different checks or orders")


def gate_checks_compute(*, model_version: ModelVersion, environment: str, artifact_sha256: str,
                        now: dt.datetime | None = None) -> tuple[list[dict[str, Any]], ApprovalRequest | None]:
    """Every check, in CHECK_CODES order, as [{"code", "passed", "message"}], and the approval used. Reads only."""
    ahead = hot_reads.gate_statements(model_version=model_version, environment=environment, statuses=_STANDING)
    ahead += [_alert_statements[check](model_version) for check in _alert_checks if check in _alert_statements]
    with sql_rows.read_ahead(ahead):
        ctx = _context(model_version=model_version, environment=environment, artifact_sha256=artifact_sha256,
                       now=now or timezone.now())
        checks = []
        for code, check in CHECKS.items():
            passed, message = check(ctx)
            checks.append({"code": code, "passed": passed, "message": message})
    return checks, ctx.approved


@transaction.atomic
def gate_evaluate(*, actor: Any, model_name: str, version: int, environment: str,
                  artifact_sha256: str) -> GateDecision:
    """Decide whether the artifact may go to the environment; store and audit the decision.

    Returns the GateDecision (allowed only when every check passed), with `audit_entry`
    set to its queued audit event (chained on commit: governance.audit.audit_seq_for_entry).
    Unknown model or version, or another team's (unless the actor holds a governance role):
    404 `not_found`; a role that may not ask: 403 `permission_denied`. Nothing is written then.
    """
    from governance.environments import environment_require_known
    from governance.errors import action_forbidden, not_found
    from governance.permissions import Action, user_can, user_reads_all
    from governance.selectors import VERSION_NOT_FOUND, model_version_get

    if not user_can(actor, Action.GATE_EVALUATE):
        raise action_forbidden(user=actor, action="ask the gate")
    environment_require_known(environment)
    # The version, its model and the actor's membership of the model's team in one statement;
    # model_version_get() only when it is missing, for its 404 naming the model or the version.
    found = hot_reads.version_with_membership(model_name=model_name, version=version, user_id=actor.pk)
    if found is None:
        # Raises the 404 naming what is missing (the model or the version); finds it only when it
        # was registered this instant.
        missing = model_version_get(model_name=model_name, version=version)
        found = missing, missing.model.team.members.filter(pk=actor.pk).exists()
    model_version, is_member = found
    is_member = is_member or user_reads_all(actor)
    if not is_member:
        # Another team's model reads as missing, as everywhere in the API.
        raise not_found(VERSION_NOT_FOUND.format(name=model_name, version=version), field="version")
    now = timezone.now()
    checks, approved = gate_checks_compute(model_version=model_version, environment=environment,
                                           artifact_sha256=artifact_sha256, now=now)
    allowed = all(check["passed"] for check in checks)
    decision = GateDecision(model_version=model_version, environment=environment, artifact_sha256=artifact_sha256,
                            allowed=allowed, checks=checks, approval_request=approved,
                            evaluated_by=actor if getattr(actor, "is_authenticated", False) else None,
                            evaluated_at=now)
    # One hand-written INSERT (with post_save, which the metrics count): the ORM's compiler cost
    # more than the database on this hot path, as for the audit queue (docs/BENCHMARKS.md).
    sql_rows.insert(decision)
    decision.audit_entry = audit_event_record(
        actor=actor, action=AuditAction.GATE_EVALUATED, target=decision,
        object_repr=f"{model_version} → {environment}: {'allowed' if allowed else 'denied'}",
        after={"allowed": allowed, "decision_id": decision.decision_id},
        payload={"inputs": {"model": model_name, "version": version, "environment": environment,
                            "artifact_sha256": artifact_sha256},
                 "checks": checks, "approval_request": approved.pk if approved else None},
        # The decision's event is its transaction's last statement: chained here, one commit.
        chain_now=True,
    )
    return decision
