"""OIDC sign-in to the admin against a small identity provider started by the test on 127.0.0.1.

The provider is a stand-in for a third party, written here, that speaks real OIDC over HTTP:
discovery, JWKS, an authorization endpoint that redirects with a code, and a token endpoint that
checks client authentication and PKCE and returns an RS256 id_token signed with `cryptography`.
"""

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.contrib.auth.models import User

from governance.audit import AuditAction
from governance.models import AuditQueueEntry
from governance.oidc import OidcError, id_token_verify

CLIENT_ID, CLIENT_SECRET = "attest", "s3cret-client"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Provider:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.codes: dict[str, dict] = {}
        self.person = {"sub": "u-1", "preferred_username": "vera", "email": "vera@example.com",
                       "given_name": "Vera", "family_name": "Validator", "groups": ["mlops-validators", "other"]}
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, {"issuer": provider.issuer,
                                            "authorization_endpoint": provider.issuer + "/authorize",
                                            "token_endpoint": provider.issuer + "/token",
                                            "jwks_uri": provider.issuer + "/jwks",
                                            "id_token_signing_alg_values_supported": ["RS256"]})
                if url.path == "/jwks":
                    numbers = provider.key.public_key().public_numbers()
                    return self._json(200, {"keys": [{"kty": "RSA", "kid": provider.kid, "alg": "RS256", "use": "sig",
                                                      "n": _b64(numbers.n.to_bytes(256, "big")),
                                                      "e": _b64(numbers.e.to_bytes(3, "big"))}]})
                if url.path == "/authorize":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    assert query["client_id"] == CLIENT_ID and query["code_challenge_method"] == "S256"
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    self.send_response(302)
                    self.send_header("Location", query["redirect_uri"] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": query["state"]}))
                    self.end_headers()
                    return None
                return self._json(404, {})

            def do_POST(self):
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._json(401, {"error": "invalid_client"})
                asked = provider.codes.pop(form.get("code", ""), None)
                challenge = _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
                if (asked is None or asked["code_challenge"] != challenge
                        or asked["redirect_uri"] != form["redirect_uri"]):
                    return self._json(400, {"error": "invalid_grant"})
                return self._json(200, {"token_type": "Bearer", "access_token": "at",
                                        "id_token": provider.id_token(nonce=asked["nonce"])})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def id_token(self, *, nonce: str, key=None, **overrides) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": nonce,
                  "auth_time": now, **self.person, **overrides}
        header = _b64(json.dumps({"alg": "RS256", "kid": self.kid, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = (key or self.key).sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self.kid, "n": _b64(numbers.n.to_bytes(256, "big")),
                          "e": _b64(numbers.e.to_bytes(3, "big"))}]}


@pytest.fixture
def provider(settings):
    idp = Provider()
    settings.ATTEST_OIDC_ISSUER = idp.issuer
    settings.ATTEST_OIDC_CLIENT_ID = CLIENT_ID
    settings.ATTEST_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.ATTEST_OIDC_ROLE_MAP = {"mlops-validators": "model_validator", "mlops-officers": "compliance_officer"}
    yield idp
    idp.server.shutdown()
    idp.server.server_close()


def _sign_in(client, provider) -> object:
    start = client.get("/oidc/login/?next=/admin/governance/")
    assert start.status_code == 302 and start["Location"].startswith(provider.issuer + "/authorize?")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(start["Location"], timeout=10)
        raise AssertionError("the provider should redirect")
    except urllib.error.HTTPError as exc:  # the 302 back to Attest, as a browser would follow it
        back = urllib.parse.urlparse(exc.headers["Location"])
    return client.get(back.path + "?" + back.query)


@pytest.mark.django_db
def test_oidc_code_flow_signs_in_creates_the_user_and_maps_roles(client, provider):
    # when
    done = _sign_in(client, provider)
    # then
    assert done.status_code == 302 and done["Location"] == "/admin/governance/"
    user = User.objects.get(username="vera")
    assert (user.email, user.first_name, user.is_staff) == ("vera@example.com", "Vera", True)
    assert list(user.groups.values_list("name", flat=True)) == ["model_validator"]
    assert not user.check_password("")  # no known password: signing still needs one set by an admin
    assert AuditQueueEntry.objects.filter(action=AuditAction.ROLE_GRANTED).count() == 1
    assert client.get("/admin/").status_code == 200
    assert "attest_oidc_auth_time" in client.session


@pytest.mark.django_db
def test_roles_follow_the_claim_at_each_sign_in(client, provider):
    # given: signed in once as a validator
    _sign_in(client, provider)
    client.logout()
    # when: the provider now says compliance officer only
    provider.person["groups"] = ["mlops-officers"]
    _sign_in(client, provider)
    # then
    user = User.objects.get(username="vera")
    assert list(user.groups.values_list("name", flat=True)) == ["compliance_officer"]
    assert AuditQueueEntry.objects.filter(action=AuditAction.ROLE_REVOKED).count() == 1


@pytest.mark.django_db
def test_a_forged_state_is_refused_and_signs_nobody_in(client, provider):
    client.get("/oidc/login/")
    response = client.get("/oidc/callback/?code=x&state=forged")
    assert response.status_code == 403
    assert b"state does not match" in response.content
    assert not User.objects.filter(username="vera").exists()


def test_id_token_checks(provider):
    jwks, nonce = provider.jwks(), "n-1"
    good = provider.id_token(nonce=nonce)
    assert id_token_verify(good, jwks=jwks, issuer=provider.issuer, client_id=CLIENT_ID, nonce=nonce)["sub"] == "u-1"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "signature": provider.id_token(nonce=nonce, key=other_key),
        "audience": provider.id_token(nonce=nonce, aud="someone-else"),
        "expired": provider.id_token(nonce=nonce, exp=int(time.time()) - 3600),
        "nonce": provider.id_token(nonce="replayed"),
        "issuer": provider.id_token(nonce=nonce, iss="http://evil.example"),
    }
    for problem, token in cases.items():
        with pytest.raises(OidcError) as caught:
            id_token_verify(token, jwks=jwks, issuer=provider.issuer, client_id=CLIENT_ID, nonce=nonce)
        assert problem in str(caught.value), (problem, str(caught.value))
    header, payload, signature = good.split(".")
    none_alg = _b64(json.dumps({"alg": "none", "kid": "k1"}).encode())
    with pytest.raises(OidcError, match="not accepted"):
        id_token_verify(f"{none_alg}.{payload}.", jwks=jwks, issuer=provider.issuer, client_id=CLIENT_ID, nonce=nonce)


def test_a_provider_url_that_is_not_http_is_refused_before_it_is_opened(tmp_path):
    # A discovery document naming jwks_uri=file://… must not make the server read a local file
    # (bandit B310: urlopen accepts file:// and custom schemes).
    from governance.oidc import _get_json

    local = tmp_path / "jwks.json"
    local.write_text('{"keys": []}')
    with pytest.raises(OidcError, match="not http"):
        _get_json(local.as_uri())
