"""Rate limits (429 + Retry-After + the error body), page-size cap and per-endpoint body limits."""

import pytest
from django.test import override_settings

from governance.services.tokens import api_token_issue

pytestmark = pytest.mark.django_db

RATES = {"token": "3/min", "user": "2/min", "anon": "100/min"}


def _key(user, *scopes):
    _, key = api_token_issue(actor=None, user=user, scopes=list(scopes) or None)
    return key


@override_settings(ATTEST_THROTTLE_RATES=RATES)
def test_a_burst_beyond_the_token_rate_gets_429_with_retry_after(make_user, api_client):
    # given
    user = make_user("ci-bot", roles=["ci_service"])
    key = _key(user, "registry:read")
    # when
    answers = [api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {key}") for _ in range(4)]
    # then
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    body = refused.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["fields"] == {}
    assert "throttled" in body["error"]["message"].lower()


@override_settings(ATTEST_THROTTLE_RATES=RATES)
def test_the_limit_is_per_token_not_per_user(make_user, api_client):
    # given: one user, two tokens; the first one used up
    user = make_user("ci-bot", roles=["ci_service"])
    first, second = _key(user, "registry:read"), _key(user, "registry:read")
    for _ in range(3):
        assert api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {first}").status_code == 200
    # when
    spent = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {first}")
    fresh = api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {second}")
    # then
    assert (spent.status_code, fresh.status_code) == (429, 200)


@override_settings(ATTEST_THROTTLE_RATES=RATES)
def test_a_signed_in_user_is_limited_per_user(make_user, client):
    # given
    user = make_user("emil", roles=["ml_engineer"])
    client.force_login(user)
    # when
    answers = [client.get("/api/v1/models/") for _ in range(3)]
    # then
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert int(answers[-1]["Retry-After"]) >= 1


def test_default_rates_come_from_settings_and_allow_normal_use(settings, make_user, api_client):
    # given: the shipped defaults (env-overridable)
    assert set(settings.ATTEST_THROTTLE_RATES) == {"token", "user", "anon"}
    user = make_user("ci-bot", roles=["ci_service"])
    key = _key(user, "registry:read")
    # when
    answers = {api_client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {key}").status_code for _ in range(20)}
    # then
    assert answers == {200}


def test_page_size_is_capped_at_500(make_user, api_client):
    # given: 505 events in the log, read by an auditor
    from django.db import transaction

    from governance.audit import AuditAction, audit_event_record, audit_log_sequence

    auditor = make_user("aud", roles=["auditor"])
    key = _key(auditor, "audit:read")
    with transaction.atomic():
        for index in range(505):
            audit_event_record(actor=None, system="test", action=AuditAction.TOKEN_ISSUED,
                               object_type="governance.apitoken", object_id=index, object_repr=f"t{index}")
    audit_log_sequence()
    # when
    huge = api_client.get("/api/v1/audit/events/?page_size=100000", HTTP_AUTHORIZATION=f"Token {key}")
    # then
    assert huge.status_code == 200
    body = huge.json()
    assert body["count"] >= 505
    assert len(body["results"]) == 500
    assert body["next"] is not None


def test_a_gate_body_past_its_endpoint_limit_is_413_and_changes_nothing(settings, make_user, api_client):
    # given
    from governance.models import GateDecision

    user = make_user("ci-bot", roles=["ci_service"])
    key = _key(user, "gate:check")
    limit = settings.ATTEST_BODY_LIMITS["/api/v1/gate/"]
    body = '{"model": "m", "version": 1, "environment": "production", "pad": "' + "x" * limit + '"}'
    # when
    response = api_client.generic("POST", "/api/v1/gate/", body, content_type="application/json",
                                  HTTP_AUTHORIZATION=f"Token {key}")
    # then
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert str(limit) in response.json()["error"]["message"]
    assert GateDecision.objects.count() == 0


def test_a_small_gate_body_is_not_refused_by_the_limit(make_user, api_client):
    # given
    user = make_user("ci-bot", roles=["ci_service"])
    key = _key(user, "gate:check")
    # when: a valid-sized body for a model that does not exist
    response = api_client.post("/api/v1/gate/", {"model": "nope", "version": 1, "environment": "production",
                                                 "artifact_sha256": "a" * 64},
                               format="json", HTTP_AUTHORIZATION=f"Token {key}")
    # then: the view answered (404), not the limit
    assert response.status_code == 404
