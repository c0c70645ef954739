"""schemathesis over every operation of /api/schema/, authenticated, through the real WSGI application.

Each operation gets `ATTEST_FUZZ_EXAMPLES` generated requests (`make test`: a few dozen; `make fuzz`:
a few hundred), valid and invalid ones, sent in-process to Django's WSGI handler on the test
database, with an administrator's token (every action but signing) over objects of two teams.
Passes when: no 5xx; status codes, content types, headers and bodies conform to the schema; an
invalid request is refused with a 4xx; every 4xx/5xx body is the error contract
`{"error": {"code", "message", "fields"}}`.

The schema is the one `/api/schema/` serves (the same generator; `test_the_served_schema_is_the_one_fuzzed`).
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks

from tests.module_data import module_data
from tests.security import operations
from tests.security.test_authz_matrix import RECEIVERS, enable_receivers
from tests.security.world import build_world

EXAMPLES = int(os.environ.get("ATTEST_FUZZ_EXAMPLES", "15"))

schema = schemathesis.openapi.from_dict(operations.schema())

CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance, st_checks.content_type_conformance,
          st_checks.response_headers_conformance, st_checks.response_schema_conformance,
          ]


@schemathesis.check
def error_contract(ctx, response, case):
    """Every 4xx and 5xx body is {"error": {"code": snake_case, "message": text, "fields": {...}}}."""
    if response.status_code < 400:
        return None
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict) and set(body) == {"error"}, f"not the error contract: {body!r}"[:300]
    assert isinstance(error.get("code"), str) and error["code"].replace("_", "").isalnum() \
        and error["code"] == error["code"].lower(), f"bad code {error.get('code')!r}"
    assert isinstance(error.get("message"), str) and error["message"], "empty message"
    assert isinstance(error.get("fields"), dict), "fields is not an object"
    return None


@pytest.fixture(scope="module")
def wsgi_app():
    return get_wsgi_application()


@pytest.fixture(scope="module")
def fuzz_world_built(django_db_setup, django_db_blocker):
    """The world once for the module: building it runs two evaluations with their charts (~2.5 s).

    Each operation's test runs in a savepoint, so what one operation's requests write is gone
    before the next, as with a world of its own.
    """
    with module_data(django_db_blocker, ATTEST_WEBHOOK_URLS=[], **RECEIVERS):
        yield build_world()


@pytest.fixture
def fuzz_world(db, fuzz_world_built, settings_fixture_for_fuzz):
    # The WSGI handler closes "old" connections around each request; inside a test's transaction
    # that would end the transaction, so (as Django's test client does) it is switched off here.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield fuzz_world_built
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def settings_fixture_for_fuzz(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    settings.ATTEST_WEBHOOK_URLS = []
    enable_receivers(settings)
    return settings


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, fuzz_world, wsgi_app):
    token = fuzz_world.tokens["admin"]
    case.call_and_validate(app=wsgi_app, headers={"Authorization": f"Token {token}"}, checks=CHECKS,
                           additional_checks=[error_contract])


def test_the_served_schema_is_the_one_fuzzed(client):
    served = client.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert set(served.json()["paths"]) == set(operations.schema()["paths"])
