"""Coarse API gates. Object-level access lives in each app's selectors (`<entity>_get_for_user`)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from mlops_site.common.roles import Role

INSUFFICIENT_SCOPE_MESSAGE = "The token lacks the scope this operation needs: {scope}."


class TokenScopePermission(BasePermission):
    """A request made with an API token needs the scope the view names for its method.

    Views declare `required_scopes = {"read": "registry:read", "write": "registry:write"}`.
    Session users (the admin, the browsable API) are not limited by scopes.
    """

    message = "The token lacks the scope this operation needs."
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None or not hasattr(token, "has_scope"):
            return True
        scopes = getattr(view, "required_scopes", {})
        needed = scopes.get("read" if request.method in SAFE_METHODS else "write")
        if needed is None or token.has_scope(needed):
            return True
        # DRF reads the message from this instance, made for this request only.
        self.message = INSUFFICIENT_SCOPE_MESSAGE.format(scope=needed)
        return False


class NotAuditorForWrites(BasePermission):
    """The auditor role reads everything and writes nothing."""

    message = "Auditors have read-only access."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return True  # IsAuthenticated answers for the anonymous
        # The role names, read once per request and kept where governance.permissions.user_roles
        # keeps them (`_attest_roles`), so the service's own role check and the audit event's
        # actor snapshot ask the database no more (docs/BENCHMARKS.md, Gate).
        roles = getattr(user, "_attest_roles", None)
        if roles is None:
            roles = set(user.groups.values_list("name", flat=True))
            user._attest_roles = roles
        return Role.AUDITOR not in roles or user.is_superuser
