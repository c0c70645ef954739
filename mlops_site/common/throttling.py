"""Rate limits for the API: per token, per signed-in user, per anonymous address.

Rates come from `settings.ATTEST_THROTTLE_RATES` (env-overridable, see settings.py) and are read
on every request, so a test or an operator can change them without reloading DRF's settings.
A request past its rate gets 429 with `Retry-After` and the error body
`{"error": {"code": "rate_limited", …}}` (mlops_site/common/api/exception_handler.py).

Counters live in Django's default cache: per process with the default local-memory cache,
shared between gunicorn workers and hosts when `ATTEST_CACHE_URL` names a Redis cache.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle whose rate is looked up in ATTEST_THROTTLE_RATES at request time."""

    def get_rate(self):
        return (getattr(settings, "ATTEST_THROTTLE_RATES", {}) or {}).get(self.scope)


class TokenRateThrottle(_SettingsRateThrottle):
    """Requests made with an API token, counted per token (two tokens of one user count apart)."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = request.auth
        digest = getattr(token, "key_sha256", None)
        if not digest:
            return None
        return self.cache_format % {"scope": self.scope, "ident": digest[:32]}


class UserRateThrottle(_SettingsRateThrottle):
    """Requests of a signed-in user without a token (the admin's session, the browsable API)."""

    scope = "user"

    def get_cache_key(self, request, view):
        user = request.user
        if getattr(request.auth, "key_sha256", None) or not getattr(user, "is_authenticated", False):
            return None
        # The join time too: a primary key a deleted user left behind starts a fresh count.
        joined = int(user.date_joined.timestamp() * 1_000_000) if getattr(user, "date_joined", None) else 0
        return self.cache_format % {"scope": self.scope, "ident": f"{user.pk}-{joined}"}


class AnonRateThrottle(_SettingsRateThrottle):
    """Requests without credentials, counted per client address (they all end in 401 anyway)."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if getattr(request.user, "is_authenticated", False):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
