"""Role grants and revocations. A role is a Django group created by migration (CONTRACT.md Roles).

Decision: granting a role the user already holds is refused with 409 `role_already_granted`
(and revoking one they do not hold with 409 `role_not_granted`) rather than being a silent
no-op. A refusal changes nothing and writes no event, so every ROLE_GRANTED event in the log
marks a real change of someone's powers, and a caller that wants idempotence checks first
(`user_has_role`), as `manage.py create_demo_users` does.
"""

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from governance.audit import AuditAction, audit_event_record
from mlops_site.common.errors import ApplicationError, ConflictError, PermissionDeniedError
from mlops_site.common.roles import Role

ROLE_UNKNOWN = "Unknown role {role!r}; the roles are: {roles}."
ROLE_ALREADY_GRANTED = "{user} already holds the role {role}."
ROLE_NOT_GRANTED = "{user} does not hold the role {role}."
ROLE_CHANGE_FORBIDDEN = "Only an administrator may grant or revoke roles."
ROLE_GROUP_MISSING = "The group for role {role} does not exist; run the migrations."

# Recorded as the actor when a role changes from the command line (manage.py), not a user.
CLI_SYSTEM_ACTOR = "cli"


def _role_parse(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ApplicationError(
            ROLE_UNKNOWN.format(role=role, roles=", ".join(Role.values)),
            code="unknown_role",
            fields={"role": [f"Not one of {', '.join(Role.values)}."]},
        ) from None


def _actor_check(actor: Any) -> None:
    # None is the operator at the command line, who already holds the database's keys.
    if actor is None:
        return
    if not (actor.is_active and (actor.is_superuser or actor.has_perm("auth.change_user"))):
        raise PermissionDeniedError(ROLE_CHANGE_FORBIDDEN, code="role_change_forbidden")


def _group_get(role: Role) -> Group:
    group = Group.objects.filter(name=role.value).first()
    if group is None:
        raise ApplicationError(ROLE_GROUP_MISSING.format(role=role.value), code="role_group_missing",
                               status=500)
    return group


def user_has_role(user: Any, role: Role | str) -> bool:
    """Whether `user` holds `role` (a read, for callers that want to grant idempotently)."""
    return user.groups.filter(name=_role_parse(role).value).exists()


def _roles_of(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def _role_change(*, actor: Any, user: Any, role: Role | str, grant: bool) -> Any:
    """Grant or revoke one role under a lock on the user row, with its audit event."""
    role = _role_parse(role)
    _actor_check(actor)
    group = _group_get(role)
    # Lock the user row so two concurrent changes cannot both see the same state and log twice.
    type(user).objects.select_for_update().filter(pk=user.pk).first()
    held = user.groups.filter(pk=group.pk).exists()
    if grant and held:
        raise ConflictError(ROLE_ALREADY_GRANTED.format(user=user.get_username(), role=role.value),
                            code="role_already_granted")
    if not grant and not held:
        raise ConflictError(ROLE_NOT_GRANTED.format(user=user.get_username(), role=role.value),
                            code="role_not_granted")
    before = _roles_of(user)
    (user.groups.add if grant else user.groups.remove)(group)
    audit_event_record(
        actor=actor, system=CLI_SYSTEM_ACTOR, action=AuditAction.ROLE_GRANTED if grant else AuditAction.ROLE_REVOKED,
        target=user, object_repr=user.get_username(), before={"roles": before},
        after={"roles": _roles_of(user)}, payload={"role": role.value},
    )
    return user


@transaction.atomic
def role_grant(*, actor: Any, user: Any, role: Role | str) -> Any:
    """Give `user` the role `role` and record ROLE_GRANTED; returns the user.

    `actor` is the administrator doing it, or None for the command line. Refuses an unknown
    role (400 `unknown_role`), a non-administrator actor (403 `role_change_forbidden`) and a
    role already held (409 `role_already_granted`); a refusal changes nothing.
    """
    return _role_change(actor=actor, user=user, role=role, grant=True)


@transaction.atomic
def role_revoke(*, actor: Any, user: Any, role: Role | str) -> Any:
    """Take the role `role` from `user` and record ROLE_REVOKED; returns the user.

    Refuses an unknown role (400 `unknown_role`), a non-administrator actor
    (403 `role_change_forbidden`) and a role the user does not hold (409 `role_not_granted`).
    """
    return _role_change(actor=actor, user=user, role=role, grant=False)
