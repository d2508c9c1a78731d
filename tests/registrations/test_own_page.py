"""The resident's own page (``/my``) and their registration's page show the home (type,
ownership, energy label), each measure's own progress, what happens next and when (the action's
planning and the dates of each measure's work), with a link back to the action."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from coop.extensions import db
from coop.registrations.models import Household as HouseholdRow
from coop.registrations.models import Ownership
from tests import factories
from tests.login import sign_in
from tests.registrations.household_world import Household, build


@pytest.fixture
def household(app: Flask) -> Household:
    with app.test_request_context():
        built = build()
        home = built.registration_row().household
        home.energy_label = "C"
        home.ownership = Ownership.VVE_MEMBER
        db.session.commit()
        return built


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_my_page_shows_the_home_each_measure_and_what_comes_next(
    client: FlaskClient, household: Household
) -> None:
    client.get("/language/en")
    sign_in(client, household.resident)
    page = page_of(client.get("/my"))
    text = text_of(page)
    assert "Type of home Terraced house" in text
    assert "Ownership Apartment owner in a VvE" in text
    assert "Energy label C" in text
    # Each measure's own progress.
    for rm_id in (household.roof, household.cavity, household.heat_pump):
        assert f'id="progress-{household.registration}-{rm_id}"' in page
    # What happens next: the action's planning, and the quote to decide on with its last day.
    assert "What happens next" in text
    assert "Registration closed" in text
    assert "Information evening" in text  # the action's milestone
    assert "Last day to decide on the quote for Cavity wall insulation" in text
    assert 'href="/actions/samen-isoleren"' in page

    client.get("/language/nl")
    dutch = text_of(page_of(client.get("/my")))
    assert "Soort woning Tussenwoning" in dutch and "Wat er nu gebeurt" in dutch


def test_the_registration_page_shows_the_home_and_the_planning_in_date_order(
    client: FlaskClient, household: Household
) -> None:
    client.get("/language/en")
    sign_in(client, household.resident)
    page = page_of(client.get(f"/my/registrations/{household.registration}"))
    text = text_of(page)
    assert "Energy label C" in text and "Type of home Terraced house" in text
    plan = page[page.index('class="plan-list"') :]
    plan = plan[: plan.index("</ol>")]
    closes = plan.index("Registration closed")
    quote = plan.index("Last day to decide on the quote")
    assert closes < quote  # closed twelve days ago; the quote is valid for a month
    assert 'href="/actions/samen-isoleren"' in page


def test_a_home_without_a_label_says_so_and_an_open_action_says_when_matching_follows(
    app: Flask, client: FlaskClient
) -> None:
    with app.test_request_context():
        action = factories.action()
        registration = factories.confirmed_registration(action)
        resident, closes = registration.user_id, action.registration_closes_at
        assert db.session.get(HouseholdRow, registration.household_id).energy_label is None
    client.get("/language/en")
    sign_in(client, resident)
    text = text_of(page_of(client.get("/my")))
    assert "Energy label not known" in text
    assert "When registration closes on" in text and "Registration closes" in text
    assert str(closes.year) in text
