"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

A plugin of the root conftest (pytest_plugins), not a conftest of tests/browser/: every browser
test of the suite (tests/browser, the governance and monitoring admin's layout tests) shares the
one session-wide Chromium. Playwright's sync API allows one per thread, so a module that started
its own, or imported these fixtures into its namespace (a second session fixture), failed when it
ran after another.

Chromium is not optional here: without /usr/bin/chromium the tests fail (they never skip);
.ci/run installs it. Screenshots go to var/screenshots/<run>/ (not committed), where <run> is
ATTEST_SCREENSHOT_RUN or the UTC time and database of the run.
"""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
# Playwright's sync API runs an event loop in this thread; the live server's ORM calls are in
# another thread, but Django's async-safety check looks at this one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)."
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def _async_unsafe(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    run = os.environ.get("ATTEST_SCREENSHOT_RUN") or (
        dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + "-" + connection.vendor)
    path = Path(settings.BASE_DIR) / "var" / "screenshots" / run
    path.mkdir(parents=True, exist_ok=True)
    return path


class Session:
    """One logged-in user's browser tab (its own context: cookies are not shared)."""

    def __init__(self, browser, live_server, screenshot_dir: Path, username: str, password: str):
        self.base = live_server.url
        self.shots = screenshot_dir
        self.username = username
        self.context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.page.goto(self.base + "/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_url(self.base + "/admin/")

    def goto(self, path: str):
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def login(browser, live_server, screenshot_dir, _async_unsafe):
    """login(username, password) -> Session; every session is closed after the test."""
    sessions: list[Session] = []

    def _login(username: str, password: str) -> Session:
        session = Session(browser, live_server, screenshot_dir, username, password)
        sessions.append(session)
        return session

    yield _login
    for session in sessions:
        session.close()
