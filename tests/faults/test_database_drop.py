"""The database connection dies in the middle of a gate decision or a signature (PostgreSQL).

A second connection runs `pg_terminate_backend` on the request's own backend at a precise point
(just before the decision's or the signature's INSERT, through `connection.execute_wrapper`).
Passes when: the client gets 503 `database_unavailable` with the error contract; nothing of the
decision or signature (row or audit event) was written; the same request, retried, succeeds.
"""

import psycopg
import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from governance.models import ApprovalRequest, AuditEvent, AuditQueueEntry, GateDecision, Signature
from tests.governance.workflow_factories import PASSWORD, token_for
from tests.security.world import build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (.ci/run's second pass)")


def _killer(table: str):
    """An execute wrapper that terminates this connection's backend before the first INSERT INTO `table`."""
    fired = []

    def wrapper(execute, sql, params, many, context):
        if not fired and sql.lstrip().upper().startswith("INSERT") and f'"{table}"' in sql:
            fired.append(sql)
            pid = context["connection"].connection.info.backend_pid
            settings = connection.settings_dict
            with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                                 password=settings["PASSWORD"] or None, dbname=settings["NAME"],
                                 autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
        return execute(sql, params, many, context)

    return wrapper, fired


def _events() -> int:
    return AuditEvent.objects.count() + AuditQueueEntry.objects.count()


def _call_with_drop(table: str, send):
    wrapper, fired = _killer(table)
    with connection.execute_wrapper(wrapper):
        response = send()
    assert fired, f"the request never inserted into {table}"
    close_old_connections()  # what the server does at the next request's start
    connection.close()
    return response


def _assert_503(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response.json() == {"error": {"code": "database_unavailable", "message": response.json()["error"]["message"],
                                         "fields": {}}}


def test_connection_dropped_during_a_gate_decision(settings):
    world = build_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens['ml_engineer']}")
    body = {"model": world.own.model.name, "version": world.own.model_version.version, "environment": "dev",
            "artifact_sha256": world.own.model_version.artifact_sha256}
    decisions, events = GateDecision.objects.count(), _events()

    dropped = _call_with_drop(GateDecision._meta.db_table, lambda: client.post("/api/v1/gate/", body, format="json"))

    _assert_503(dropped)
    assert (GateDecision.objects.count(), _events()) == (decisions, events)
    retried = client.post("/api/v1/gate/", body, format="json")
    assert retried.status_code == 200 and retried.json()["allowed"] is True
    assert GateDecision.objects.count() == decisions + 1


def test_connection_dropped_during_a_signature(settings):
    world = build_world()
    request = world.own.approval_request
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.users['model_validator'])}")
    body = {"password": PASSWORD, "meaning": "approve", "reason": "fault test"}
    events = _events()

    dropped = _call_with_drop(Signature._meta.db_table,
                              lambda: client.post(f"/api/v1/approval-requests/{request.pk}/sign/", body, format="json"))

    _assert_503(dropped)
    assert Signature.objects.filter(request=request).count() == 0
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"
    assert _events() == events
    retried = client.post(f"/api/v1/approval-requests/{request.pk}/sign/", body, format="json")
    assert retried.status_code == 201, retried.content[:300]
    assert Signature.objects.filter(request=request).count() == 1
