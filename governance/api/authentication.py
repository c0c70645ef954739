import hashlib

from django.utils import timezone
from rest_framework import authentication, exceptions

from governance.hot_reads import token_with_roles
from governance.models import ApiToken

BEARER_MESSAGE = "Bearer authentication is not supported: send the API token as `Authorization: Token <key>`."


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`; the key is looked up by its sha256, never stored."""

    keyword = "Token"

    def authenticate(self, request):
        # DRF ignores any scheme but its keyword, so `Bearer <key>` (what OAuth clients send)
        # answered "credentials were not provided"; say which scheme is expected instead.
        # A string test of the header: no query on the gate's hot path.
        scheme = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[0]
        if scheme.lower() == "bearer":
            raise exceptions.AuthenticationFailed(BEARER_MESSAGE)
        return super().authenticate(request)

    def authenticate_credentials(self, key: str):
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        # The token, its user and the user's roles in one statement: the roles are what every
        # permission check of the request asks (governance.permissions.user_roles' cache).
        found = token_with_roles(digest)
        if found is None or not found[0].is_active():
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        token, roles = found
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            # Throttled bookkeeping: not a state change of the governed record, so no audit event.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # Every audit event this request records names the token, not only its user.
        token.user._attest_token_prefix = token.prefix  # type: ignore[attr-defined]  # read by actor_snapshot
        token.user._attest_roles = roles  # type: ignore[attr-defined]  # read by governance.permissions.user_roles
        return token.user, token
