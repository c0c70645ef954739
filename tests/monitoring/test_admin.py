"""The monitoring admin: the monitor page and its drift chart (a real PNG), the alerts inbox, acting on
an alert through the services (a critical one with the officer's password), read-only evidence."""

import io
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from matplotlib.dates import ConciseDateFormatter
from PIL import Image

from governance.models import AuditQueueEntry
from governance.services.approvals import approval_request_withdraw
from monitoring.admin import drift_chart_figure
from monitoring.models import AlertSignature, ComplianceAlert, DriftResult, MonitoringBatch
from monitoring.services.alerts import compliance_alert_acknowledge
from monitoring.services.checks import drift_check_run
from monitoring.stats import P_VALUE_TESTS
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
    assert refused.context["form"].errors == {"action": ["You may not resolve this alert now."]}
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


def test_the_drift_chart_time_axis_is_labelled_and_dated(shop, tmp_path):
    # given: two checks seconds apart (where matplotlib's default ticks read "03:53.540000", with no date)
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    drifted(shop)
    checked = DriftResult.objects.latest("checked_at").checked_at
    # when
    figure = drift_chart_figure(shop.monitor)
    figure.savefig(tmp_path / "drift.png", format="png")  # draws: tick labels exist after this
    # then
    bottom = figure.axes[len(shop.monitor.feature_names) - 1]
    assert bottom.get_xlabel() == "checked at (UTC)"
    assert isinstance(bottom.xaxis.get_major_formatter(), ConciseDateFormatter)
    ticks = [t.get_text() for t in bottom.get_xticklabels() if t.get_text()]
    assert ticks and not [t for t in ticks if re.search(r"\.\d{6}", t)]
    assert checked.strftime("%Y-%b-%d") in bottom.xaxis.get_offset_text().get_text()


def test_the_drift_chart_draws_what_the_threshold_is_compared_with(shop):
    # given: two checks; the monitor watches features with a p-value test and with a distance
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    drifted(shop)
    results = list(DriftResult.objects.filter(monitor=shop.monitor).order_by("checked_at", "id"))
    # when
    figure = drift_chart_figure(shop.monitor)
    # then: a p-value panel plots the p-values (once the statistic, under a "p-value" label)
    tests = set()
    for ax, name in zip(figure.axes, shop.monitor.feature_names, strict=False):
        rows = [next(f for f in r.features if f["feature"] == name) for r in results]
        test = rows[-1]["test"]
        tests.add(test in P_VALUE_TESTS)
        key = "p_value" if test in P_VALUE_TESTS else "statistic"
        assert list(ax.lines[0].get_ydata()) == pytest.approx([row[key] for row in rows]), name
        assert ax.get_ylabel() == ("p-value" if test in P_VALUE_TESTS else "distance")
    assert True in tests  # at least one p-value panel: the case once drawn as the statistic


def test_a_risk_officer_is_offered_only_acknowledge_on_a_critical_alert(shop):
    # given
    alert = drifted(shop)
    url = reverse("admin:monitoring_compliancealert_act", args=[alert.pk])
    risk = login(shop.world.risk)
    queued = AuditQueueEntry.objects.count()
    # when
    page = risk.get(url)
    refused = risk.post(url, {"action": "dismiss", "reason": "not ours", "password": PASSWORD})
    # then
    assert page.context["form"].fields["action"].choices == [("acknowledge", "acknowledge")]
    assert "password" not in page.context["form"].fields
    html = page.content.decode()
    assert 'type="password"' not in html and 'value="resolve"' not in html and 'value="dismiss"' not in html
    assert refused.context["form"].errors == {"action": ["You may not dismiss this alert now."]}
    alert.refresh_from_db()
    assert alert.status == "open"
    assert AuditQueueEntry.objects.count() == queued
    assert not AlertSignature.objects.exists()


def test_a_compliance_officer_is_offered_every_step_and_the_password(shop):
    alert = drifted(shop)
    page = login(shop.world.compliance).get(reverse("admin:monitoring_compliancealert_act", args=[alert.pk]))
    assert [c for c, _ in page.context["form"].fields["action"].choices] == ["acknowledge", "resolve", "dismiss"]
    assert "password" in page.context["form"].fields


def test_a_risk_officer_has_nothing_left_to_do_with_an_acknowledged_critical_alert(shop):
    alert = drifted(shop)
    compliance_alert_acknowledge(actor=shop.world.risk, alert=alert, reason="Looking into it.")
    risk = login(shop.world.risk)
    page = risk.get(reverse("admin:monitoring_compliancealert_act", args=[alert.pk])).content.decode()
    assert "<form method=\"post\">" not in page
    assert "there is nothing more you can do with it" in page
    inbox = risk.get(reverse("admin:monitoring_compliancealert_inbox")).content.decode()
    assert reverse("admin:monitoring_compliancealert_act", args=[alert.pk]) not in inbox


def test_the_inbox_button_says_acknowledge_to_who_cannot_sign(shop):
    alert = drifted(shop)
    act = reverse("admin:monitoring_compliancealert_act", args=[alert.pk])
    risk = login(shop.world.risk).get(reverse("admin:monitoring_compliancealert_inbox")).content.decode()
    officer = login(shop.world.compliance).get(reverse("admin:monitoring_compliancealert_inbox")).content.decode()
    assert f'<a class="button" href="{act}">Acknowledge…</a>' in risk
    assert f'<a class="button" href="{act}">Sign off…</a>' in officer


def test_the_alert_page_shows_the_retraining_request_status_as_it_is(shop):
    # given: the critical alert opened retraining request, then it was withdrawn
    alert = drifted(shop)
    request = alert.retraining_request
    approval_request_withdraw(actor=shop.world.compliance, request=request, reason="Data fixed upstream.")
    client = login(shop.world.compliance)
    # when
    html = client.get(reverse("admin:monitoring_compliancealert_act", args=[alert.pk])).content.decode()
    # then
    assert '<span id="retraining-status">withdrawn</span>' in html
    assert "pending sign-off" not in html


def test_the_alert_page_says_pending_sign_off_while_the_request_is_pending(shop):
    alert = drifted(shop)
    html = login(shop.world.compliance).get(
        reverse("admin:monitoring_compliancealert_act", args=[alert.pk])).content.decode()
    assert '<span id="retraining-status">pending sign-off</span>' in html


def test_the_alert_list_links_to_the_inbox(shop):
    drifted(shop)
    for user in (shop.world.compliance, shop.world.auditor):
        html = login(user).get(reverse("admin:monitoring_compliancealert_changelist")).content.decode()
        assert f'<a href="{reverse("admin:monitoring_compliancealert_inbox")}">Alerts inbox</a>' in html


def test_history_of_an_alert_and_its_retraining_request_is_their_audit_trail(shop, audit_flush):
    # given
    alert = drifted(shop)
    compliance_alert_acknowledge(actor=shop.world.compliance, alert=alert, reason="Looking into it.")
    audit_flush()
    client = login(shop.world.compliance)
    # when
    to_alert = client.get(reverse("admin:monitoring_compliancealert_history", args=[alert.pk]))
    to_request = client.get(reverse("admin:governance_approvalrequest_history", args=[alert.retraining_request_id]))
    # then
    assert to_alert.status_code == 302
    assert to_alert["Location"] == (f"/admin/governance/auditevent/?object_type=monitoring.compliancealert"
                                    f"&object_id={alert.pk}")
    trail = client.get(to_alert["Location"]).context["cl"].result_list
    assert [e.action for e in trail] == ["monitoring.alert.acknowledged", "monitoring.alert.raised"]
    assert to_request["Location"] == (f"/admin/governance/auditevent/?object_type=governance.approvalrequest"
                                      f"&object_id={alert.retraining_request_id}")
    trail = client.get(to_request["Location"]).context["cl"].result_list
    assert [e.action for e in trail] == ["governance.approval.requested"]
