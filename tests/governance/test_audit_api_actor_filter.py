"""The audit API's actor filter: a user id, or a username; never a 500 on Unicode digits (schemathesis found one)."""

import pytest
from rest_framework.test import APIClient

from tests.governance.workflow_factories import person, token_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("actor", ["²", "١٢", "colm"])
def test_an_actor_that_is_not_an_ascii_id_is_read_as_a_username(actor):
    officer = person("officer", "compliance_officer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(officer, 'audit:read')}")

    response = client.get("/api/v1/audit/events/", {"actor": actor})

    assert response.status_code == 200
    assert response.json()["count"] == 0
