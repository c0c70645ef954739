"""The monitoring admin's lists fit a 1400px-wide window in a real browser (Debian's Chromium driven by
Playwright against pytest-django's live server): no column is pushed out of sight, and what a
compliance officer scans (a drift result's drifted features, share and severity) is on screen."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from monitoring.services.checks import drift_check_run
from tests.governance.workflow_factories import PASSWORD
from tests.monitoring.conftest import Shop, sample
from tests.monitoring.test_alerts import drifted
from tests.monitoring.test_checks import ingest

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1400
# Playwright's sync API runs an event loop in this thread; the live server's ORM calls are in another.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def officer_page(live_server, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)."
    # Names as long as the demo's ("arrests-release-classifier"), where QA saw the overflow.
    shop = Shop(prefix="arrests-release-")
    drift_check_run(monitor=shop.monitor, batch=ingest(shop, sample(300, seed=4)))
    drifted(shop)
    User.objects.filter(pk=shop.world.compliance.pk).update(is_staff=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                             "--disable-gpu"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.goto(live_server.url + "/admin/login/")
        page.fill("#id_username", shop.world.compliance.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(live_server.url + "/admin/")
        page.base = live_server.url
        page.shots = tmp_path
        yield page
        browser.close()


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
