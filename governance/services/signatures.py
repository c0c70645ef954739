"""Electronic signatures (21 CFR 11.50, 11.70, 11.200): re-authentication, manifestation, binding.

A signature binds to the request's record by `record_sha256` = sha256 of the canonical JSON
of the record (the request's identity and the evidence it is about). Copying a signature to
another request, or changing one byte of the record after signing, makes
`signature_verify` false, and the gate refuses approvals whose signatures do not verify.

Re-authentication: every signature needs the signer's password, in the API as in the admin
(a token alone never signs). Failures are counted; the fifth failure in a row locks the
user's signing until a compliance officer unlocks it. Each failure and the lock are
audit-logged in their own committed transaction, because the request that carried the
wrong password is refused and rolls back. A successful signature resets the count.

Evidence: a signature binds the record as it was opened, so it must still be the truth when
signed. `evidence_changes` is the one comparison of recorded and current evidence (artifact
sha256, dataset versions, reports, policy version): the gate voids approvals with it, the
signing service refuses (409 `evidence_stale`) a request whose evidence moved, and the admin's
sign-off page warns with the same words.
"""

import hashlib
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from governance.canonical import canonical_bytes, timestamp_canonical
from governance.errors import action_forbidden, invalid, reauthentication_failed, signing_locked
from governance.models import ApprovalRequest, Signature, SigningCredentialState
from governance.permissions import Action, user_can
from governance.selectors import evidence_for_deployment, policy_current

SIGNING_FAILURE_LIMIT = 5
NOT_LOCKED = "Signing is not locked for {user}."


def approval_request_record(request: ApprovalRequest) -> dict[str, Any]:
    """The record people sign: which request, what about, under which policy version, on what evidence."""
    return {
        "request_id": request.pk,
        "kind": request.kind,
        "model_id": request.model_id,
        "model_version_id": request.model_version_id,
        "environment": request.environment,
        "reason": request.reason,
        "requested_by": request.requested_by_id,
        "opened_at": timestamp_canonical(request.created_at),
        "policy_id": request.policy_id,
        "evidence": request.evidence,
    }


def approval_request_record_sha256(request: ApprovalRequest) -> str:
    """sha256 of the canonical JSON of the record signed (governance.canonical)."""
    return hashlib.sha256(canonical_bytes(approval_request_record(request))).hexdigest()


def signature_verify(signature: Signature, request: ApprovalRequest | None = None) -> bool:
    """Whether the signature still binds to its request's record, byte for byte.

    Passing `request` (the signature's own, already loaded) saves a query; a signature whose
    request_id is not that request's never verifies.
    """
    request = request if request is not None else signature.request
    if signature.request_id != request.pk:
        return False
    record_sha = approval_request_record_sha256(request)
    return signature.record_sha256 == record_sha == request.evidence_sha256


# The parts of a deployment request's evidence an approval stands on, in the order they are named.
EVIDENCE_BOUND = ("artifact_sha256", "datasets", "reports", "policy")


def evidence_changes(*, recorded: dict[str, Any] | None, current: dict[str, Any] | None) -> list[str]:
    """The bound parts (EVIDENCE_BOUND) that differ between recorded and current evidence, in that order.

    The one comparison shared by the gate (approval_missing, report_stale), the signing
    service (evidence_stale) and the admin's sign-off page.
    """
    recorded, current = recorded or {}, current or {}
    return [key for key in EVIDENCE_BOUND if recorded.get(key) != current.get(key)]


def _policy_words(policy: dict[str, Any] | None) -> str:
    policy = policy or {}
    return f"{policy.get('risk_tier')} policy v{policy.get('version')}"


def evidence_changes_describe(*, recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed, in words, one entry per part `evidence_changes` names (empty when nothing did)."""
    words = {
        "artifact_sha256": lambda: (f"the artifact sha256 was {recorded.get('artifact_sha256')} and is now "
                                    f"{current.get('artifact_sha256')}"),
        "datasets": lambda: "the dataset versions (or their sha256) are not the ones recorded",
        "reports": lambda: "the reports (or their sha256) are not the ones recorded",
        "policy": lambda: (f"it was opened under the {_policy_words(recorded.get('policy'))} and the "
                           f"{_policy_words(current.get('policy'))} is in force now"),
    }
    return [words[key]() for key in evidence_changes(recorded=recorded, current=current)]


def approval_request_evidence_changes(request: ApprovalRequest) -> list[str]:
    """What moved, in words, between a deployment request's recorded evidence and the evidence now.

    Recomputes the current evidence (the tier's policy in force, the version's artifact,
    dataset versions and reports). Retraining requests record no evidence the gate binds,
    so they never change here.
    """
    version = request.model_version
    if request.kind != ApprovalRequest.Kind.DEPLOYMENT or version is None:
        return []
    current = evidence_for_deployment(model_version=version, environment=request.environment,
                                      policy=policy_current(risk_tier=version.model.risk_tier))
    return evidence_changes_describe(recorded=request.evidence or {}, current=current)


def _signing_state(user: Any) -> SigningCredentialState:
    SigningCredentialState.objects.get_or_create(user=user)
    return SigningCredentialState.objects.select_for_update().get(user=user)


def signing_reauthenticate(*, actor: Any, password: str | None, request: ApprovalRequest | None = None) -> None:
    """Check the signer's password; on failure count it, lock at the limit, and raise.

    Runs the bookkeeping of a failure in its own transaction, committed before raising, so
    the failure and the lock survive the refused request (call it outside any transaction
    that the refusal rolls back). Raises 403 `signing_locked` or `reauthentication_failed`.
    """
    state = SigningCredentialState.objects.filter(user=actor).first()
    if state is not None and state.locked_at is not None:
        raise signing_locked(user=actor.get_username(), count=state.failed_attempts)
    ok = bool(password) and authenticate(request=None, username=actor.get_username(), password=password)
    if ok and ok.pk == actor.pk:
        return
    with transaction.atomic():
        state = _signing_state(actor)
        state.failed_attempts += 1
        locked_now = state.failed_attempts >= SIGNING_FAILURE_LIMIT and state.locked_at is None
        if locked_now:
            state.locked_at = timezone.now()
        state.save(update_fields=["failed_attempts", "locked_at", "updated_at"])
        target = {"object_type": "auth.user", "object_id": actor.pk, "object_repr": actor.get_username()}
        audit_event_record(
            actor=actor, action=AuditAction.SIGNING_REAUTH_FAILED, **target,
            after={"failed_attempts": state.failed_attempts},
            payload={"approval_request": request.pk if request is not None else None,
                     "password_given": bool(password)},
        )
        if locked_now:
            audit_event_record(actor=actor, action=AuditAction.SIGNING_LOCKED, **target,
                               before={"locked": False}, after={"locked": True, "failed_attempts":
                                                                state.failed_attempts},
                               reason=f"{SIGNING_FAILURE_LIMIT} failed re-authentications")
    if locked_now:
        raise signing_locked(user=actor.get_username(), count=state.failed_attempts)
    raise reauthentication_failed(count=state.failed_attempts, limit=SIGNING_FAILURE_LIMIT)


def signing_failures_reset(*, actor: Any) -> None:
    """After a good re-authentication the count starts again (in the caller's transaction)."""
    SigningCredentialState.objects.filter(user=actor, failed_attempts__gt=0, locked_at__isnull=True).update(
        failed_attempts=0, updated_at=timezone.now())


@transaction.atomic
def signing_unlock(*, actor: Any, user: Any, reason: str) -> SigningCredentialState:
    """Lift a signing lock (compliance officers, administrators); records SIGNING_UNLOCKED."""
    if not user_can(actor, Action.SIGNING_UNLOCK):
        raise action_forbidden(user=actor, action="unlock signing")
    if not reason or not reason.strip():
        raise invalid("Unlocking needs a reason.", code="reason_required", field="reason")
    state = _signing_state(user)
    if state.locked_at is None:
        raise invalid(NOT_LOCKED.format(user=user.get_username()), code="signing_not_locked")
    before = {"locked": True, "failed_attempts": state.failed_attempts}
    state.locked_at = None
    state.failed_attempts = 0
    state.save(update_fields=["failed_attempts", "locked_at", "updated_at"])
    audit_event_record(actor=actor, action=AuditAction.SIGNING_UNLOCKED, object_type="auth.user",
                       object_id=user.pk, object_repr=user.get_username(), before=before,
                       after={"locked": False, "failed_attempts": 0}, reason=reason.strip())
    return state
