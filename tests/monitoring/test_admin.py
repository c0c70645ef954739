"""The monitoring admin: the monitor page and its drift chart (a real PNG), the alerts inbox, acting on
an alert through the services (a critical one with the officer's password), read-only evidence."""

import io

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from PIL import Image

from monitoring.models import AlertSignature, ComplianceAlert, DriftResult, MonitoringBatch
from monitoring.services.checks import drift_check_run
from tests.governance.workflow_factories import PASSWORD, person
from tests.monitoring.conftest import sample
from tests.monitoring.test_alerts import drifted
from tests.monitoring.test_checks import ingest


def login(user: User) -> Client:
    User.objects.filter(pk=user.pk).update(is_staff=True)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def test_the_monitor_page_draws_the_drift_of_each_feature_over_time(shop):
    # given: a clean and a drifted check
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    alert = drifted(shop)
    client = login(shop.world.engineer)
    # when
    page = client.get(reverse("admin:monitoring_driftmonitor_change", args=[shop.monitor.pk]))
    chart = client.get(reverse("admin:monitoring_driftmonitor_chart", args=[shop.monitor.pk]))
    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("admin:monitoring_driftmonitor_chart", args=[shop.monitor.pk]) in html
    assert f"#{alert.pk}" in html and "critical" in html
    assert chart.status_code == 200 and chart["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(chart.content))
    assert image.format == "PNG"
    assert image.size[1] >= 3 * 150  # one panel per feature


def test_a_foreign_user_gets_neither_the_monitor_nor_its_chart(shop):
    client = login(person("stranger", "data_scientist"))
    assert client.get(reverse("admin:monitoring_driftmonitor_chart", args=[shop.monitor.pk])).status_code == 404
    page = client.get(reverse("admin:monitoring_driftmonitor_change", args=[shop.monitor.pk]))
    assert page.status_code in (302, 404)


def test_the_inbox_lists_active_alerts_critical_first(shop):
    critical = drifted(shop)
    frame = sample(300, seed=4).drop(columns=["income"])
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, frame))
    warning = ComplianceAlert.objects.get(kind="data_quality")
    html = login(shop.world.compliance).get(reverse("admin:monitoring_compliancealert_inbox")).content.decode()
    assert html.index(f"#{critical.pk}") < html.index(f"#{warning.pk}")
    assert "Sign off" in html


def test_a_compliance_officer_signs_a_critical_alert_resolved_in_the_admin(shop):
    alert = drifted(shop)
    client = login(shop.world.compliance)
    url = reverse("admin:monitoring_compliancealert_act", args=[alert.pk])
    assert "electronic signature" in client.get(url).content.decode()
    wrong = client.post(url, {"action": "resolve", "reason": "fixed", "password": "nope"})
    assert "reauthentication_failed" in wrong.content.decode()
    response = client.post(url, {"action": "resolve", "reason": "Retraining requested; shift explained.",
                                 "password": PASSWORD})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "resolved"
    signature = AlertSignature.objects.get(alert=alert)
    page = client.get(reverse("admin:monitoring_compliancealert_change", args=[alert.pk])).content.decode()
    assert signature.printed_name in page and "verifies" in page


def test_an_engineer_may_acknowledge_but_not_sign_and_the_auditor_only_reads(shop):
    alert = drifted(shop)
    url = reverse("admin:monitoring_compliancealert_act", args=[alert.pk])
    engineer = login(shop.world.engineer)
    refused = engineer.post(url, {"action": "resolve", "reason": "fine", "password": PASSWORD})
    assert "signer_role_missing" in refused.content.decode()
    assert engineer.post(url, {"action": "acknowledge", "reason": "on it"}).status_code == 302
    auditor = login(shop.world.auditor)
    assert auditor.get(reverse("admin:monitoring_compliancealert_change", args=[alert.pk])).status_code == 200
    auditor.post(url, {"action": "dismiss", "reason": "x", "password": PASSWORD})
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert not AlertSignature.objects.exists()


def test_batches_and_results_are_read_only_in_the_admin(shop):
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    client = login(shop.world.engineer)
    batch, result = MonitoringBatch.objects.get(), DriftResult.objects.get()
    assert client.get(reverse("admin:monitoring_monitoringbatch_change", args=[batch.pk])).status_code == 200
    assert client.get(reverse("admin:monitoring_driftresult_change", args=[result.pk])).status_code == 200
    assert client.post(reverse("admin:monitoring_driftresult_delete", args=[result.pk]), {"post": "yes"}
                       ).status_code == 403
    assert DriftResult.objects.count() == 1
