"""The auditor reads the whole monitoring admin and is offered nothing that changes state there: no
link to an alert's act page, no form with a submit control, no add or delete link. A compliance
officer, on the same pages, is offered the act page (so the checks below can see a control)."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from monitoring.models import ComplianceAlert, DriftResult, MonitoringBatch
from tests.monitoring.test_admin import login
from tests.monitoring.test_alerts import drifted


class _Controls(HTMLParser):
    """The state-changing controls of a page: act/add/delete links, and submit controls of POST forms
    (the admin's logout form aside: leaving is not a change to the records)."""

    def __init__(self, act_prefix: str):
        super().__init__()
        self.act_prefix = act_prefix
        self.found: list[str] = []
        self._post_form: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        href = attrs.get("href") or ""
        if tag == "a" and ((href.startswith(self.act_prefix) and href.endswith("/act/"))
                           or href.endswith("/add/") or href.endswith("/delete/")):
            self.found.append(f"link {href}")
        if tag == "form" and (attrs.get("method") or "").lower() == "post" and attrs.get("id") != "logout-form":
            self._post_form = attrs.get("id") or attrs.get("action") or "form"
        if self._post_form and (tag == "button" or (tag == "input" and attrs.get("type") == "submit")
                                or (tag == "select" and attrs.get("name") == "action")):
            self.found.append(f"{tag} in POST form {self._post_form}")

    def handle_endtag(self, tag):
        if tag == "form":
            self._post_form = None


def controls(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = _Controls(reverse("admin:monitoring_compliancealert_changelist"))
    parser.feed(response.content.decode())
    return parser.found


def monitoring_admin_pages(shop, alert: ComplianceAlert) -> list[str]:
    batch, result = MonitoringBatch.objects.latest("pk"), DriftResult.objects.latest("pk")
    return [
        reverse("admin:monitoring_compliancealert_changelist"),
        reverse("admin:monitoring_compliancealert_inbox"),
        reverse("admin:monitoring_compliancealert_change", args=[alert.pk]),
        reverse("admin:monitoring_compliancealert_act", args=[alert.pk]),
        reverse("admin:monitoring_driftmonitor_changelist"),
        reverse("admin:monitoring_driftmonitor_change", args=[shop.monitor.pk]),
        reverse("admin:monitoring_monitoringbatch_changelist"),
        reverse("admin:monitoring_monitoringbatch_change", args=[batch.pk]),
        reverse("admin:monitoring_driftresult_changelist"),
        reverse("admin:monitoring_driftresult_change", args=[result.pk]),
    ]


@pytest.fixture
def alert(shop) -> ComplianceAlert:
    return drifted(shop)  # an open critical alert, with a batch and a result behind it


def test_the_auditor_is_offered_no_control_that_changes_state_in_the_monitoring_admin(shop, alert):
    auditor = login(shop.world.auditor)
    for url in monitoring_admin_pages(shop, alert):
        assert controls(auditor, url) == [], url


def test_a_compliance_officer_is_offered_the_act_page_on_the_alert_and_in_the_inbox(shop, alert):
    officer = login(shop.world.compliance)
    act = f"link {reverse('admin:monitoring_compliancealert_act', args=[alert.pk])}"
    assert act in controls(officer, reverse("admin:monitoring_compliancealert_change", args=[alert.pk]))
    assert act in controls(officer, reverse("admin:monitoring_compliancealert_inbox"))
    assert controls(officer, reverse("admin:monitoring_compliancealert_act", args=[alert.pk]))  # the form


def test_a_superuser_auditor_still_reads_only(shop, alert):
    """Being staff (or even superuser) does not lift the auditor's rule: the roles decide."""
    User.objects.filter(pk=shop.world.auditor.pk).update(is_superuser=True)
    auditor = login(shop.world.auditor)
    url = reverse("admin:monitoring_compliancealert_change", args=[alert.pk])
    assert not [c for c in controls(auditor, url) if c.endswith("/act/")]
