"""The report admin: read-only, charts shown as images, the policy's thresholds with their verdicts."""

import pytest
from django.test import Client

from governance.models import Report
from governance.services.evaluations import evaluation_request
from governance.services.policies import policy_update
from tests.governance.evaluation_factories import credit_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Evaluations run in-process after commit, also when the suite has a broker (.ci/run's second pass);
    the worker test goes through the broker instead."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")


def test_report_admin_shows_charts_and_threshold_verdicts(django_capture_on_commit_callbacks):
    # given: an evaluated high-tier version and a threshold it fails
    credit = credit_world("high")
    with django_capture_on_commit_callbacks(execute=True):
        evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                           dataset_version=credit.evaluation, bootstrap=0)
    policy_update(actor=credit.world.compliance, risk_tier="high", reason="strict",
                  changes={"thresholds": {"demographic_parity_ratio_min": 0.99, "metric": "accuracy",
                                          "metric_min": 0.5}})
    report = Report.objects.get(model_version=credit.version, kind="fairness")
    credit.world.compliance.is_staff = True
    credit.world.compliance.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(credit.world.compliance)
    # when
    page = client.get(f"/admin/governance/report/{report.pk}/change/")
    # then
    assert page.status_code == 200
    html = page.content.decode()
    charts = list(report.charts.values_list("name", flat=True))
    for name in charts:
        assert f'src="/api/v1/reports/{report.pk}/charts/{name}.png"' in html
    assert "FAIL" in html and "pass" in html  # DP ratio fails, accuracy passes
    image = client.get(f"/api/v1/reports/{report.pk}/charts/{charts[0]}.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    # read-only: no add, change or delete
    assert client.get("/admin/governance/report/add/").status_code == 403
    assert client.post(f"/admin/governance/report/{report.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Report.objects.filter(pk=report.pk).exists()
