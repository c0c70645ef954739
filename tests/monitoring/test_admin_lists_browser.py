"""The monitoring admin's lists fit a 1400px-wide window in a real browser (Debian's Chromium driven by
Playwright against pytest-django's live server): no column is pushed out of sight, and what a
compliance officer scans (a drift result's drifted features, share and severity) is on screen."""


import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from monitoring.services.checks import drift_check_run
from tests.governance.workflow_factories import PASSWORD
from tests.monitoring.conftest import Shop, sample
from tests.monitoring.test_alerts import drifted
from tests.monitoring.test_checks import ingest

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 1400


@pytest.fixture
def officer_page(browser, live_server, _async_unsafe, tmp_path):
    """A compliance officer's tab, 1400px wide, in the suite's one Chromium (tests/browser/fixtures.py)."""
    # Names as long as the demo's ("arrests-release-classifier"), where QA saw the overflow.
    shop = Shop(prefix="arrests-release-")
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    drifted(shop)
    User.objects.filter(pk=shop.world.compliance.pk).update(is_staff=True)
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", shop.world.compliance.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + "/admin/")
    page.base = live_server.url
    page.shots = tmp_path
    yield page
    context.close()


def headers_off_screen(page) -> list[str]:
    """The column headers of the list that end beyond what its scrolling box (or the window) shows:
    the admin scrolls a wide list inside `.results`, where the filter column covers its right end."""
    return page.evaluate("""() => {
        const box = document.querySelector('#result_list').closest('.results').getBoundingClientRect();
        const edge = Math.min(box.right, window.innerWidth);
        return [...document.querySelectorAll('#result_list thead th')]
            .filter(th => th.getBoundingClientRect().right > edge + 0.5)
            .map(th => th.innerText.trim());
    }""")


@pytest.mark.parametrize("name", ["driftresult", "driftmonitor", "monitoringbatch", "compliancealert"])
def test_each_monitoring_list_fits_a_1400px_window(officer_page, name):
    # when
    officer_page.goto(officer_page.base + reverse(f"admin:monitoring_{name}_changelist"))
    officer_page.screenshot(path=str(officer_page.shots / f"{name}.png"), full_page=True)
    # then
    assert officer_page.locator("#result_list tbody tr").count() >= 1
    assert headers_off_screen(officer_page) == []
    assert officer_page.evaluate("document.documentElement.scrollWidth") <= WIDTH


def test_a_drift_result_row_shows_its_drifted_features_share_and_severity(officer_page):
    # when
    url = reverse("admin:monitoring_driftresult_changelist") + "?dataset_drift__exact=1"
    officer_page.goto(officer_page.base + url)
    # then
    headers = [h.strip().lower() for h in officer_page.locator("#result_list thead th").all_inner_texts()]
    assert {"drifted features", "drift share", "severity"} <= set(headers)
    assert headers_off_screen(officer_page) == []


@pytest.mark.parametrize("name", ["governance_auditevent", "governance_approvalpolicy"])
def test_the_governance_lists_an_officer_scans_fit_a_1400px_window(officer_page, name):
    # when
    officer_page.goto(officer_page.base + reverse(f"admin:{name}_changelist"))
    officer_page.screenshot(path=str(officer_page.shots / f"{name}.png"), full_page=True)
    # then
    assert headers_off_screen(officer_page) == []
    assert officer_page.evaluate("document.documentElement.scrollWidth") <= WIDTH
