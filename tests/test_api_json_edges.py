"""Bodies that are JSON only in name, and the messages a CI engineer reads (QA pass, wiring CI).

- nesting past the recursion limit was a 500 (RecursionError) on every JSON endpoint;
- NaN / Infinity (Python's json.dump writes them) in a version's metrics were a 409 `conflict`;
- a NUL error named its field twice; `insufficient_scope` did not name the scope;
- `Authorization: Bearer …` answered "credentials were not provided".
"""

import io
import json

import pytest

from governance.models import AuditEvent, AuditQueueEntry
from mlops_site.common.api.parsers import JSONParser
from registry.models import ModelVersion
from tests.governance.workflow_factories import World, token_for

pytestmark = pytest.mark.django_db

NON_FINITE = "is not a JSON number; non-finite numbers (NaN, Infinity, -Infinity) are not JSON."
MAX_DEPTH = 64  # mlops_site.common.api.parsers.MAX_DEPTH
TOO_DEEP = "The JSON document is nested deeper than 64 levels."


@pytest.fixture
def world():
    return World()


@pytest.fixture
def engineer_client(api_client, world):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.engineer)}")
    return api_client


RAW = "<raw>"


def _raw_json(document: dict, raw: str) -> str:
    """The document as JSON, with `raw` (not JSON, or too deep for json.dumps) in place of RAW."""
    return json.dumps(document).replace(f'"{RAW}"', raw)


def _audit_rows() -> int:
    return AuditEvent.objects.count() + AuditQueueEntry.objects.count()


# --- 1. deep nesting ------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 30000])
def test_deeply_nested_json_to_the_gate_is_400_malformed_request(api_client, world, depth):
    # given the QA body ("[" * 30000 + "]" * 30000), and depths json parses but encoders overflow
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.ci)}")
    body = "[" * depth + "]" * depth

    # when
    response = api_client.post("/api/v1/gate/", body, content_type="application/json")

    # then
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {"code": "malformed_request", "message": f"JSON parse error - {TOO_DEEP}",
                                         "fields": {}}}


def test_deep_metrics_in_a_json_body_change_nothing(engineer_client, world):
    # given metrics nested 900 deep: json parses them, and saving them overflowed (500)
    versions, events = ModelVersion.objects.count(), _audit_rows()
    body = _raw_json({"model": world.model.name, "artifact_uri": "https://models.example.com/d.skops",
                      "artifact_sha256": "d" * 64, "metrics": {"a": RAW}}, "[" * 900 + "]" * 900)

    # when
    response = engineer_client.post("/api/v1/model-versions/", body, content_type="application/json")

    # then
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "malformed_request"
    assert (ModelVersion.objects.count(), _audit_rows()) == (versions, events)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 900, 30000])
def test_deeply_nested_json_in_a_form_field_is_a_validation_error_naming_it(engineer_client, world, depth):
    # given a multipart upload whose metrics field holds a deep document
    versions = ModelVersion.objects.count()
    metrics = '{"a": ' + "[" * depth + "]" * depth + "}"

    # when
    response = engineer_client.post("/api/v1/model-versions/", {
        "model": world.model.name, "artifact_uri": "https://models.example.com/d.skops", "artifact_sha256": "d" * 64,
        "metrics": metrics}, format="multipart")

    # then
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {"code": "validation_error", "message": f"Invalid input: metrics: {TOO_DEEP}",
                                         "fields": {"metrics": [TOO_DEEP]}}}
    assert ModelVersion.objects.count() == versions


def test_the_depth_limit_still_takes_a_document_exactly_max_depth_deep():
    expected: list = []
    for _ in range(MAX_DEPTH - 1):
        expected = [expected]
    body = ("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()
    assert JSONParser().parse(io.BytesIO(body)) == expected


# --- 2. NaN / Infinity ----------------------------------------------------------------------------

@pytest.mark.parametrize("literal, spelled", [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"),
                                              ("1e999", "Infinity")])
def test_non_finite_metrics_in_a_multipart_upload_are_400_naming_the_field(engineer_client, world, literal, spelled):
    # given metrics as Python's json.dumps writes them ({"auc": NaN}): a 409 `conflict` before
    versions, events = ModelVersion.objects.count(), _audit_rows()

    # when
    response = engineer_client.post("/api/v1/model-versions/", {
        "model": world.model.name, "artifact_uri": "https://models.example.com/n.skops", "artifact_sha256": "e" * 64,
        "metrics": _raw_json({"accuracy": 0.9, "auc": RAW}, literal)}, format="multipart")

    # then
    assert response.status_code == 400, response.content[:300]
    message = f"auc: {spelled} {NON_FINITE}"
    assert response.json() == {"error": {"code": "validation_error", "message": f"Invalid input: metrics: {message}",
                                         "fields": {"metrics": [message]}}}
    assert (ModelVersion.objects.count(), _audit_rows()) == (versions, events)


@pytest.mark.parametrize("literal, spelled", [("NaN", "NaN"), ("-Infinity", "-Infinity"), ("1e999", "Infinity")])
def test_non_finite_numbers_in_a_json_body_are_400_naming_their_place(engineer_client, world, literal, spelled):
    # given a JSON body (DRF's strict mode refused NaN without a place, and took 1e999 as inf)
    versions = ModelVersion.objects.count()
    body = _raw_json({"model": world.model.name, "artifact_uri": "https://models.example.com/j.skops",
                      "artifact_sha256": "f" * 64, "metrics": {"per_class": [0.5, RAW]}}, literal)

    # when
    response = engineer_client.post("/api/v1/model-versions/", body, content_type="application/json")

    # then
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {
        "code": "malformed_request", "message": f"JSON parse error - metrics.per_class[1]: {spelled} {NON_FINITE}",
        "fields": {}}}
    assert ModelVersion.objects.count() == versions


def test_finite_metrics_still_register(engineer_client, world):
    response = engineer_client.post("/api/v1/model-versions/", {
        "model": world.model.name, "artifact_uri": "https://models.example.com/ok.skops", "artifact_sha256": "1" * 64,
        "metrics": '{"auc": 0.91, "loss": -1.5e-3, "n": 10}'}, format="multipart")
    assert response.status_code == 201, response.content[:300]
    assert ModelVersion.objects.get(pk=response.json()["id"]).metrics == {"auc": 0.91, "loss": -1.5e-3, "n": 10}


# --- 7. insufficient_scope names the scope --------------------------------------------------------

def test_insufficient_scope_names_the_scope_the_gate_needs(api_client, world):
    # given a CI token without gate:check
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.ci, 'registry:read')}")

    # when
    response = api_client.post("/api/v1/gate/", {"model": world.model.name, "version": 1,
                                                 "environment": "production",
                                                 "artifact_sha256": world.v1.artifact_sha256}, format="json")

    # then
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "insufficient_scope",
                                         "message": "The token lacks the scope this operation needs: gate:check.",
                                         "fields": {}}}


# --- 8. Bearer ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["Bearer {key}", "bearer {key}", "Bearer"])
def test_a_bearer_header_is_401_saying_to_use_token(api_client, world, header, django_assert_num_queries):
    # given the CI token sent the OAuth way
    key = token_for(world.ci)
    api_client.credentials(HTTP_AUTHORIZATION=header.format(key=key))
    decisions = _audit_rows()

    # when: refused before any database query (the gate's hot path)
    with django_assert_num_queries(0):
        response = api_client.post("/api/v1/gate/", {"model": world.model.name, "version": 1,
                                                     "environment": "production",
                                                     "artifact_sha256": world.v1.artifact_sha256}, format="json")

    # then
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"error": {
        "code": "authentication_failed",
        "message": "Bearer authentication is not supported: send the API token as `Authorization: Token <key>`.",
        "fields": {}}}
    assert _audit_rows() == decisions


def test_the_token_header_still_authenticates(api_client, world):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.ci)}")
    response = api_client.post("/api/v1/gate/", {"model": world.model.name, "version": 1,
                                                 "environment": "production",
                                                 "artifact_sha256": world.v1.artifact_sha256}, format="json")
    assert response.status_code == 200
    assert response.json()["allowed"] is False
