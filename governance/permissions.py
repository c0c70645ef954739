"""The permission matrix: which role may do which action, in one place (docs/roles.md shows it).

The API views, the admin and the services all ask `user_can`. Object-level rules sit beside
the matrix: writes about a model need membership of its team or a governance role; a
request is withdrawn by its requester or a compliance officer. The auditor reads all and
writes nothing; ci_service never signs.
"""

from typing import Any

from mlops_site.common.roles import GOVERNANCE_READ_ROLES, Role


class Action:
    REGISTRY_READ = "registry.read"
    REGISTRY_WRITE = "registry.write"
    APPROVAL_READ = "approval.read"
    APPROVAL_REQUEST = "approval.request"
    APPROVAL_SIGN = "approval.sign"
    APPROVAL_WITHDRAW = "approval.withdraw"
    POLICY_READ = "policy.read"
    POLICY_UPDATE = "policy.update"
    SIGNING_UNLOCK = "signing.unlock"
    GATE_EVALUATE = "gate.evaluate"
    DEPLOYMENT_READ = "deployment.read"
    DEPLOYMENT_RECORD = "deployment.record"
    AUDIT_READ = "audit.read"
    ALERT_MANAGE = "alert.manage"
    ROLE_MANAGE = "role.manage"


ALL_ACTIONS = frozenset(value for key, value in vars(Action).items() if key.isupper())
_READS = {Action.REGISTRY_READ, Action.APPROVAL_READ, Action.POLICY_READ, Action.DEPLOYMENT_READ,
          Action.AUDIT_READ}
# The audit log is one for the whole service (every team's events), so only the governance
# roles read it (governance.api.audit_views.AuditReaderPermission, the admin's seed).
_TEAM_READS = _READS - {Action.AUDIT_READ}

# role -> the actions it may take. Reads are scoped further by selectors (team membership).
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.DATA_SCIENTIST: frozenset(_TEAM_READS | {Action.REGISTRY_WRITE, Action.APPROVAL_REQUEST,
                                             Action.APPROVAL_WITHDRAW, Action.GATE_EVALUATE}),
    Role.ML_ENGINEER: frozenset(_TEAM_READS | {Action.REGISTRY_WRITE, Action.APPROVAL_REQUEST, Action.APPROVAL_WITHDRAW,
                                          Action.APPROVAL_SIGN, Action.GATE_EVALUATE,
                                          Action.DEPLOYMENT_RECORD}),
    Role.MODEL_VALIDATOR: frozenset(_READS | {Action.APPROVAL_SIGN, Action.GATE_EVALUATE}),
    Role.COMPLIANCE_OFFICER: frozenset(_READS | {Action.APPROVAL_REQUEST, Action.APPROVAL_SIGN,
                                                 Action.APPROVAL_WITHDRAW, Action.POLICY_UPDATE,
                                                 Action.SIGNING_UNLOCK, Action.GATE_EVALUATE,
                                                 Action.ALERT_MANAGE}),
    Role.RISK_OFFICER: frozenset(_READS | {Action.APPROVAL_REQUEST, Action.APPROVAL_SIGN, Action.GATE_EVALUATE,
                                           Action.ALERT_MANAGE}),
    Role.AUDITOR: frozenset(_READS),
    Role.CI_SERVICE: frozenset({Action.REGISTRY_READ, Action.REGISTRY_WRITE, Action.GATE_EVALUATE,
                                Action.DEPLOYMENT_READ, Action.DEPLOYMENT_RECORD}),
}

# Never granted to these roles, whatever else they hold: a CI identity signs nothing, the
# auditor changes nothing (a second role cannot lift these).
FORBIDDEN: dict[str, frozenset[str]] = {
    Role.CI_SERVICE: frozenset({Action.APPROVAL_SIGN}),
    Role.AUDITOR: ALL_ACTIONS - _READS,
}


def user_roles(user: Any) -> set[str]:
    """The role names a user holds (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_attest_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._attest_roles = cached
    return cached


def _model_of(obj: Any) -> Any:
    for attr in ("model",):
        if hasattr(obj, attr) and not isinstance(obj, type):
            value = getattr(obj, attr)
            if hasattr(value, "team_id"):
                return value
    return obj if hasattr(obj, "team_id") else None


def user_can(user: Any, action: str, obj: Any = None) -> bool:
    """Whether `user` may take `action` (on `obj`, when given: a model, version or request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    roles = user_roles(user)
    if any(action in FORBIDDEN.get(role, ()) for role in roles):
        return False
    if user.is_superuser:
        # Administrators run the service but sign only through a role they hold.
        return action != Action.APPROVAL_SIGN
    if not any(action in PERMISSIONS.get(role, ()) for role in roles):
        return False
    if obj is None or action in _READS:
        return True
    if action == Action.APPROVAL_WITHDRAW and getattr(obj, "requested_by_id", None) is not None:
        return obj.requested_by_id == user.pk or Role.COMPLIANCE_OFFICER in roles
    if action in (Action.REGISTRY_WRITE, Action.APPROVAL_REQUEST, Action.DEPLOYMENT_RECORD):
        model = _model_of(obj)
        if model is None or roles & GOVERNANCE_READ_ROLES:
            return True
        return model.team.members.filter(pk=user.pk).exists()
    return True


def user_reads_all(user: Any) -> bool:
    """Whether reads of `user` span every team (governance roles, administrators)."""
    return bool(user.is_superuser or user_roles(user) & GOVERNANCE_READ_ROLES)
