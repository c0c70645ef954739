"""Creating user accounts, so that a new identity enters the audit log like any other change."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from governance.audit import AuditAction, audit_event_record
from mlops_site.common.errors import ConflictError, PermissionDeniedError

USER_EXISTS = "A user named {username} already exists."
USER_CREATE_FORBIDDEN = "Only an administrator may create users."

CLI_SYSTEM_ACTOR = "cli"


@transaction.atomic
def user_create(
    *,
    actor: Any,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> Any:
    """Create a user (password checked by the project's validators) and record USER_CREATED.

    `actor` is an administrator, or None for the command line. Refuses a taken username
    (409 `user_exists`), a weak password (400 `validation_error`) and a non-administrator
    actor (403 `user_create_forbidden`). Roles are granted separately (role_grant).
    """
    allowed = actor is None or (actor.is_active and (actor.is_superuser or actor.has_perm("auth.add_user")))
    if not allowed:
        raise PermissionDeniedError(USER_CREATE_FORBIDDEN, code="user_create_forbidden")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ConflictError(USER_EXISTS.format(username=username), code="user_exists")
    user = User(username=username, email=email, first_name=first_name, last_name=last_name,
                is_staff=is_staff, is_superuser=is_superuser)
    validate_password(password, user=user)
    user.set_password(password)
    user.full_clean()
    user.save()
    audit_event_record(
        actor=actor, system=CLI_SYSTEM_ACTOR, action=AuditAction.USER_CREATED, target=user,
        object_repr=username,
        after={"username": username, "email": email, "full_name": user.get_full_name(),
               "is_staff": is_staff, "is_superuser": is_superuser},
    )
    return user
