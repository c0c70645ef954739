"""Governance KPIs: lead time to approval, approval cycle per role, deployment frequency, rollbacks,
alerts; per model and overall; the /kpis/ API scoped to what the user reads."""

import pytest
from rest_framework.test import APIClient

from governance.gate import gate_evaluate
from governance.models import ApprovalRequest, Signature
from governance.reports.kpis import governance_kpis
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.deployments import deployment_record
from tests.governance.workflow_factories import PASSWORD, World, person, team, version

pytestmark = pytest.mark.django_db


def _release(world: World, mv, environment: str = "production"):
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=mv,
                                    environment=environment)
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    decision = gate_evaluate(actor=world.ci, model_name=mv.model.name, version=mv.version, environment=environment,
                             artifact_sha256=mv.artifact_sha256)
    assert decision.allowed, decision.checks
    return deployment_record(actor=world.ci, model_version=mv, environment=environment,
                             decision_id=decision.decision_id)


def _hours(delta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def test_kpis_of_a_model_released_twice_and_rolled_back():
    # given v1 and v2 released to production, then v1 again (a rollback)
    world = World("limited")
    v2 = version(owner=world.engineer, model_=world.model, artifact="v2", datasets=[world.data],
                 authors=[world.engineer])
    _release(world, world.v1)
    _release(world, v2)
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="production",
                             artifact_sha256=world.v1.artifact_sha256)
    deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                      decision_id=decision.decision_id)
    # when
    kpis = governance_kpis(models=[world.model])
    # then
    (figures,) = kpis["models"]
    requests = ApprovalRequest.objects.filter(model=world.model).order_by("pk")
    leads = [_hours(r.decided_at - r.model_version.created_at) for r in requests]
    assert figures["lead_time_to_approval_hours"]["count"] == 2
    assert figures["lead_time_to_approval_hours"]["mean"] == round(sum(leads) / 2, 2)
    by_role = figures["approval_cycle_hours_by_role"]
    assert sorted(by_role) == ["compliance_officer", "model_validator"]
    assert by_role["model_validator"]["count"] == 2
    assert by_role["model_validator"]["mean"] == round(sum(
        _hours(s.signed_at - s.request.created_at) for s in Signature.objects.filter(role="model_validator")) / 2, 2)
    assert (figures["deployments"], figures["rollbacks"]) == (3, 1)
    assert figures["deployments_per_30_days"] == 1.0  # 3 in the 90-day window
    assert (figures["open_alerts"], figures["alerts"], figures["mean_time_to_resolve_hours"]) == (0, 0, None)
    assert kpis["overall"]["deployments"] == 3 and kpis["model_count"] == 1


def test_a_model_with_nothing_measured_reports_absent_figures_not_zeros():
    world = World("high", prefix="h-")
    (figures,) = governance_kpis(models=[world.model])["models"]
    assert figures["lead_time_to_approval_hours"] == {"median": None, "mean": None, "count": 0}
    assert figures["approval_cycle_hours_by_role"] == {}
    assert (figures["deployments"], figures["rollbacks"]) == (0, 0)


def test_kpi_api_is_scoped_to_the_models_the_user_reads():
    # given two teams' models
    mine, theirs = World("limited", prefix="a-"), World("limited", prefix="b-")
    _release(mine, mine.v1)
    client = APIClient()
    # when / then: a team member sees their team's model only; the auditor sees both
    client.force_authenticate(mine.scientist)
    body = client.get("/api/v1/kpis/").json()
    assert [m["model"] for m in body["models"]] == [mine.model.name]
    assert body["overall"]["deployments"] == 1
    client.force_authenticate(theirs.auditor)
    body = client.get("/api/v1/kpis/").json()
    assert [m["model"] for m in body["models"]] == sorted([mine.model.name, theirs.model.name])
    # the CI identity reads no KPIs; the anonymous nothing
    client.force_authenticate(mine.ci)
    response = client.get("/api/v1/kpis/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    client.force_authenticate(None)
    assert client.get("/api/v1/kpis/").status_code == 401
    # someone of no team and no governance role reads an empty list
    loner = person("loner", "data_scientist")
    team("alone", loner)
    client.force_authenticate(loner)
    assert client.get("/api/v1/kpis/").json()["models"] == []
