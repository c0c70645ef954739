"""Structured JSON logs carry the request's correlation id, the one its audit events carry."""

import json
import logging

import pytest

from mlops_site.common.context import correlation_id_reset, correlation_id_set
from mlops_site.common.jsonlog import JsonFormatter


def _line(record: logging.LogRecord) -> dict:
    return json.loads(JsonFormatter().format(record))


def test_a_log_line_is_one_json_object_with_the_correlation_id():
    # given
    token = correlation_id_set("req-12345678")
    try:
        record = logging.getLogger("attest.test").makeRecord(
            "attest.test", logging.WARNING, __file__, 1, "gate denied %s", ("credit",), None,
            extra={"model": "credit", "odd": object()})
        # when
        line = _line(record)
    finally:
        correlation_id_reset(token)
    # then
    assert line["message"] == "gate denied credit" and line["level"] == "WARNING"
    assert line["correlation_id"] == "req-12345678" and line["logger"] == "attest.test"
    assert line["model"] == "credit" and line["odd"].startswith("<object")
    assert line["timestamp"].endswith("+00:00")


def test_exceptions_are_kept_in_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "levelno": 40, "levelname": "ERROR",
                                        "exc_info": sys.exc_info()})
    assert "ValueError: boom" in _line(record)["exception"]


@pytest.mark.django_db
def test_a_request_logs_with_the_id_it_answers_with(client):
    # given: a JSON handler, as settings.LOGGING installs with LOG_FORMAT=json
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mlops_site.common.limits")
    logger.addHandler(handler)
    try:
        # when: a request that logs while it is served (a gate body over its limit)
        response = client.generic("POST", "/api/v1/gate/", "x" * 70_000, content_type="application/json",
                                  HTTP_X_REQUEST_ID="ci-run-000042")
    finally:
        logger.removeHandler(handler)
    # then
    assert response.status_code == 413 and response["X-Request-ID"] == "ci-run-000042"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[-1]["correlation_id"] == "ci-run-000042"
    assert (lines[-1]["message"], lines[-1]["content_length"], lines[-1]["path"]) == (
        "request body over the endpoint's limit", 70_000, "/api/v1/gate/")


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/audit/events/", 401, "Unauthorized: /api/v1/audit/events/"),
    ("/api/v1/no-such-endpoint/", 404, "Not Found: /api/v1/no-such-endpoint/"),
])
def test_djangos_request_line_for_a_refused_request_carries_its_id(client, path, status, message):
    # given: a JSON handler on the logger Django writes its 4xx/5xx lines to (its handler does so
    # after the middleware chain has returned)
    import io

    from mlops_site.common import context

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    before = context._correlation_id.get()
    try:
        # when
        response = client.get(path, HTTP_X_REQUEST_ID="ci-run-000401")
    finally:
        logger.removeHandler(handler)
    # then: the line Django wrote has the id the response answered with
    assert response.status_code == status and response["X-Request-ID"] == "ci-run-000401"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line["correlation_id"]) for line in lines] == [(message, "ci-run-000401")]
    assert lines[0]["status_code"] == status
    # and the id does not outlive the response: what was current before the request is again
    assert context._correlation_id.get() == before
