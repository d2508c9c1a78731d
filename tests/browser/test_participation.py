"""The participation pages in Chromium: the public neighbourhood page and a survey, axe-clean
(WCAG 2.1 A/AA) in Dutch and English, error state included, and used with the keyboard alone;
plus the meeting, interest and desk pages through axe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from coop.extensions import db
from tests import factories
from tests.browser.conftest import (
    STAFF_EMAIL,
    LiveServer,
    assert_accessible,
    log_in_with_password,
    visit,
)
from tests.browser.test_keyboard import assert_focus_visible, focused, tab, tab_to_field, tab_until

pytestmark = pytest.mark.browser


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> Iterator[dict[str, int]]:
    """A public neighbourhood page with its phase and perspectives, a meeting, an open survey
    with answers from ten households, and an interest campaign."""
    from coop.actions.models import Action
    from coop.participation import neighbourhoods, surveys
    from coop.participation.models import Perspective, PerspectiveState, WijkPhase
    from coop.participation.services import HouseholdAddress
    from coop.registrations.models import Ownership

    with live_server.app.test_request_context():
        action = db.session.scalars(select(Action)).first()
        assert action is not None
        org = action.organisation
        staff = factories.staff(org, "participatie@example.nl")
        nb = factories.neighbourhood(org, name="Lunetten", pc4s="3524,3521", households=480)
        action.neighbourhoods.append(nb)
        neighbourhoods.save_compass(
            staff,
            nb,
            neighbourhoods.CompassInput(
                phase=WijkPhase.EXPLORING,
                is_public=True,
                intro_nl="Samen onderzoeken we hoe Lunetten van het gas af kan.",
                intro_en="Together we explore how Lunetten can stop using gas.",
                perspectives={
                    Perspective.RESIDENTS: (PerspectiveState.ON_TRACK, "Veel reacties.", ""),
                    Perspective.RELIABLE_NETWORK: (
                        PerspectiveState.ATTENTION,
                        "Het stroomnet is vol.",
                        "The grid is full.",
                    ),
                },
            ),
        )
        meeting = factories.meeting(org, capacity=30, neighbourhood_id=nb.id)
        survey = factories.survey(nb)
        for number in range(1, 11):
            single, multiple, scale_q, open_q = survey.questions
            surveys.respond(
                survey,
                surveys.Respondent(
                    HouseholdAddress("3524 BA", 200 + number, "", "Hondsrug"),
                    Ownership.OWNER if number % 2 else Ownership.CORPORATION_TENANT,
                    "",
                    f"buur{number}@example.nl",
                    "nl",
                    False,
                    True,
                ),
                {
                    single.id: single.options[number % 3].id,
                    multiple.id: [multiple.options[0].id],
                    scale_q.id: 1 + number % 5,
                    open_q.id: "Meer uitleg graag.",
                },
            )
        campaign = factories.campaign(nb, households=480, percent=30)
        meeting.starts_at = meeting.starts_at  # keep the session's objects loaded
        yield {
            "neighbourhood": nb.id,
            "meeting": meeting.id,
            "survey": survey.id,
            "campaign": campaign.id,
            "staff_user": staff.id,
        }


def test_neighbourhood_page(page: Page, seeded: dict[str, int], language: str) -> None:
    visit(page, f"/neighbourhoods/{seeded['neighbourhood']}", language)
    expect(page.locator("#perspectives tbody tr")).to_have_count(6)
    expect(page.locator('#phases [aria-current="step"]')).to_have_count(1)
    expect(page.locator("#meetings .card")).to_have_count(1)
    expect(page.locator("#assumptions")).to_be_visible()
    assert_accessible(page)


def test_survey_form_and_its_errors(page: Page, seeded: dict[str, int], language: str) -> None:
    visit(page, f"/surveys/{seeded['survey']}", language)
    assert_accessible(page, "the survey form")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#postcode")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "the survey form with errors")


def test_meeting_and_interest_pages(page: Page, seeded: dict[str, int], language: str) -> None:
    visit(page, f"/meetings/{seeded['meeting']}", language)
    expect(page.locator("#meeting-details")).to_be_visible()
    assert_accessible(page, "the meeting page")
    visit(page, f"/interest/{seeded['campaign']}", language)
    expect(page.locator("#progress-bar")).to_be_visible()
    assert_accessible(page, "the interest campaign")


def test_desk_participation_pages(page: Page, seeded: dict[str, int], language: str) -> None:
    log_in_with_password(page, STAFF_EMAIL, "/desk/")
    for path in (
        "/desk/participation/",
        f"/desk/participation/surveys/{seeded['survey']}",
        f"/desk/participation/neighbourhoods/{seeded['neighbourhood']}",
        f"/desk/participation/meetings/{seeded['meeting']}",
        f"/desk/participation/meetings/{seeded['meeting']}/edit",
        f"/desk/participation/meetings/{seeded['meeting']}/cancel",
        f"/desk/participation/interest/{seeded['campaign']}",
        "/desk/participation/meetings/new",
    ):
        visit(page, path, language)
        assert_accessible(page, path)
    expect(page.locator("#error-summary")).to_have_count(0)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.locator("#error-summary")).to_be_visible()
    assert_accessible(page, "the meeting form with errors")


def test_from_the_neighbourhood_page_through_the_survey_with_the_keyboard(
    page: Page, live_server: LiveServer, seeded: dict[str, int], language: str
) -> None:
    from coop.participation.models import SurveyResponse

    visit(page, f"/neighbourhoods/{seeded['neighbourhood']}", language)
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    tab_until(page, f'main a[href="/surveys/{seeded["survey"]}"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/surveys/{seeded['survey']}")

    with live_server.app.app_context():
        from coop.participation.models import Survey

        survey = db.session.get(Survey, seeded["survey"])
        assert survey is not None
        single, multiple, scale_q, open_q = (q.id for q in survey.questions)
    # Single choice: one Tab stop; the arrow key moves to the second option and chooses it.
    tab_until(page, f"#q_{single}-0")
    page.keyboard.press("ArrowDown")
    info = assert_focus_visible(page)
    assert (info["id"], info["checked"]) == (f"q_{single}-1", True)
    # Multiple choice: each box is a Tab stop; Space ticks.
    tab_to_field(page, f"q_{multiple}-0")
    page.keyboard.press("Space")
    assert focused(page)["checked"] is True
    tab_to_field(page, f"q_{multiple}-1")
    # The scale: Space chooses the first value, the arrow keys move it up.
    tab_to_field(page, f"q_{scale_q}-0")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert (focused(page)["id"], focused(page)["checked"]) == (f"q_{scale_q}-2", True)
    tab_to_field(page, f"q_{open_q}")
    page.keyboard.type("Graag een avond over de kosten.")
    tab_to_field(page, "postcode")
    page.keyboard.type("3524 BA")
    tab_to_field(page, "house_number")
    number = live_server.next_house_number()
    page.keyboard.type(number)
    tab_to_field(page, "house_number_addition")
    tab_to_field(page, "street")
    page.keyboard.type("Hondsrug")
    tab_to_field(page, "ownership-0")
    page.keyboard.press("Space")
    tab_until(page, "#email")
    page.keyboard.type(f"toetsenbord{language}@example.nl")
    tab_to_field(page, "contact_opt_in")
    tab_to_field(page, "consent")
    page.keyboard.press("Space")
    assert focused(page)["checked"] is True
    tab(page)
    assert focused(page)["tag"] == "button"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/surveys/{seeded['survey']}/thanks"), page.url
    assert_accessible(page, "the thank-you page")
    with live_server.app.app_context():
        stored = db.session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.house_number == int(number))
        )
        assert stored == 1
