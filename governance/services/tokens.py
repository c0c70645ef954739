"""API tokens: issue (the secret is shown once, only its sha256 is kept) and revoke.

Default scopes, when the caller names none, follow the owner's roles:
- `ci_service`: registry:read, registry:write, gate:check, deployments:write — what a
  pipeline needs to register what it built, ask the gate and record the deployment;
- `auditor` (read-only): registry:read, audit:read;
- everyone else: every scope. A scope is a ceiling for the token, not a grant of powers:
  role checks in the selectors and services still decide what the user may do.
A scope named explicitly is taken as asked (an unknown one is 400 `unknown_scope`).
"""

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from governance.models import ApiToken
from mlops_site.common.errors import ApplicationError, ConflictError, PermissionDeniedError
from mlops_site.common.roles import Role

KEY_PREFIX = "att_"
PREFIX_LENGTH = 12  # "att_" and 8 characters of the secret: enough to tell tokens apart in a list

Scope = ApiToken.Scope

CI_SERVICE_DEFAULT_SCOPES = (Scope.REGISTRY_READ, Scope.REGISTRY_WRITE, Scope.GATE_CHECK,
                             Scope.DEPLOYMENTS_WRITE)
AUDITOR_DEFAULT_SCOPES = (Scope.REGISTRY_READ, Scope.AUDIT_READ)

TOKEN_SCOPE_UNKNOWN = "Unknown scope {scopes}; the scopes are: {known}."
TOKEN_EXPIRY_PAST = "The expiry time must be in the future."
TOKEN_USER_INACTIVE = "{user} is inactive and cannot hold a token."
TOKEN_ISSUE_FORBIDDEN = "Only the user themself or an administrator may issue a token for {user}."
TOKEN_REVOKE_FORBIDDEN = "Only the token's owner or an administrator may revoke it."
TOKEN_ALREADY_REVOKED = "The token {prefix}… was already revoked."
TOKEN_REASON_REQUIRED = "A reason is required to revoke a token."

CLI_SYSTEM_ACTOR = "cli"


def api_token_key_hash(key: str) -> str:
    """The sha256 under which a key is stored (what the authentication class looks up)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_default_scopes(user: Any) -> list[str]:
    """The scopes a token for `user` gets when none are named (see the module docstring)."""
    roles = set(user.groups.values_list("name", flat=True))
    if Role.CI_SERVICE in roles:
        chosen: Iterable[str] = CI_SERVICE_DEFAULT_SCOPES
    elif Role.AUDITOR in roles and not user.is_superuser:
        chosen = AUDITOR_DEFAULT_SCOPES
    else:
        chosen = Scope.values
    return _scopes_ordered(chosen)


def _scopes_ordered(scopes: Iterable[str]) -> list[str]:
    # The enum's order, without duplicates: the same request always stores the same list.
    wanted = {str(scope) for scope in scopes}
    return [scope for scope in Scope.values if scope in wanted]


def _scopes_parse(scopes: Iterable[str] | None, user: Any) -> list[str]:
    scopes = [str(scope) for scope in (scopes or ())]
    if not scopes:
        return api_token_default_scopes(user)
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ApplicationError(
            TOKEN_SCOPE_UNKNOWN.format(scopes=", ".join(unknown), known=", ".join(Scope.values)),
            code="unknown_scope",
            fields={"scopes": [f"Unknown scope: {scope}" for scope in unknown]},
        )
    return _scopes_ordered(scopes)


def _is_admin(actor: Any, perm: str) -> bool:
    return actor.is_active and (actor.is_superuser or actor.has_perm(perm))


@transaction.atomic
def api_token_issue(
    *,
    actor: Any,
    user: Any,
    scopes: Iterable[str] | None = None,
    name: str = "",
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token for `user`; returns the saved token and its key, which is never stored.

    `actor` is the user asking (the owner, or an administrator), or None for the command
    line. Scopes default by role (module docstring). Refuses an unknown scope
    (400 `unknown_scope`), an expiry in the past (400 `invalid_expiry`), an inactive user
    (400 `user_inactive`) and someone else's token asked by a non-administrator
    (403 `token_issue_forbidden`). Records TOKEN_ISSUED with the prefix, scopes and expiry.
    """
    if actor is not None and actor.pk != user.pk and not _is_admin(actor, "governance.add_apitoken"):
        raise PermissionDeniedError(TOKEN_ISSUE_FORBIDDEN.format(user=user.get_username()),
                                    code="token_issue_forbidden")
    if not user.is_active:
        raise ApplicationError(TOKEN_USER_INACTIVE.format(user=user.get_username()), code="user_inactive")
    chosen = _scopes_parse(scopes, user)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ApplicationError(TOKEN_EXPIRY_PAST, code="invalid_expiry",
                               fields={"expires_at": [TOKEN_EXPIRY_PAST]})

    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name or "", prefix=key[:PREFIX_LENGTH], key_sha256=api_token_key_hash(key),
        scopes=chosen, created_at=now, expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_event_record(
        actor=actor, system=CLI_SYSTEM_ACTOR, action=AuditAction.TOKEN_ISSUED, target=token,
        object_repr=f"{token.prefix}… ({user.get_username()})",
        after={
            "user": user.get_username(), "name": token.name, "prefix": token.prefix,
            "scopes": chosen, "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken, reason: str) -> ApiToken:
    """Revoke `token` at once and record TOKEN_REVOKED with the reason; returns the token.

    `actor` is the owner or an administrator, or None for the command line. Refuses an empty
    reason (400 `reason_required`), anyone else (403 `token_revoke_forbidden`) and a token
    already revoked (409 `token_already_revoked`).
    """
    if not (reason or "").strip():
        raise ApplicationError(TOKEN_REASON_REQUIRED, code="reason_required",
                               fields={"reason": [TOKEN_REASON_REQUIRED]})
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if actor is not None and actor.pk != token.user_id and not _is_admin(actor, "governance.change_apitoken"):
        raise PermissionDeniedError(TOKEN_REVOKE_FORBIDDEN, code="token_revoke_forbidden")
    if token.revoked_at is not None:
        raise ConflictError(TOKEN_ALREADY_REVOKED.format(prefix=token.prefix), code="token_already_revoked")
    token.revoked_at = timezone.now()
    token.full_clean()
    token.save(update_fields=["revoked_at"])
    audit_event_record(
        actor=actor, system=CLI_SYSTEM_ACTOR, action=AuditAction.TOKEN_REVOKED, target=token,
        object_repr=f"{token.prefix}… ({token.user.get_username()})",
        before={"revoked_at": None}, after={"revoked_at": token.revoked_at.isoformat()},
        reason=reason.strip(), payload={"prefix": token.prefix},
    )
    return token
