"""The gate reads real reports: thresholds name metric, group and value; a newer or older report is stale."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from governance.gate import gate_checks_compute
from governance.models import Report
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.evaluations import evaluation_request
from governance.services.policies import policy_update
from registry.demo import ARRESTS_MODEL
from registry.models import ModelVersion
from tests.governance.evaluation_factories import credit_world
from tests.governance.workflow_factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Evaluations run in-process after commit, also when the suite has a broker (.ci/run's second pass);
    the worker test goes through the broker instead."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")


def failed(checks) -> dict[str, str]:
    return {c["code"]: c["message"] for c in checks if not c["passed"]}


def checks_of(version: ModelVersion, now=None):
    return gate_checks_compute(model_version=version, environment="production",
                               artifact_sha256=version.artifact_sha256, now=now)[0]


def test_the_demo_gradient_boosting_model_fails_a_fairness_threshold_by_metric_group_and_value(
        settings, django_capture_on_commit_callbacks):
    # given: the demo, and a high-tier policy allowing an equalized-odds difference of 0.3 outside small groups
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_demo_users", stdout=io.StringIO())
        call_command("load_demo", stdout=io.StringIO())
    from django.contrib.auth.models import User

    policy_update(actor=User.objects.get(username="colm"), risk_tier="high", reason="test thresholds",
                  changes={"thresholds": {"equalized_odds_difference_max": 0.3, "fairness_small_groups": "exclude",
                                          "metric": "accuracy", "metric_min": 0.7}})
    logistic, boosting = ModelVersion.objects.filter(model__name=ARRESTS_MODEL).order_by("version")
    # when
    boosting_checks, logistic_checks = checks_of(boosting), checks_of(logistic)
    # then: the gradient-boosting model fails, naming the metric, where and the value; the logistic passes
    report = Report.objects.get(model_version=boosting, kind="fairness")
    worst = report.results["headline_excluding_small"]
    where = worst["where"]["equalized_odds_difference"]
    assert worst["equalized_odds_difference"] > 0.3
    assert failed(boosting_checks)["fairness_threshold_failed"] == (
        f"Fairness thresholds failed (report #{report.pk}): equalized odds difference "
        f"{worst['equalized_odds_difference']} at {where['feature']}={where['group']} > 0.3.")
    assert "fairness_threshold_failed" not in failed(logistic_checks)
    assert "report_missing" not in failed(boosting_checks) and "report_stale" not in failed(boosting_checks)
    # counting small groups too (the default), the worst groups are tiny ones, and the message says so
    policy_update(actor=User.objects.get(username="colm"), risk_tier="high", reason="count small groups",
                  changes={"thresholds": {"demographic_parity_ratio_min": 0.8}})
    message = failed(checks_of(boosting))["fairness_threshold_failed"]
    headline = report.results["headline"]
    place = headline["where"]["demographic_parity_ratio"]
    assert message == (f"Fairness thresholds failed (report #{report.pk}): demographic parity ratio "
                       f"{headline['demographic_parity_ratio']} at {place['feature']}={place['group']} "
                       f"(a small group, under 30 rows) < 0.8.")


def _approve(credit) -> None:
    world = credit.world
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=credit.version,
                                    environment="production")
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    request.refresh_from_db()
    assert request.status == "approved"


def _evaluate(credit, capture) -> None:
    with capture(execute=True):
        evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                           dataset_version=credit.evaluation, bootstrap=0)


def test_reports_required_then_fresh_then_stale(django_capture_on_commit_callbacks):
    # given: a high-tier model (fairness and explainability reports required), thresholds it meets
    credit = credit_world("high")
    policy_update(actor=credit.world.compliance, risk_tier="high", reason="thresholds this model meets",
                  changes={"thresholds": {"metric": "accuracy", "metric_min": 0.6}})
    assert failed(checks_of(credit.version))["report_missing"] == (
        f"Required report(s) missing for {credit.version}: fairness, explainability.")
    # when: evaluated, then approved
    _evaluate(credit, django_capture_on_commit_callbacks)
    _approve(credit)
    # then: allowed
    assert failed(checks_of(credit.version)) == {}
    # a report older than the policy allows is stale
    later = timezone.now() + dt.timedelta(days=91)
    assert failed(checks_of(credit.version, now=later))["report_stale"] == (
        "Stale report(s): explainability is older than 90 days; fairness is older than 90 days.")
    # a recompute after sign-off: the approval was signed on other reports
    _evaluate(credit, django_capture_on_commit_callbacks)
    assert sorted(failed(checks_of(credit.version))) == ["report_stale"]
    assert "The reports changed after approval #" in failed(checks_of(credit.version))["report_stale"]


def test_performance_threshold_uses_the_report_when_the_version_registered_no_metric(
        django_capture_on_commit_callbacks):
    credit = credit_world("high")
    ModelVersion.objects.filter(pk=credit.version.pk).update(metrics={})  # as registered without metrics
    credit.version.refresh_from_db()
    _evaluate(credit, django_capture_on_commit_callbacks)
    report = Report.objects.get(model_version=credit.version, kind="fairness")
    accuracy = report.results["overall"]["accuracy"]
    policy_update(actor=credit.world.compliance, risk_tier="high", reason="demanding",
                  changes={"thresholds": {"metric": "accuracy", "metric_min": 0.99}})
    assert failed(checks_of(credit.version))["performance_threshold_failed"] == (
        f"accuracy {accuracy} (fairness report #{report.pk}) < 0.99.")


def test_performance_threshold_trusts_attests_measurement_over_a_declared_figure(
        django_capture_on_commit_callbacks):
    # given: the registrant declared a near-perfect accuracy; Attest measured the version on its evaluation data
    credit = credit_world("high")
    ModelVersion.objects.filter(pk=credit.version.pk).update(metrics={"accuracy": 0.999})
    credit.version.refresh_from_db()
    _evaluate(credit, django_capture_on_commit_callbacks)
    report = Report.objects.get(model_version=credit.version, kind="fairness")
    accuracy = report.results["overall"]["accuracy"]
    assert accuracy < 0.99
    # when: the policy asks for 0.99
    policy_update(actor=credit.world.compliance, risk_tier="high", reason="demanding",
                  changes={"thresholds": {"metric": "accuracy", "metric_min": 0.99}})
    # then: the measured figure decides, and the answer shows the declared one beside it
    assert failed(checks_of(credit.version))["performance_threshold_failed"] == (
        f"accuracy {accuracy} (fairness report #{report.pk}; 0.999 declared at registration) < 0.99.")

