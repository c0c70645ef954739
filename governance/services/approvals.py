"""Approval requests: opening, signing to a quorum, withdrawal, expiry; and the retraining guard.

The state machine (guarded here, never in views):

    pending -> approved   when every role the policy version requires has its count of approvals
    pending -> rejected   when a signer signing as a required role rejects
    pending -> withdrawn  by the requester or a compliance officer
    pending -> expired    when the policy version's maximum approval age passes undecided

Every other transition is refused with 409 `invalid_transition`. Each change writes its
audit event in the same transaction; decisions are new Signature rows, never edits.
"""

import datetime as dt
import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import errors
from governance.audit import AuditAction, audit_event_record
from governance.canonical import canonical_bytes
from governance.environments import environment_require_known
from governance.models import ApprovalPolicy, ApprovalRequest, Signature
from governance.permissions import Action, user_can, user_roles
from governance.selectors import (
    evidence_for_deployment,
    evidence_for_retraining,
    model_live_versions,
    model_version_reports,
    policy_current,
    report_refs,
    user_printed_name,
)
from governance.services.notifications import approval_notification_schedule
from governance.services.signatures import (
    approval_request_evidence_changes,
    approval_request_record_sha256,
    signing_failures_reset,
    signing_reauthenticate,
)
from mlops_site.common.roles import Role
from registry.models import ModelVersion
from registry.services import model_version_status_set

Status = ApprovalRequest.Status
Kind = ApprovalRequest.Kind
Meaning = Signature.Meaning

# The only legal moves; anything else is 409 invalid_transition.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN, Status.EXPIRED}),
    Status.APPROVED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.EXPIRED: frozenset(),
}
# The decisions that are notified (docs/notifications.md); a withdrawal is not.
_TRANSITION_NOTIFIED: dict[str, str] = {
    Status.APPROVED: "approval_request.approved",
    Status.REJECTED: "approval_request.rejected",
    Status.EXPIRED: "approval_request.expired",
}
_TRANSITION_ACTIONS: dict[str, AuditAction] = {
    Status.APPROVED: AuditAction.APPROVAL_APPROVED,
    Status.REJECTED: AuditAction.APPROVAL_REJECTED,
    Status.WITHDRAWN: AuditAction.APPROVAL_WITHDRAWN,
    Status.EXPIRED: AuditAction.APPROVAL_EXPIRED,
}

VERSION_ARCHIVED = "{version} is archived; it cannot be approved."
RETRAINING_REASON_REQUIRED = "A retraining request needs a reason."
NOT_EXPIRED_YET = "Request #{pk} is within its maximum age until {until}."


def evidence_sha256(evidence: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(evidence)).hexdigest()


def _transition(*, request: ApprovalRequest, target: str, actor: Any, reason: str = "",
                system: str | None = None, now: dt.datetime | None = None) -> ApprovalRequest:
    """Move a locked request to `target`, stamp the decision, audit it."""
    if target not in TRANSITIONS[request.status]:
        raise errors.invalid_transition(status=request.status, target=target)
    before = {"status": request.status}
    request.status = target
    request.decided_at = now or timezone.now()
    request.decision_reason = reason
    request.full_clean()
    request.save(update_fields=["status", "decided_at", "decision_reason"])
    audit_event_record(actor=actor, system=system, action=_TRANSITION_ACTIONS[target], target=request,
                       before=before, after={"status": target, "decided_at": request.decided_at},
                       reason=reason or None)
    if target == Status.APPROVED and request.kind == Kind.DEPLOYMENT:
        model_version_status_follow(actor=actor, model_version=request.model_version,
                                    status=ModelVersion.Status.APPROVED,
                                    reason=f"deployment request #{request.pk} ({request.environment}) approved")
    if target in _TRANSITION_NOTIFIED:
        approval_notification_schedule(request=request, event=_TRANSITION_NOTIFIED[target], actor=actor)
    return request


# How far along its life a version is: governance only ever moves the status forward.
_STATUS_RANK: dict[str, int] = {ModelVersion.Status.REGISTERED: 0, ModelVersion.Status.APPROVED: 1,
                                ModelVersion.Status.DEPLOYED: 2}


def model_version_status_follow(*, actor: Any, model_version: Any, status: str, reason: str) -> None:
    """Move `model_version`'s status forward to `status` after a governance decision, in the caller's transaction.

    A version already as far or further along (approved for another environment, already
    deployed) keeps its status, and an archived one is never moved: neither writes an event.
    Otherwise the registry's model_version_status_set moves it and writes
    MODEL_VERSION_STATUS_CHANGED.
    """
    # Lock the row before reading it, so a concurrent archive cannot slip between the look and the move.
    current = ModelVersion.objects.select_for_update(of=("self",)).filter(pk=model_version.pk).values_list(
        "status", "archived_at").first()
    if current is None:
        return
    current_status, archived_at = current
    if archived_at is not None or current_status not in _STATUS_RANK:
        return
    if _STATUS_RANK[current_status] >= _STATUS_RANK[status]:
        return
    moved = model_version_status_set(actor=actor, version=model_version, status=status, reason=reason)
    model_version.status = moved.status


def _locked(request: ApprovalRequest) -> ApprovalRequest:
    return ApprovalRequest.objects.select_for_update(of=("self",)).select_related(
        "policy", "model", "model_version", "requested_by").get(pk=request.pk)


# --- opening ---------------------------------------------------------------------------------------

@transaction.atomic
def approval_request_open(*, actor: Any, kind: str, model_version: Any = None, environment: str = "",
                          model: Any = None, reason: str = "", dataset_versions: list[Any] | tuple = ()
                          ) -> ApprovalRequest:
    """Open a deployment request (model version + environment) or a retraining request (model + reason).

    The model's risk tier selects the policy version in force, which the request keeps. The
    evidence (artifact, dataset and report hashes, policy version) is recorded now and its
    sha256 is what signers sign. Refuses: a role without the right or another team's model
    (403 `permission_denied`), the `unacceptable` tier (409 `not_approvable`), an environment
    the policy does not cover (400 `environment_not_covered`), an archived version (409
    `model_version_archived`), and a second pending request for the same target (409
    `approval_request_pending`). Writes APPROVAL_REQUESTED.
    """
    if kind not in Kind.values:
        raise errors.invalid(f"kind must be one of {', '.join(Kind.values)}.", field="kind")
    if kind == Kind.DEPLOYMENT:
        if model_version is None or not environment:
            raise errors.invalid("A deployment request names a model version and an environment.",
                                 field="model_version" if model_version is None else "environment")
        model = model_version.model
    elif model is None:
        raise errors.invalid("A retraining request names a model.", field="model")
    if not user_can(actor, Action.APPROVAL_REQUEST, model):
        raise errors.action_forbidden(user=actor, action=f"request approvals for {model}")
    if kind == Kind.DEPLOYMENT:
        environment_require_known(environment)
    policy = policy_current(risk_tier=model.risk_tier)
    if not policy.approvable:
        raise errors.not_approvable(model=model, tier=model.risk_tier)

    # Lock the model row: two concurrent opens must not both see "no pending request".
    type(model).objects.select_for_update().filter(pk=model.pk).first()
    pending = ApprovalRequest.objects.filter(model=model, kind=kind, status=Status.PENDING)
    if kind == Kind.DEPLOYMENT:
        if not policy.covers(environment):
            raise errors.environment_not_covered(policy=policy, environment=environment)
        if model_version.archived_at is not None or model_version.status == "archived":
            raise errors.ConflictError(VERSION_ARCHIVED.format(version=model_version),
                                       code="model_version_archived")
        pending = pending.filter(model_version=model_version, environment=environment)
        reports = model_version_reports(model_version)
        evidence = evidence_for_deployment(model_version=model_version, environment=environment, policy=policy,
                                           reports=reports)
    else:
        if not reason or not reason.strip():
            raise errors.invalid(RETRAINING_REASON_REQUIRED, code="reason_required", field="reason")
        reports = []
        evidence = evidence_for_retraining(model=model, policy=policy, reason=reason.strip(),
                                           dataset_versions=list(dataset_versions))
    existing = pending.first()
    if existing is not None:
        raise errors.request_already_open(pk=existing.pk)

    request = ApprovalRequest(
        kind=kind, model=model, model_version=model_version if kind == Kind.DEPLOYMENT else None,
        environment=environment if kind == Kind.DEPLOYMENT else "", reason=(reason or "").strip(),
        policy=policy, evidence=evidence, evidence_sha256="0" * 64, report_refs=report_refs(reports),
        requested_by=actor,
    )
    request.full_clean()
    request.save()
    # The record signed names the request itself, so its hash exists only once the row does.
    request.evidence_sha256 = approval_request_record_sha256(request)
    request.save(update_fields=["evidence_sha256"])
    audit_event_record(actor=actor, action=AuditAction.APPROVAL_REQUESTED, target=request,
                       after={"status": request.status, "kind": kind, "evidence_sha256": request.evidence_sha256,
                              "policy": {"risk_tier": policy.risk_tier, "version": policy.version}},
                       reason=request.reason or None, payload={"evidence": evidence})
    approval_notification_schedule(request=request, event="approval_request.opened")
    return request


# --- signing ---------------------------------------------------------------------------------------

def approval_request_author_ids(request: ApprovalRequest) -> set[int]:
    """Who made what is being approved: the version's authors and registrant (the live version's, for retraining)."""
    from registry.models import ModelVersion

    version_id = request.model_version_id
    if request.kind == Kind.RETRAINING:
        live = request.evidence.get("live_version") or {}
        version_id = live.get("id")
    if version_id is None:
        return set()
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return set()
    return set(version.authors.values_list("pk", flat=True)) | {version.created_by_id}


def _approvals_by_role(signatures: list[Signature]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for signature in signatures:
        if signature.meaning == Meaning.APPROVE:
            counts[signature.role] = counts.get(signature.role, 0) + 1
    return counts


def _role_choose(*, actor: Any, policy: ApprovalPolicy, meaning: str, role: str | None,
                 signatures: list[Signature]) -> str:
    """The role the signer signs as: the one asked for, or the first required role they hold and is open."""
    held = user_roles(actor) - {Role.CI_SERVICE, Role.AUDITOR}
    required = list(policy.required_roles)
    filled = {r for r, n in _approvals_by_role(signatures).items() if n >= policy.required_roles.get(r, 0)}
    username = actor.get_username()
    if meaning == Meaning.REVIEWED:
        if role:
            if role not in held:
                raise errors.signer_role_missing(user=username, why=f"they do not hold {role}")
            return role
        candidates = [r for r in required if r in held] or sorted(held)
        if not candidates:
            raise errors.signer_role_missing(user=username, why="they hold no role that signs")
        return candidates[0]
    if role:
        if role not in policy.required_roles:
            raise errors.signer_role_missing(user=username, why=f"{role} is not required by {policy}")
        if role not in held:
            raise errors.signer_role_missing(user=username, why=f"they do not hold {role}")
        if meaning == Meaning.APPROVE and role in filled:
            raise errors.ConflictError(f"The {role} approvals this request needs are complete.",
                                       code="role_already_filled")
        return role
    held_required = [r for r in required if r in held]
    if not held_required:
        raise errors.signer_role_missing(user=username, why=f"{policy} requires {', '.join(required)}")
    if meaning == Meaning.REJECT:
        open_roles = [r for r in held_required if r not in filled]
        return (open_roles or held_required)[0]
    open_roles = [r for r in held_required if r not in filled]
    if not open_roles:
        raise errors.ConflictError(f"The approvals for {', '.join(held_required)} are complete.",
                                   code="role_already_filled")
    return open_roles[0]


def signer_allowed_check(*, actor: Any) -> None:
    """Refuse (403 `signature_not_allowed`) a CI identity, an auditor or a role that never signs."""
    if Role.CI_SERVICE in user_roles(actor):
        raise errors.signature_not_allowed(user=actor.get_username(), why="CI identities never sign")
    if not user_can(actor, Action.APPROVAL_SIGN):
        raise errors.signature_not_allowed(user=actor.get_username(), why="no role of theirs signs approvals")


def approval_request_sign(*, actor: Any, request: ApprovalRequest, password: str | None, meaning: str,
                          reason: str = "", role: str | None = None) -> Signature:
    """Sign `request` as `actor` (re-authenticating with `password`); returns the Signature.

    Refusals, in order: a CI identity, an auditor or a role that never signs (403
    `signature_not_allowed`); a locked signer (403 `signing_locked`); a wrong or missing
    password (403 `reauthentication_failed`, counted and audit-logged even though the request
    fails); a request no longer pending (409 `invalid_transition`); a rejection without a
    reason (400 `reason_required`); the requester or an author of the version (403
    `separation_of_duties`); a second decisive signature by one person (403
    `separation_of_duties`); a role the signer does not hold or the policy does not require
    (403 `signer_role_missing`); a role whose approvals are complete (409 `role_already_filled`);
    a deployment request whose evidence (artifact sha256, dataset versions, reports, policy
    version) changed since it was opened (409 `evidence_stale`, naming what changed; the request
    stays pending for its requester to withdraw). A refusal writes no signature and no event
    (except the re-authentication bookkeeping).
    Writes APPROVAL_SIGNED and, when the signature decides the request, APPROVAL_APPROVED or
    APPROVAL_REJECTED, all in one transaction; an approved deployment request also moves a
    registered version's status to `approved` (MODEL_VERSION_STATUS_CHANGED).
    """
    signer_allowed_check(actor=actor)
    if meaning not in Meaning.values:
        raise errors.invalid(f"meaning must be one of {', '.join(Meaning.values)}.", field="meaning")
    # Outside the transaction below: a failure's bookkeeping must commit although we refuse.
    signing_reauthenticate(actor=actor, password=password, request=request)
    with transaction.atomic():
        return _sign_locked(actor=actor, request=_locked(request), meaning=meaning, reason=(reason or "").strip(),
                            role=role)


def _sign_locked(*, actor: Any, request: ApprovalRequest, meaning: str, reason: str, role: str | None) -> Signature:
    if request.status != Status.PENDING:
        raise errors.invalid_transition(status=request.status, target="signed")
    if meaning == Meaning.REJECT and not reason:
        raise errors.reason_required()
    if actor.pk == request.requested_by_id:
        raise errors.separation_of_duties(why="the requester cannot sign their own request")
    if actor.pk in approval_request_author_ids(request):
        raise errors.separation_of_duties(why="an author of the model version cannot sign its approval")
    signatures = list(request.signatures.all())
    if meaning != Meaning.REVIEWED and any(
        s.signer_id == actor.pk and s.meaning != Meaning.REVIEWED for s in signatures
    ):
        raise errors.separation_of_duties(why="one person fills one required role once")
    policy = request.policy
    chosen = _role_choose(actor=actor, policy=policy, meaning=meaning, role=role, signatures=signatures)
    # 21 CFR 11.70: the signature binds the record opened; if the evidence under it moved since,
    # signing would bind a record that is no longer true (and the gate would void it anyway).
    changes = approval_request_evidence_changes(request)
    if changes:
        raise errors.evidence_stale(pk=request.pk, changes=changes)

    record_sha = approval_request_record_sha256(request)
    printed_name = user_printed_name(actor)
    signature = Signature(request=request, signer=actor, printed_name=printed_name, role=chosen, meaning=meaning,
                          reason=reason, signed_at=timezone.now(), record_sha256=record_sha)
    signature.full_clean()
    signature.save()
    signing_failures_reset(actor=actor)
    audit_event_record(actor=actor, action=AuditAction.APPROVAL_SIGNED, target=request,
                       after={"signature_id": signature.pk, "printed_name": printed_name, "role": chosen,
                              "meaning": meaning, "signed_at": signature.signed_at, "record_sha256": record_sha},
                       reason=reason or None)
    approval_notification_schedule(request=request, event="approval_request.signed", signature=signature)
    signatures.append(signature)
    if meaning == Meaning.REJECT and chosen in policy.required_roles:
        _transition(request=request, target=Status.REJECTED, actor=actor, reason=reason)
    elif meaning == Meaning.APPROVE and approval_quorum_met(policy=policy, signatures=signatures):
        _transition(request=request, target=Status.APPROVED, actor=actor, reason="quorum of approvals reached")
    return signature


def approval_quorum_met(*, policy: ApprovalPolicy, signatures: list[Signature]) -> bool:
    """Whether approvals cover every required role with its count."""
    counts = _approvals_by_role(signatures)
    return all(counts.get(role, 0) >= count for role, count in policy.required_roles.items())


# --- withdrawal and expiry -------------------------------------------------------------------------

@transaction.atomic
def approval_request_withdraw(*, actor: Any, request: ApprovalRequest, reason: str = "") -> ApprovalRequest:
    """Withdraw a pending request (its requester or a compliance officer); writes APPROVAL_WITHDRAWN.

    Refuses others (403 `permission_denied`) and a request no longer pending (409 `invalid_transition`).
    """
    request = _locked(request)
    if not user_can(actor, Action.APPROVAL_WITHDRAW, request):
        raise errors.action_forbidden(user=actor, action=f"withdraw request #{request.pk}")
    return _transition(request=request, target=Status.WITHDRAWN, actor=actor, reason=(reason or "").strip())


def approval_request_expires_at(request: ApprovalRequest) -> dt.datetime:
    return request.created_at + dt.timedelta(days=request.policy.max_approval_age_days)


@transaction.atomic
def approval_request_expire(*, request: ApprovalRequest, now: dt.datetime | None = None) -> ApprovalRequest:
    """Expire a pending request past its policy version's maximum age (the service acts, not a user).

    Refuses a request no longer pending (409 `invalid_transition`) or not yet due (409 `not_expired`).
    """
    now = now or timezone.now()
    request = _locked(request)
    if request.status != Status.PENDING:
        raise errors.invalid_transition(status=request.status, target=Status.EXPIRED)
    until = approval_request_expires_at(request)
    if until > now:
        raise errors.ConflictError(NOT_EXPIRED_YET.format(pk=request.pk, until=until.isoformat()),
                                   code="not_expired")
    return _transition(request=request, target=Status.EXPIRED, actor=None, system="expiry", now=now,
                       reason="maximum approval age passed undecided")


def approval_requests_expire_due(*, now: dt.datetime | None = None) -> int:
    """Expire every pending request past its maximum age; returns how many (one transaction each)."""
    now = now or timezone.now()
    count = 0
    for request in ApprovalRequest.objects.filter(status=Status.PENDING).select_related("policy"):
        if approval_request_expires_at(request) <= now:
            approval_request_expire(request=request, now=now)
            count += 1
    return count


# --- retraining ------------------------------------------------------------------------------------

def retraining_approval_for(*, model: Any, at: dt.datetime) -> ApprovalRequest | None:
    """The approved retraining request of `model` in force at `at` (decided before it, not past max age)."""
    candidates = ApprovalRequest.objects.filter(
        model=model, kind=Kind.RETRAINING, status=Status.APPROVED, decided_at__lte=at,
    ).select_related("policy").order_by("-decided_at")
    for request in candidates[:5]:
        decided_at = request.decided_at  # never NULL here (decided_at__lte above excludes it)
        if decided_at is not None and decided_at + dt.timedelta(days=request.policy.max_approval_age_days) >= at:
            return request
    return None


def retraining_registration_check(*, actor: Any, model: Any, parent: Any) -> None:
    """Refuse (409 `retraining_not_approved`) a CI registration of a retrain of the live version without approval.

    The registry calls this (through the hook governance installs at ready()) before it
    registers a model version with a parent. Only CI identities are held to it: people
    register experiments freely, and the gate refuses any retrained version without approval.
    """
    if parent is None or Role.CI_SERVICE not in user_roles(actor):
        return
    if parent.pk not in model_live_versions(model=model):
        return
    if retraining_approval_for(model=model, at=timezone.now()) is None:
        raise errors.retraining_not_approved(model=model, parent=parent)
