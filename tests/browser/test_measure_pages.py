"""axe-core (WCAG 2.1 A and AA) on the pages where a household's measures each have their own
lifecycle, in Dutch and English, on a 375 px wide phone: the resident's withdraw page (an
installed roof that cannot be withdrawn, two measures that can), their registration with each
measure's own progress, their registrations, and the erase page that says what it ends; and
the desk's registration with the withdrawal on the resident's behalf, and the dashboard's two
funnels."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from coop.extensions import db
from tests.browser.conftest import (
    LiveServer,
    assert_accessible,
    goto,
    log_in_with_password,
    visit,
)
from tests.registrations.household_world import Household, build

pytestmark = pytest.mark.browser

DOMAIN = "maatregelen.example.nl"
PHONE = {"width": 375, "height": 812}


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {"viewport": PHONE}


@pytest.fixture(scope="module")
def house(live_server: LiveServer) -> Household:
    with live_server.app.test_request_context():
        built = build(slug="drie-maatregelen", email_domain=DOMAIN)
        db.session.commit()
        return built


def as_resident(page: Page, live_server: LiveServer, path: str, language: str) -> None:
    goto(page, live_server.login_path(path, email=f"anna@{DOMAIN}"))
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    visit(page, path, language)


def fits(page: Page, what: str) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what}: {width}px wide on a {PHONE['width']}px screen"


def test_withdraw_page_offers_only_what_can_be_withdrawn(
    page: Page, live_server: LiveServer, house: Household, language: str
) -> None:
    as_resident(page, live_server, f"/my/registrations/{house.registration}/withdraw", language)
    expect(page.locator(f"#plan-{house.roof}")).to_have_attribute("data-withdrawable", "no")
    expect(page.locator(f"#kept-{house.roof_payment}")).to_be_visible()
    expect(page.locator(f'input[name="measures"][value="{house.roof}"]')).to_have_count(0)
    expect(page.locator(f"#measures-{house.cavity}")).to_be_visible()
    expect(page.locator(f"#measures-{house.heat_pump}")).to_be_visible()
    assert_accessible(page, "withdrawing measures, the roof installed")
    fits(page, "the withdraw page")
    # Nothing ticked: the error is at the choice, and the page still passes.
    page.locator("#reason").fill("Te duur")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.locator("#measures-error")).to_be_visible()
    assert_accessible(page, "withdrawing without a choice")
    fits(page, "the withdraw page with an error")


def test_registration_and_list_show_each_measures_progress(
    page: Page, live_server: LiveServer, house: Household, language: str
) -> None:
    as_resident(page, live_server, f"/my/registrations/{house.registration}", language)
    roof = page.locator(f"#progress-{house.registration}-{house.roof}")
    expect(roof.locator(".step-todo")).to_have_count(0)
    expect(
        page.locator(f"#progress-{house.registration}-{house.heat_pump} .step-todo")
    ).not_to_have_count(0)
    assert_accessible(page, "the registration with each measure's progress")
    fits(page, "the registration page")
    visit(page, "/my", language)
    expect(page.locator(f"#progress-{house.registration}-{house.cavity}")).to_be_visible()
    assert_accessible(page, "my registrations")
    fits(page, "my registrations")


def test_erase_page_says_what_it_ends(
    page: Page, live_server: LiveServer, house: Household, language: str
) -> None:
    as_resident(page, live_server, "/my/erase", language)
    expect(page.locator("#what-erasing-ends")).to_be_visible()
    expect(page.locator(f"#installed-{house.roof}")).to_be_visible()
    expect(page.locator(f"#erase-plan-{house.heat_pump}")).to_be_visible()
    assert_accessible(page, "erasing, with work under way")
    fits(page, "the erase page")


def test_desk_registration_and_dashboard(
    page: Page, live_server: LiveServer, house: Household, language: str
) -> None:
    log_in_with_password(page, f"staff@{DOMAIN}", "/desk/")
    visit(page, f"/desk/registrations/{house.registration}", language)
    expect(page.locator("#withdraw-form")).to_be_visible()
    expect(page.locator(f"#measure-{house.roof}")).to_have_attribute("data-step", "completed")
    assert_accessible(page, "the desk's registration with its measures")
    visit(page, f"/desk/dashboard/actions/{house.action}", language)
    expect(page.locator("#chart-funnel-measures-table")).to_be_visible()
    assert_accessible(page, "the dashboard with both funnels")
