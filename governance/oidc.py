"""Sign-in to the admin with OpenID Connect (authorization code flow with PKCE), issue 8.

Written on the standard library and `cryptography` (already a dependency) rather than a new
package: discovery (`/.well-known/openid-configuration`), the authorization redirect with
`state`, `nonce` and an S256 code challenge, the code exchange at the token endpoint
(client_secret_basic), and the RS256 `id_token` checked against the provider's JWKS (signature,
`iss`, `aud`, `exp`, `iat`, `nonce`). Password sign-in stays for the embedded default.

Users: found by the claim `ATTEST_OIDC_USERNAME_CLAIM` (default `preferred_username`), created on
first sign-in (`governance.services.users.user_create`, a random password nobody knows). Roles:
the claim `ATTEST_OIDC_ROLES_CLAIM` (default `groups`) mapped through `ATTEST_OIDC_ROLE_MAP`
(`{"idp-group": "attest_role"}`); the user's Attest roles are made to equal the mapped ones at each
sign-in (role_grant / role_revoke, audited). A user with at least one role is staff (the admin).

Signing still re-authenticates with the user's Attest password (governance.services.signatures):
an OIDC-only user has none, so signing needs a password set by an administrator, or a future
step-up through the provider (`max_age`/`auth_time`); the sign-in time is kept in the session
(`attest_oidc_auth_time`) for that. See docs/cli.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from governance.services.roles import role_grant, role_revoke
from governance.services.users import user_create
from mlops_site.common.roles import Role

LEEWAY_SECONDS = 60
SESSION_KEY = "attest_oidc"


class OidcError(Exception):
    """The sign-in cannot complete; the message is shown to the person."""


def _config() -> dict[str, Any]:
    issuer = getattr(settings, "ATTEST_OIDC_ISSUER", None)
    client_id = getattr(settings, "ATTEST_OIDC_CLIENT_ID", None)
    if not issuer or not client_id:
        raise OidcError("OIDC sign-in is not configured (ATTEST_OIDC_ISSUER, ATTEST_OIDC_CLIENT_ID).")
    return {"issuer": issuer.rstrip("/"), "client_id": client_id,
            "client_secret": getattr(settings, "ATTEST_OIDC_CLIENT_SECRET", None) or "",
            "scopes": getattr(settings, "ATTEST_OIDC_SCOPES", "openid email profile"),
            "username_claim": getattr(settings, "ATTEST_OIDC_USERNAME_CLAIM", "preferred_username"),
            "roles_claim": getattr(settings, "ATTEST_OIDC_ROLES_CLAIM", "groups"),
            "role_map": dict(getattr(settings, "ATTEST_OIDC_ROLE_MAP", {}) or {})}


def _get_json(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    # The token and JWKS URLs come from the provider's discovery document: only http(s), so a
    # document naming file:// or ftp:// cannot make the server read them.
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise OidcError(f"The identity provider's URL {url!r} is not http(s).")
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 # nosec B310 # http(s) checked above
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise OidcError(f"The identity provider answered {exc.code} at {url}.") from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise OidcError(f"The identity provider cannot be reached at {url}.") from exc


def oidc_discovery(issuer: str) -> dict[str, Any]:
    document = _get_json(issuer + "/.well-known/openid-configuration")
    if document.get("issuer", "").rstrip("/") != issuer:
        raise OidcError("The provider's discovery document names another issuer.")
    return document


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _rsa_key(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    numbers = rsa.RSAPublicNumbers(int.from_bytes(_b64url(jwk["e"]), "big"), int.from_bytes(_b64url(jwk["n"]), "big"))
    return numbers.public_key()


def id_token_verify(token: str, *, jwks: dict[str, Any], issuer: str, client_id: str, nonce: str,
                    now: float | None = None) -> dict[str, Any]:
    """The id_token's claims once its RS256 signature and claims check out; OidcError otherwise."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url(header_b64))
        claims = json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (ValueError, TypeError) as exc:
        raise OidcError("The id_token is malformed.") from exc
    if header.get("alg") != "RS256":
        raise OidcError(f"The id_token's algorithm {header.get('alg')!r} is not accepted (RS256 only).")
    keys = [k for k in jwks.get("keys", []) if k.get("kty") == "RSA" and k.get("kid") == header.get("kid")]
    if not keys:
        raise OidcError("No provider key matches the id_token's key id.")
    try:
        _rsa_key(keys[0]).verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(),
                                 hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise OidcError("The id_token's signature does not verify.") from exc
    now = time.time() if now is None else now
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    problems = []
    if str(claims.get("iss", "")).rstrip("/") != issuer:
        problems.append("issuer")
    if client_id not in audiences:
        problems.append("audience")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - LEEWAY_SECONDS:
        problems.append("expired")
    if not isinstance(claims.get("iat"), int | float) or claims["iat"] > now + LEEWAY_SECONDS:
        problems.append("issued in the future")
    if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        problems.append("nonce")
    if problems:
        raise OidcError("The id_token was refused: " + ", ".join(problems) + ".")
    return claims


def _redirect_uri(request) -> str:
    return request.build_absolute_uri(reverse("oidc-callback"))


def oidc_login(request):
    """Redirect to the provider's authorization endpoint (state, nonce and PKCE kept in the session)."""
    try:
        config = _config()
        discovery = oidc_discovery(config["issuer"])
    except OidcError as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")
    verifier = secrets.token_urlsafe(48)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    next_url = request.GET.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/admin/"
    request.session[SESSION_KEY] = {"state": state, "nonce": nonce, "verifier": verifier, "next": next_url}
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": config["client_id"], "redirect_uri": _redirect_uri(request),
        "scope": config["scopes"], "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    return HttpResponseRedirect(f"{discovery['authorization_endpoint']}?{query}")


@transaction.atomic
def oidc_user_sync(claims: dict[str, Any], config: dict[str, Any]):
    """The Attest user for these claims, created on first sign-in, roles made equal to the mapped claim."""
    username = claims.get(config["username_claim"]) or claims.get("sub")
    if not isinstance(username, str) or not username.strip():
        raise OidcError("The id_token names no user.")
    username = username.strip()[:150]
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = user_create(actor=None, username=username, password=secrets.token_urlsafe(32) + "!Aa1",
                           email=str(claims.get("email", ""))[:254], first_name=str(claims.get("given_name", ""))[:150],
                           last_name=str(claims.get("family_name", ""))[:150])
    if not user.is_active:
        raise OidcError(f"{username} is inactive in Attest.")
    raw = claims.get(config["roles_claim"]) or []
    raw = [raw] if isinstance(raw, str) else list(raw)
    wanted = {config["role_map"][group] for group in raw if group in config["role_map"]}
    wanted &= set(Role.values)
    held = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    for role in sorted(wanted - held):
        role_grant(actor=None, user=user, role=role)
    for role in sorted(held - wanted):
        role_revoke(actor=None, user=user, role=role)
    staff = bool(wanted) or user.is_superuser
    if user.is_staff != staff:
        User.objects.filter(pk=user.pk).update(is_staff=staff)
        user.is_staff = staff
    return user


def oidc_callback(request):
    """Exchange the code, verify the id_token, sign the user in, go to `next`."""
    pending = request.session.pop(SESSION_KEY, None)
    try:
        config = _config()
        if not pending or not secrets.compare_digest(request.GET.get("state", ""), pending["state"]):
            raise OidcError("The sign-in state does not match; start again.")
        if request.GET.get("error"):
            raise OidcError(f"The provider refused: {request.GET.get('error')}.")
        code = request.GET.get("code", "")
        if not code:
            raise OidcError("The provider sent no code.")
        discovery = oidc_discovery(config["issuer"])
        basic = base64.b64encode(f"{urllib.parse.quote(config['client_id'])}:"
                                 f"{urllib.parse.quote(config['client_secret'])}".encode()).decode()
        tokens = _get_json(discovery["token_endpoint"], data=urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code, "redirect_uri": _redirect_uri(request),
            "code_verifier": pending["verifier"], "client_id": config["client_id"]}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
        claims = id_token_verify(tokens.get("id_token", ""), jwks=_get_json(discovery["jwks_uri"]),
                                 issuer=config["issuer"], client_id=config["client_id"], nonce=pending["nonce"])
        user = oidc_user_sync(claims, config)
    except OidcError as exc:
        return HttpResponse(f"Sign-in failed: {exc}", status=403, content_type="text/plain")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session["attest_oidc_auth_time"] = int(claims.get("auth_time") or time.time())
    return HttpResponseRedirect(pending.get("next") or "/admin/")
