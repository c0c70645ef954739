import datetime as dt
import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from governance.api.authentication import ApiTokenAuthentication
from governance.audit import AuditAction
from governance.models import ApiToken, AuditEvent, AuditQueueEntry
from governance.services.tokens import api_token_issue, api_token_revoke
from mlops_site.common.errors import ApplicationError

pytestmark = pytest.mark.django_db

ALL_SCOPES = ["registry:read", "registry:write", "gate:check", "deployments:write", "approvals:write",
              "monitoring:write", "audit:read"]


def _authenticate(key: str):
    request = APIRequestFactory().get("/api/v1/", HTTP_AUTHORIZATION=f"Token {key}")
    return ApiTokenAuthentication().authenticate(request)


# --- api_token_issue ----------------------------------------------------------------------------

def test_issue_stores_only_the_hash_and_records_one_event(make_user, audit_flush):
    # given
    user = make_user("emil", roles=["ml_engineer"])
    # when
    token, key = api_token_issue(actor=user, user=user, scopes=["registry:write", "registry:read"],
                                 name="laptop")
    audit_flush()
    # then
    assert key.startswith("att_") and len(key) == 4 + 43
    assert token.prefix == key[:12]
    assert token.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert token.scopes == ["registry:read", "registry:write"]
    assert (token.name, token.expires_at, token.revoked_at) == ("laptop", None, None)
    event = AuditEvent.objects.get()
    assert event.action == AuditAction.TOKEN_ISSUED
    assert (event.object_type, event.object_id) == ("governance.apitoken", str(token.pk))
    assert json.loads(event.payload_json) == {
        "before": None, "reason": None,
        "after": {"user": "emil", "name": "laptop", "prefix": token.prefix,
                  "scopes": ["registry:read", "registry:write"], "expires_at": None},
    }
    # the key itself appears nowhere in the log, only its prefix
    assert key not in event.payload_json and key[4:] not in event.actor_json


def test_issued_key_authenticates_its_user(make_user):
    # given
    user = make_user("emil")
    token, key = api_token_issue(actor=None, user=user)
    # when
    authenticated_user, authenticated_token = _authenticate(key)
    # then
    assert (authenticated_user, authenticated_token) == (user, token)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["ci_service"], ["registry:read", "registry:write", "gate:check", "deployments:write"]),
        (["auditor"], ["registry:read", "audit:read"]),
        (["data_scientist"], ALL_SCOPES),
        ([], ALL_SCOPES),
    ],
)
def test_default_scopes_follow_the_role(make_user, roles, expected):
    # given
    user = make_user("someone", roles=roles)
    # when
    token, _ = api_token_issue(actor=None, user=user, scopes=[])
    # then
    assert token.scopes == expected


def test_unknown_scope_is_refused_and_changes_nothing(make_user):
    # given
    user = make_user("emil")
    # when
    with pytest.raises(ApplicationError) as caught:
        api_token_issue(actor=user, user=user, scopes=["registry:read", "root:all"])
    # then
    assert (caught.value.code, caught.value.status) == ("unknown_scope", 400)
    assert caught.value.fields == {"scopes": ["Unknown scope: root:all"]}
    assert ApiToken.objects.count() == 0
    assert AuditQueueEntry.objects.count() == 0


def test_expiry_in_the_past_is_refused(make_user):
    # given
    user = make_user("emil")
    # when
    with pytest.raises(ApplicationError) as caught:
        api_token_issue(actor=user, user=user, expires_at=timezone.now() - dt.timedelta(seconds=1))
    # then
    assert (caught.value.code, caught.value.status) == ("invalid_expiry", 400)
    assert ApiToken.objects.count() == 0
    assert AuditQueueEntry.objects.count() == 0


def test_someone_else_cannot_issue_a_token_for_a_user(make_user):
    # given
    victim = make_user("rita", roles=["risk_officer"])
    intruder = make_user("mallory", roles=["data_scientist"])
    # when
    with pytest.raises(ApplicationError) as caught:
        api_token_issue(actor=intruder, user=victim)
    # then
    assert (caught.value.code, caught.value.status) == ("token_issue_forbidden", 403)
    assert ApiToken.objects.count() == 0
    assert AuditQueueEntry.objects.count() == 0


def test_an_administrator_issues_for_another_user(make_user):
    # given
    admin = make_user("root", is_superuser=True)
    bot = make_user("ci-bot", roles=["ci_service"])
    # when
    token, _ = api_token_issue(actor=admin, user=bot, name="pipeline")
    # then
    assert token.user == bot
    assert AuditQueueEntry.objects.get().actor_user_id == admin.pk


def test_inactive_user_gets_no_token(make_user):
    # given
    user = make_user("gone", is_active=False)
    # when
    with pytest.raises(ApplicationError) as caught:
        api_token_issue(actor=None, user=user)
    # then
    assert caught.value.code == "user_inactive"
    assert ApiToken.objects.count() == 0


# --- api_token_revoke ---------------------------------------------------------------------------

def test_revoke_stops_authentication_and_records_one_event(make_user, audit_flush):
    # given
    user = make_user("emil")
    token, key = api_token_issue(actor=user, user=user)
    audit_flush()
    # when
    revoked = api_token_revoke(actor=user, token=token, reason="laptop lost")
    audit_flush()
    # then
    assert revoked.revoked_at is not None
    event = AuditEvent.objects.get(seq=2)
    assert event.action == AuditAction.TOKEN_REVOKED
    payload = json.loads(event.payload_json)
    assert (payload["reason"], payload["prefix"], payload["before"]) == ("laptop lost", token.prefix,
                                                                         {"revoked_at": None})
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(key)


def test_revoking_twice_is_a_conflict(make_user):
    # given
    user = make_user("emil")
    token, _ = api_token_issue(actor=user, user=user)
    api_token_revoke(actor=user, token=token, reason="rotated")
    entries = AuditQueueEntry.objects.count()
    # when
    with pytest.raises(ApplicationError) as caught:
        api_token_revoke(actor=user, token=token, reason="again")
    # then
    assert (caught.value.code, caught.value.status) == ("token_already_revoked", 409)
    assert AuditQueueEntry.objects.count() == entries


def test_revoke_needs_a_reason_and_the_owner_or_an_administrator(make_user):
    # given
    owner = make_user("emil")
    other = make_user("dana")
    token, _ = api_token_issue(actor=owner, user=owner)
    entries = AuditQueueEntry.objects.count()
    # when
    with pytest.raises(ApplicationError) as no_reason:
        api_token_revoke(actor=owner, token=token, reason="  ")
    with pytest.raises(ApplicationError) as forbidden:
        api_token_revoke(actor=other, token=token, reason="mine now")
    # then
    assert no_reason.value.code == "reason_required"
    assert (forbidden.value.code, forbidden.value.status) == ("token_revoke_forbidden", 403)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditQueueEntry.objects.count() == entries


# --- manage.py issue_token ----------------------------------------------------------------------

def test_issue_token_prints_a_working_token_as_the_last_line(make_user):
    # given
    user = make_user("ci-bot", roles=["ci_service"])
    out = io.StringIO()
    # when
    call_command("issue_token", "ci-bot", "--scope", "gate:check", "--expires-days", "30",
                 "--name", "deploy", stdout=out)
    # then
    key = out.getvalue().splitlines()[-1]
    authenticated_user, token = _authenticate(key)
    assert authenticated_user == user
    assert (token.scopes, token.name) == (["gate:check"], "deploy")
    assert dt.timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= dt.timedelta(days=30)


def test_issue_token_defaults_to_the_role_scopes(make_user):
    # given
    make_user("ci-bot", roles=["ci_service"])
    out = io.StringIO()
    # when
    call_command("issue_token", "ci-bot", stdout=out)
    # then
    token = ApiToken.objects.get()
    assert token.scopes == ["registry:read", "registry:write", "gate:check", "deployments:write"]
    assert token.expires_at is None
    assert token.key_sha256 == hashlib.sha256(out.getvalue().splitlines()[-1].encode()).hexdigest()


def test_issue_token_for_an_unknown_user_fails(db):
    # when
    with pytest.raises(CommandError) as caught:
        call_command("issue_token", "nobody", stdout=io.StringIO())
    # then
    assert str(caught.value) == "No user named 'nobody'."
    assert ApiToken.objects.count() == 0


def test_issue_token_with_an_unknown_scope_fails(make_user):
    # given
    make_user("emil")
    # when
    with pytest.raises(CommandError) as caught:
        call_command("issue_token", "emil", "--scope", "root:all", stdout=io.StringIO())
    # then
    assert str(caught.value).startswith("unknown_scope: Unknown scope root:all;")
    assert ApiToken.objects.count() == 0
    assert AuditQueueEntry.objects.count() == 0


# --- the admin ----------------------------------------------------------------------------------

def test_admin_issues_a_token_and_shows_the_key_once(make_user, client):
    # given
    admin = make_user("root", is_superuser=True, is_staff=True)
    bot = make_user("ci-bot", roles=["ci_service"])
    client.force_login(admin)
    # when
    response = client.post("/admin/governance/apitoken/add/",
                           {"user": bot.pk, "name": "pipeline", "scopes": ["gate:check"], "expires_at": ""})
    # then
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scopes) == (bot, "pipeline", ["gate:check"])
    page = response.content.decode()
    key = page.split('id="issued-token" readonly size="60" value="')[1].split('"')[0]
    assert hashlib.sha256(key.encode()).hexdigest() == token.key_sha256
    assert "no-cache" in response["Cache-Control"]
    assert AuditQueueEntry.objects.get().action == AuditAction.TOKEN_ISSUED
    # the list and the detail page never show the key again
    assert key not in client.get("/admin/governance/apitoken/").content.decode()
    assert key not in client.get(f"/admin/governance/apitoken/{token.pk}/change/").content.decode()


def test_admin_revoke_action_goes_through_the_service(make_user, client):
    # given
    admin = make_user("root", is_superuser=True, is_staff=True)
    user = make_user("emil")
    token, key = api_token_issue(actor=None, user=user)
    client.force_login(admin)
    # when
    response = client.post("/admin/governance/apitoken/",
                           {"action": "revoke_tokens", "_selected_action": [token.pk]})
    # then
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = AuditQueueEntry.objects.get(action=AuditAction.TOKEN_REVOKED)
    assert json.loads(entry.payload_json)["reason"] == "revoked in the admin by root"
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(key)


def test_issued_token_is_limited_to_its_scopes_on_the_api(make_user, api_client):
    # given
    make_user("ci-bot", roles=["ci_service"])
    gate_only = _issue_key("ci-bot", "--scope", "gate:check")
    reader = _issue_key("ci-bot", "--scope", "registry:read")
    # when
    refused = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {gate_only}")
    allowed = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {reader}")
    anonymous = api_client.get("/api/v1/models/")
    # then
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert allowed.status_code == 200
    assert allowed.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert anonymous.status_code == 401


def test_revoked_token_is_refused_by_the_api(make_user, api_client):
    # given
    user = make_user("emil")
    token, key = api_token_issue(actor=user, user=user)
    api_token_revoke(actor=user, token=token, reason="rotated")
    # when
    response = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {key}")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def _issue_key(username: str, *args: str) -> str:
    out = io.StringIO()
    call_command("issue_token", username, *args, stdout=out)
    return out.getvalue().splitlines()[-1]


def test_expired_token_is_refused_by_the_api_with_401(make_user, api_client):
    # given: a token whose expiry has passed
    user = make_user("emil")
    token, key = api_token_issue(actor=user, user=user, expires_at=timezone.now() + dt.timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # when
    response = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {key}")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_every_use_of_a_token_names_it_in_the_audit_log(make_user, api_client, audit_flush):
    # given: a team member with a registry token
    from registry import services as registry

    user = make_user("emil", roles=["ml_engineer"])
    team = registry.team_create(actor=None, name="risk")
    team.members.add(user)
    token, key = api_token_issue(actor=None, user=user, scopes=["registry:write", "registry:read"])
    # when
    response = api_client.post("/api/v1/models/", {"name": "credit", "team": "risk", "risk_tier": "limited"},
                               format="json", HTTP_AUTHORIZATION=f"Token {key}")
    audit_flush()
    # then
    assert response.status_code == 201, response.content
    event = AuditEvent.objects.get(action="registry.model.registered")
    assert json.loads(event.actor_json) == {"id": user.pk, "username": "emil", "roles": ["ml_engineer"],
                                            "token": token.prefix}


def test_session_use_carries_no_token_in_the_audit_log(make_user, client, audit_flush):
    # given
    from registry import services as registry

    user = make_user("emil", roles=["ml_engineer"])
    registry.team_create(actor=None, name="risk").members.add(user)
    client.force_login(user)
    # when
    response = client.post("/api/v1/models/", {"name": "credit", "team": "risk", "risk_tier": "limited"},
                           content_type="application/json")
    audit_flush()
    # then
    assert response.status_code == 201, response.content
    actor = json.loads(AuditEvent.objects.get(action="registry.model.registered").actor_json)
    assert "token" not in actor and actor["username"] == "emil"
