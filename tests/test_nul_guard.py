"""A NUL character in a URL is bad input: 400 `validation_error` on either database, never a 5xx.

Found by schemathesis on PostgreSQL: `GET /api/v1/approval-requests/?kind=…%00…` reached the
database, which refused the text, and the API answered 503 `database_unavailable`.
"""

import pytest
from django.contrib.auth.models import User

from governance.models import ApprovalRequest
from tests.governance.workflow_factories import PASSWORD, person, token_for

pytestmark = pytest.mark.django_db

NUL_MESSAGE = ["Null characters are not allowed."]


@pytest.fixture
def officer_client(api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(person('nul-officer', 'compliance_officer'))}")
    return api_client


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {"code": "validation_error", "message": f"{field}: {NUL_MESSAGE[0]}",
                                         "fields": {field: NUL_MESSAGE}}}


def test_the_schemathesis_example_is_400_not_503(officer_client):
    # given the query schemathesis sent (a NUL inside `kind`)
    query = ("model=%C3%81&page_size=-81&kind=%1C%F1%B5%88%AE%F3%B4%AC%B7%00%C3%95%C2%82%C3%80&page=6000"
             "&status=%C2%A4&environment=%29P")

    # when / then
    _refused(officer_client.get(f"/api/v1/approval-requests/?{query}"), "kind")


@pytest.mark.parametrize("url, field", [
    ("/api/v1/approval-requests/?status=pending&model=credit%00", "model"),
    ("/api/v1/monitors/?environment=%00", "environment"),
    ("/api/v1/alerts/?model=a%00b", "model"),
    ("/api/v1/lineage/?node=dataset_version:1%00", "node"),
    ("/api/v1/models/?a%00=1", "a\\x00"),
])
def test_a_nul_in_any_query_parameter_is_refused_by_name(officer_client, url, field):
    _refused(officer_client.get(url), field)


def test_a_nul_in_the_path_is_refused(client):
    # given an officer in the admin, and the policy editor whose tier comes from the path
    User.objects.create_superuser("nul-admin", "nul@example.com", PASSWORD)
    client.login(username="nul-admin", password=PASSWORD)

    # when / then
    _refused(client.get("/admin/governance/approvalpolicy/edit/high%00/"), "path")
    _refused(client.get("/admin/governance/approvalrequest/?q=%00"), "q")


def test_a_refused_write_changes_nothing(officer_client):
    before = ApprovalRequest.objects.count()
    response = officer_client.post("/api/v1/approval-requests/?x=%00", {"kind": "retraining"}, format="json")
    _refused(response, "x")
    assert ApprovalRequest.objects.count() == before


def test_text_without_nul_still_filters(officer_client):
    response = officer_client.get("/api/v1/approval-requests/?kind=deployment&model=%25%3F%20x")
    assert response.status_code == 200
    assert response.json()["results"] == []


# --- bodies: free JSON would carry a NUL into a jsonb column ----------------------------------------

def test_a_nul_anywhere_in_a_json_body_is_refused_with_its_place(officer_client):
    # given a policy edit whose thresholds carry a NUL in a key (PostgreSQL: DataError, a 500 before)
    from governance.models import ApprovalPolicy

    versions = ApprovalPolicy.objects.count()
    body = '{"risk_tier": "limited", "reason": "tighter", "thresholds": {"min_\\u0000": 1}}'

    # when
    response = officer_client.post("/api/v1/policies/", body, content_type="application/json")

    # then
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"] == {
        "code": "validation_error", "message": f"Invalid input: thresholds: min_\\x00: {NUL_MESSAGE[0]}",
        "fields": {"thresholds": [f"min_\\x00: {NUL_MESSAGE[0]}"]}}
    assert ApprovalPolicy.objects.count() == versions


def test_a_nul_in_a_top_level_field_names_the_field_once(officer_client):
    # given a name with a NUL: the QA pass saw "name: name: Null characters…"
    body = '{"name": "credit\\u0000", "team": "t", "risk_tier": "limited"}'

    # when
    response = officer_client.post("/api/v1/models/", body, content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "validation_error",
                                         "message": f"Invalid input: name: {NUL_MESSAGE[0]}",
                                         "fields": {"name": NUL_MESSAGE}}}


def test_a_nul_in_a_form_field_s_json_is_refused(api_client):
    # given an engineer registering a version by multipart, its metrics a JSON document with a NUL
    engineer = person("nul-engineer", "ml_engineer")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(engineer)}")

    # when
    response = api_client.post("/api/v1/model-versions/", {"metrics": '{"auc": ["ok", "\\u0000"]}'}, format="multipart")

    # then
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["metrics"] == NUL_MESSAGE


@pytest.mark.parametrize("document, where", [
    ({"a": "x"}, None), ("a\x00", "body"), ({"a": {"b": ["x", "y\x00"]}}, "a.b[1]"),
    ([{"k\x00": 1}], "[0].k\\x00"), ({"n": 1, "f": 1.5, "t": True, "z": None}, None),
])
def test_nul_location_names_the_first_place(document, where):
    from mlops_site.common.nul_guard import nul_location

    assert nul_location(document) == where
