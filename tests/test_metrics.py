"""GET /metrics: gate counters by result and failed check code, request latencies, alert counts."""

import re

import pytest
from rest_framework.test import APIClient

from tests.governance.workflow_factories import PASSWORD, World, token_for

pytestmark = pytest.mark.django_db


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when it is not there yet)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(3) or "").split(","))) if match.group(3) else ""
        if found == wanted:
            return float(match.group(4))
    return 0.0


def _metrics(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_gate_answers_are_counted_by_result_and_failed_check(client, django_capture_on_commit_callbacks):
    # given
    from governance.services.approvals import approval_request_open, approval_request_sign

    world = World("limited")
    ci = APIClient()
    ci.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.ci)}")
    body = {"model": world.model.name, "version": 1, "environment": "production",
            "artifact_sha256": world.v1.artifact_sha256}
    before = _metrics(client)
    # when: one denial (no approval), then an approval and one allowed answer
    with django_capture_on_commit_callbacks(execute=True):
        denied = ci.post("/api/v1/gate/", body, format="json").json()
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    with django_capture_on_commit_callbacks(execute=True):
        allowed = ci.post("/api/v1/gate/", body, format="json").json()
    after = _metrics(client)
    # then
    assert (denied["allowed"], allowed["allowed"]) == (False, True)
    delta = {result: _sample(after, "attest_gate_decisions_total", result=result)
             - _sample(before, "attest_gate_decisions_total", result=result) for result in ("allowed", "denied")}
    assert delta == {"allowed": 1.0, "denied": 1.0}
    failed = [check["code"] for check in denied["checks"] if not check["passed"]]
    assert "approval_missing" in failed
    for code in failed:
        assert (_sample(after, "attest_gate_failed_checks_total", code=code)
                - _sample(before, "attest_gate_failed_checks_total", code=code)) == 1.0


def test_request_latency_is_observed_by_url_pattern(client):
    # given
    before = _metrics(client)
    # when
    client.get("/healthz")
    client.get("/api/v1/models/")  # 401, still a request
    after = _metrics(client)
    # then
    for route, status in (("/healthz", "200"), ("/api/v1/models/", "401")):
        count = "attest_http_request_duration_seconds_count"
        assert (_sample(after, count, method="GET", route=route, status=status)
                - _sample(before, count, method="GET", route=route, status=status)) == 1.0
    assert "attest_compliance_alerts" in after
    assert "attest_mlflow_alias_alerts" in after


def test_open_mlflow_alias_alerts_are_exposed(client):
    # given: one open alias_moved compliance alert on an imported model
    from monitoring.services.alerts import compliance_alert_raise_alias_moved

    world = World("limited")
    compliance_alert_raise_alias_moved(actor=world.engineer, tracking_uri="http://mlflow", mlflow_name="credit",
                                       alias="champion", mlflow_version=2, previous_version=1, model=world.model,
                                       model_version=world.v1)
    # when
    text = _metrics(client)
    # then
    assert _sample(text, "attest_mlflow_alias_alerts", status="open") == 1.0
