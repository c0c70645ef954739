"""Governance refusals: one constructor per stable error code, so each code is spelled once.

Services raise these; the API's one exception handler renders {"error": {"code", "message", "fields"}}.
"""

from typing import Any

from mlops_site.common.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError

INVALID_TRANSITION = "The request is {status}; it cannot become {target}."
SIGNATURE_NOT_ALLOWED = "{user} may not sign: {why}."
SIGNING_LOCKED = "Signing is locked for {user} after {count} failed re-authentications."
REAUTH_FAILED = "Re-authentication failed: the password is wrong or missing ({count} of {limit} attempts)."
SEPARATION_OF_DUTIES = "Separation of duties: {why}."
SIGNER_ROLE_MISSING = "{user} does not hold a role this request still needs: {why}."
REASON_REQUIRED = "A rejection needs a reason."
NOT_APPROVABLE = "{model} is of the {tier} risk tier, which can never be approved for deployment."
ENVIRONMENT_NOT_COVERED = ("The {tier} policy v{version} does not cover environment {environment!r}; "
                           "it covers {covered}.")
ENVIRONMENT_UNKNOWN = ("Unknown environment {environment!r}: this installation deploys to {known} "
                       "(ATTEST_ENVIRONMENTS; names are case-sensitive).")
REQUEST_ALREADY_OPEN = "Request #{pk} for the same target is already pending."
ACTION_FORBIDDEN = "{user} may not {action}."
RETRAINING_NOT_APPROVED = "Retraining {model} from its live version {parent} needs an approved retraining request."
DECISION_INVALID = "Gate decision {decision_id} does not allow this deployment: {why}."
EVIDENCE_STALE = ("The evidence of request #{pk} changed since it was opened: {what}. A signature must bind the "
                  "current record (21 CFR 11.70), so this request can no longer be signed; the requester can "
                  "withdraw it and open a new one.")


def invalid_transition(*, status: str, target: str) -> ConflictError:
    return ConflictError(INVALID_TRANSITION.format(status=status, target=target), code="invalid_transition",
                         fields={"status": [status]})


def signature_not_allowed(*, user: Any, why: str) -> PermissionDeniedError:
    return PermissionDeniedError(SIGNATURE_NOT_ALLOWED.format(user=user, why=why), code="signature_not_allowed")


def signing_locked(*, user: Any, count: int) -> PermissionDeniedError:
    return PermissionDeniedError(SIGNING_LOCKED.format(user=user, count=count), code="signing_locked")


def reauthentication_failed(*, count: int, limit: int) -> PermissionDeniedError:
    return PermissionDeniedError(REAUTH_FAILED.format(count=count, limit=limit), code="reauthentication_failed",
                                 fields={"password": ["Wrong or missing password."]})


def separation_of_duties(*, why: str) -> PermissionDeniedError:
    return PermissionDeniedError(SEPARATION_OF_DUTIES.format(why=why), code="separation_of_duties")


def signer_role_missing(*, user: Any, why: str) -> PermissionDeniedError:
    return PermissionDeniedError(SIGNER_ROLE_MISSING.format(user=user, why=why), code="signer_role_missing")


def reason_required() -> ApplicationError:
    return ApplicationError(REASON_REQUIRED, code="reason_required", fields={"reason": [REASON_REQUIRED]})


def not_approvable(*, model: Any, tier: str) -> ConflictError:
    return ConflictError(NOT_APPROVABLE.format(model=model, tier=tier), code="not_approvable")


def environment_not_covered(*, policy: Any, environment: str) -> ApplicationError:
    message = ENVIRONMENT_NOT_COVERED.format(tier=policy.risk_tier, version=policy.version,
                                             environment=environment, covered=", ".join(policy.environments))
    return ApplicationError(message, code="environment_not_covered", fields={"environment": [message]})


def environment_unknown(*, environment: str, known: Any, field: str = "environment") -> ApplicationError:
    message = ENVIRONMENT_UNKNOWN.format(environment=environment, known=", ".join(known))
    return ApplicationError(message, code="environment_unknown", fields={field: [message]})


def request_already_open(*, pk: int) -> ConflictError:
    return ConflictError(REQUEST_ALREADY_OPEN.format(pk=pk), code="approval_request_pending")


def action_forbidden(*, user: Any, action: str) -> PermissionDeniedError:
    return PermissionDeniedError(ACTION_FORBIDDEN.format(user=user, action=action), code="permission_denied")


def retraining_not_approved(*, model: Any, parent: Any) -> ConflictError:
    return ConflictError(RETRAINING_NOT_APPROVED.format(model=model, parent=parent),
                         code="retraining_not_approved")


def decision_invalid(*, decision_id: Any, why: str, code: str = "gate_decision_invalid") -> ConflictError:
    return ConflictError(DECISION_INVALID.format(decision_id=decision_id, why=why), code=code,
                         fields={"decision_id": [why]})


def evidence_stale(*, pk: int, changes: list[str]) -> ConflictError:
    """`changes`: what moved, in words (governance.services.signatures.evidence_changes_describe)."""
    return ConflictError(EVIDENCE_STALE.format(pk=pk, what="; ".join(changes)), code="evidence_stale",
                         fields={"evidence": changes})


def not_found(message: str, *, field: str | None = None) -> NotFoundError:
    return NotFoundError(message, fields={field: [message]} if field else None)


def invalid(message: str, *, code: str = "validation_error", field: str | None = None) -> ApplicationError:
    return ApplicationError(message, code=code, fields={field: [message]} if field else None)
