"""Which database errors say "retry": only the transient ones (OperationalError) are 503
`database_unavailable`; a DataError or ProgrammingError would fail the same way again, so it is
the bug it is, a 500 `server_error` with the error contract, and changes nothing."""

import pytest
from django.db import DataError, OperationalError, ProgrammingError, connection
from rest_framework.test import APIClient

from governance.models import AuditQueueEntry, GateDecision
from tests.security.world import build_world

pytestmark = pytest.mark.django_db


def _failing_insert(error: Exception):
    """An execute wrapper raising `error` at the first INSERT of a gate decision."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT") and f'"{GateDecision._meta.db_table}"' in sql:
            raise error
        return execute(sql, params, many, context)

    return wrapper


@pytest.fixture
def gate_call():
    world = build_world()
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens['ml_engineer']}")
    body = {"model": world.own.model.name, "version": world.own.model_version.version, "environment": "dev",
            "artifact_sha256": world.own.model_version.artifact_sha256}

    def call(error: Exception):
        before = GateDecision.objects.count(), AuditQueueEntry.objects.count()
        with connection.execute_wrapper(_failing_insert(error)):
            response = client.post("/api/v1/gate/", body, format="json")
        assert (GateDecision.objects.count(), AuditQueueEntry.objects.count()) == before  # nothing written
        return response

    return call


@pytest.mark.parametrize("error", [DataError("value out of range"), ProgrammingError("no such column")])
def test_a_database_error_that_would_repeat_is_a_500_server_error(gate_call, error):
    response = gate_call(error)
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "server_error",
                                         "message": "The server failed; the request changed nothing.", "fields": {}}}


def test_a_transient_database_error_is_a_503_to_retry(gate_call):
    response = gate_call(OperationalError("server closed the connection unexpectedly"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"

