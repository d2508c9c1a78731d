"""A resident with a household of three measures finds participation from their own page, on a
375 px phone: from /my to an information evening's sign-up, and to the ambassador form (which,
once sent, shows the state instead of the form); and reads the residents' reviews on the
action page, without names. Every page is axe-clean (WCAG 2.1 A/AA) and does not scroll
sideways."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from coop.extensions import db
from tests import factories
from tests.browser.conftest import LiveServer, assert_accessible, goto, visit
from tests.registrations.household_world import Household, build

pytestmark = pytest.mark.browser

DOMAIN = "meedoen.example.nl"
SLUG = "meedoen-in-de-wijk"
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {"viewport": PHONE}


@pytest.fixture(scope="module")
def house(live_server: LiveServer) -> dict[str, Any]:
    """The three-measure household (its roof rated), in a neighbourhood with a public page, an
    information evening and an open survey."""
    from coop.actions.models import Action
    from coop.participation import neighbourhoods
    from coop.participation.models import WijkPhase

    with live_server.app.test_request_context():
        built: Household = build(slug=SLUG, email_domain=DOMAIN)
        action = db.session.get(Action, built.action)
        assert action is not None
        nb = factories.neighbourhood(action.organisation, name="Vondelbuurt", pc4s="3521")
        action.neighbourhoods.append(nb)
        db.session.commit()
        staff = built.user(built.staff)
        neighbourhoods.save_compass(
            staff, nb, neighbourhoods.CompassInput(WijkPhase.EXPLORING, True, "Samen.", "")
        )
        evening = factories.meeting(action.organisation, capacity=40, neighbourhood_id=nb.id)
        survey = factories.survey(nb)
        return {
            "house": built,
            "neighbourhood": nb.id,
            "meeting": evening.id,
            "survey": survey.id,
        }


def fits(page: Page, what: str) -> None:
    width, viewport = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width <= viewport, f"{what}: {width}px wide on a {viewport}px screen"


def checked(page: Page, what: str) -> None:
    fits(page, what)
    assert_accessible(page, what)


def test_a_resident_finds_a_meeting_the_ambassador_form_and_the_reviews(
    page: Page, live_server: LiveServer, house: dict[str, Any]
) -> None:
    goto(page, live_server.login_path("/my", email=f"anna@{DOMAIN}"))
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    visit(page, "/my", "en")
    checked(page, "/my with three measures and what to join")
    household: Household = house["house"]
    for measure in (household.roof, household.cavity, household.heat_pump):
        expect(page.locator(f"#progress-{household.registration}-{measure}")).to_be_visible()
    expect(page.get_by_text("What happens next").first).to_be_visible()
    expect(page.locator(f'a[href="/neighbourhoods/{house["neighbourhood"]}"]')).to_be_visible()
    expect(page.locator(f'a[href="/surveys/{house["survey"]}"]')).to_be_visible()

    # To the information evening, and sign up.
    with page.expect_navigation():
        page.locator(f'a[href="/meetings/{house["meeting"]}"]').click()
    checked(page, "the meeting page")
    page.locator("#name").fill("Anna de Vries")
    page.locator("#email").fill(f"anna@{DOMAIN}")
    page.locator("#consent").check()
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.get_by_text("Your place is booked")).to_be_visible()
    fits(page, "the meeting page after signing up")

    # Back to my page, and become an ambassador for the street.
    goto(page, "/my")
    with page.expect_navigation():
        page.locator("#become-ambassador").click()
    checked(page, "the ambassador form")
    page.locator('input[name="street"]').first.check()
    page.locator("#promise").check()
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.locator(".ambassador-state")).to_contain_text("You volunteered")
    expect(page.locator('input[name="street"]')).to_have_count(0)
    checked(page, "the ambassador page after volunteering")
    goto(page, "/my")
    expect(page.locator("#become-ambassador")).to_have_count(0)
    expect(page.locator(".ambassador-state")).to_be_visible()

    # The reviews on the action page, without the name of who wrote them.
    with page.expect_navigation():
        page.locator(f'a[href="/actions/{SLUG}"]').first.click()
    reviews = page.locator("section[aria-labelledby='reviews-title']")
    expect(reviews).to_contain_text("Netjes gewerkt en alles opgeruimd.")
    expect(reviews).to_contain_text("5 out of 5")
    assert "Anna de Vries" not in page.content()
    assert "Vondellaan" not in reviews.inner_text()
    checked(page, "the action page with reviews")


def test_the_pages_read_the_same_in_dutch(
    page: Page, live_server: LiveServer, house: dict[str, Any]
) -> None:
    goto(page, live_server.login_path("/my", email=f"anna@{DOMAIN}"))
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    visit(page, "/my", "nl")
    expect(page.get_by_text("Wat er nu gebeurt").first).to_be_visible()
    expect(page.get_by_text("Doe mee in je buurt")).to_be_visible()
    checked(page, "/my in Dutch")
    visit(page, f"/actions/{SLUG}", "nl")
    expect(page.get_by_text("Wat bewoners zeggen over de installateurs")).to_be_visible()
    checked(page, "the action page in Dutch")
