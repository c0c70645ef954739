"""What the QA pass saw on screen, checked in Chromium (Playwright) against the live server: where
the sign-off page's form errors appear after a reload, and whether the pending list's sign-off button
stays on one line. Layout is the browser's to compute, so the Django test client cannot check these.
"""

import pytest
from django.contrib.auth.models import User

from governance.services.approvals import approval_request_open
from tests.browser import fixtures as browser_suite
from tests.governance.workflow_factories import PASSWORD, World

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORT = browser_suite.VIEWPORT

TEXT_LINES = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }"


def _world() -> World:
    world = World(tier="high")
    User.objects.filter(pk__in=[world.engineer.pk, world.compliance.pk, world.risk.pk]).update(is_staff=True)
    return world


def test_a_sign_off_without_a_meaning_shows_its_errors_where_the_page_opens(login):
    # given: the risk officer on the sign-off page of a pending request
    world = _world()
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    risk = login(world.risk.username, PASSWORD)
    risk.goto(f"/admin/governance/approvalrequest/{request.pk}/sign/")
    # when: the password only, no meaning chosen
    risk.page.fill("input[name=password]", PASSWORD)
    risk.page.click("#sign-submit")
    risk.page.wait_for_load_state()
    # then: the reloaded page opens on a banner naming the field, without scrolling
    banner = risk.page.locator("#form-errors")
    assert banner.count() == 1
    box = banner.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= VIEWPORT["height"]
    assert banner.inner_text().strip() == "Not signed. Correct the form below:\nmeaning: This field is required."
    risk.shot("qa-sign-off-form-errors")
    # and its link leads to the field
    banner.get_by_role("link", name="meaning").click()
    assert risk.page.locator("#row-meaning").is_visible()
    assert risk.page.locator("#row-meaning").bounding_box()["y"] < VIEWPORT["height"]


def test_the_sign_off_button_of_the_pending_list_stays_on_one_line(login):
    # given: a request waiting for the compliance officer, in a window as narrow as a laptop's
    world = _world()
    approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1, environment="production")
    officer = login(world.compliance.username, PASSWORD)
    officer.page.set_viewport_size({"width": 1024, "height": 800})
    # when
    officer.goto("/admin/governance/approvalrequest/pending/")
    # then
    button = officer.page.locator("#result_list a.button", has_text="Sign-off")
    assert button.evaluate(TEXT_LINES) == 1
    officer.shot("qa-pending-sign-off-button")
