"""The model card: Model Card Toolkit sections built from the registry and the newest reports, scoped by team."""

import pytest
from rest_framework.test import APIClient

from governance.models import Report
from governance.services.evaluations import evaluation_request
from tests.governance.evaluation_factories import credit_world
from tests.governance.workflow_factories import token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Evaluations run in-process after commit, also when the suite has a broker (.ci/run's second pass);
    the worker test goes through the broker instead."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")

MCT_SECTIONS = {"model_details", "model_parameters", "quantitative_analysis", "considerations"}
MITCHELL_SECTIONS = {"intended_use", "factors", "metrics", "evaluation_data", "training_data",
                     "quantitative_analyses", "ethical_considerations", "caveats_and_recommendations"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_model_card_of_an_evaluated_version(django_capture_on_commit_callbacks):
    # given
    credit = credit_world()
    with django_capture_on_commit_callbacks(execute=True):
        evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                           dataset_version=credit.evaluation, bootstrap=20)
    fairness = Report.objects.get(model_version=credit.version, kind="fairness")
    # when
    response = client_for(credit.world.auditor).get(f"/api/v1/model-versions/{credit.version.pk}/model-card/")
    # then
    assert response.status_code == 200
    card = response.json()
    assert MCT_SECTIONS | MITCHELL_SECTIONS <= set(card)
    details = card["model_details"]
    assert (details["name"], details["version"]["name"]) == (credit.world.model.name, str(credit.version.version))
    assert details["artifact_sha256"] == credit.version.artifact_sha256
    assert details["owners"] == [{"name": credit.world.team.name, "contact": ""}]
    assert [d["sha256"] for d in card["model_parameters"]["data"]["train"]] == [credit.training.sha256]
    assert card["evaluation_data"] == card["model_parameters"]["data"]["eval"]
    assert card["factors"]["sensitive_features"] == ["sex", "age"]
    assert card["factors"]["binning"] == fairness.results["binning"]
    metrics = card["quantitative_analysis"]["performance_metrics"]
    assert {"type": "accuracy", "value": 0.75, "slice": "overall", "source": "registered with the version"} in metrics
    female = next(g for g in fairness.results["features"]["sex"]["groups"] if g["group"] == "female")
    row = next(m for m in metrics if m["type"] == "selection_rate" and m["slice"] == "sex=female")
    assert row["value"] == female["selection_rate"]
    assert row["confidence_interval"]["lower_bound"] == female["ci"]["selection_rate"]["low"]
    graphics = card["quantitative_analysis"]["graphics"]["collection"]
    assert len(graphics) == 2 + 2 + 1  # headline, sex, age; SHAP importance and beeswarm
    chart = client_for(credit.world.auditor).get(graphics[0]["image"])
    assert chart.status_code == 200 and chart["Content-Type"] == "image/png"
    # the proxy check of the explainability report becomes an ethical consideration
    assert any("sex" in item["name"] for item in card["ethical_considerations"])
    assert {r["kind"] for r in card["reports"]} == {"fairness", "explainability"}


def test_model_card_of_another_teams_version_is_not_found():
    credit = credit_world()
    other = credit_world(prefix="other-")
    response = client_for(other.world.engineer).get(f"/api/v1/model-versions/{credit.version.pk}/model-card/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_model_card_without_reports_says_what_the_registry_knows():
    credit = credit_world()
    card = client_for(credit.world.engineer).get(f"/api/v1/model-versions/{credit.version.pk}/model-card/").json()
    assert card["reports"] == [] and card["quantitative_analysis"]["graphics"]["collection"] == []
    assert card["quantitative_analysis"]["performance_metrics"] == [
        {"type": "accuracy", "value": 0.75, "slice": "overall", "source": "registered with the version"}]
