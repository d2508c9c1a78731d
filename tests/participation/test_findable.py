"""Participation is found where a resident starts: the home page, the action page and their own
page link the neighbourhood page, meetings to sign up for, open surveys, open interest
campaigns and becoming an ambassador, and only what is open. Volunteering as ambassador is
confirmed by email once, and the form is not offered again for the same street."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.core.models import EmailLog
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.participation import ambassadors, neighbourhoods
from coop.participation.models import Ambassador, WijkPhase
from tests import factories
from tests.login import sign_in
from tests.participation.test_ambassadors import registered_resident


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


@pytest.fixture
def place(ctx: Flask) -> dict[str, Any]:
    """An action in Lunetten (3524) with, in the neighbourhood, one of each thing open and one
    of each thing that is not; and a resident of the action who lives on the Hondsrug."""
    org = factories.organisation()
    action = factories.action(org)
    nb = factories.neighbourhood(org, pc4s="3524")
    action.neighbourhoods.append(nb)
    db.session.commit()
    staff = factories.staff(org)
    evening = action.milestones[0].on_date
    starts = datetime.combine(evening, time(19, 30), tzinfo=AMSTERDAM)
    upcoming = factories.meeting(org, capacity=30, neighbourhood_id=nb.id)
    upcoming.starts_at, upcoming.ends_at = starts, starts + timedelta(hours=2)
    cancelled = factories.meeting(org, neighbourhood_id=nb.id, cancelled_at=utcnow())
    past = factories.meeting(org, neighbourhood_id=nb.id, starts_in_days=-3)
    open_survey = factories.survey(nb)
    draft_survey = factories.survey(nb, open_=False)
    open_campaign = factories.campaign(nb)
    closed_campaign = factories.campaign(nb, days=-1)
    db.session.commit()
    return {
        "org": org,
        "action": action,
        "nb": nb,
        "staff": staff,
        "open": {
            f"/meetings/{upcoming.id}",
            f"/surveys/{open_survey.id}",
            f"/interest/{open_campaign.id}",
        },
        "not_open": {
            f"/meetings/{cancelled.id}",
            f"/meetings/{past.id}",
            f"/surveys/{draft_survey.id}",
            f"/interest/{closed_campaign.id}",
        },
        "upcoming": upcoming.id,
        "anna": registered_resident(action, "anna@example.nl", 1),
    }


def make_public(place: dict[str, Any], public: bool = True) -> None:
    neighbourhoods.save_compass(
        place["staff"],
        place["nb"],
        neighbourhoods.CompassInput(WijkPhase.EXPLORING, public, "Lunetten van het gas af.", ""),
    )


def links(page: str, wanted: set[str]) -> set[str]:
    return {url for url in wanted if f'href="{url}"' in page}


def test_the_action_page_links_what_is_open_in_its_neighbourhood_and_nothing_else(
    place: dict[str, Any], app: Flask
) -> None:
    client = app.test_client()
    page = page_of(client.get("/actions/samen-isoleren"))
    assert links(page, place["open"]) == place["open"]
    assert links(page, place["not_open"]) == set()
    nb_url = f"/neighbourhoods/{place['nb'].id}"
    assert f'href="{nb_url}"' not in page  # not public yet
    # The information evening on the timeline is the meeting's sign-up, not plain text.
    assert f'href="/meetings/{place["upcoming"]}">Informatieavond</a>' in page
    make_public(place)
    page = page_of(client.get("/actions/samen-isoleren"))
    assert f'href="{nb_url}"' in page
    # Registered residents can become ambassadors: said to a visitor, with the way there.
    assert 'href="/my/ambassador"' in page


def test_the_home_page_links_the_neighbourhood_of_a_postcode_and_the_public_pages(
    place: dict[str, Any], app: Flask
) -> None:
    client = app.test_client()
    nb_url = f"/neighbourhoods/{place['nb'].id}"
    page = page_of(client.get("/?postcode=3524+BA"))
    assert links(page, place["open"]) == place["open"]
    assert links(page, place["not_open"]) == set()
    assert f'href="{nb_url}"' not in page
    assert nb_url not in page_of(client.get("/"))
    make_public(place)
    assert f'href="{nb_url}"' in page_of(client.get("/"))
    assert f'href="{nb_url}"' in page_of(client.get("/?postcode=3524+BA"))
    # Another area's postcode: nothing of Lunetten.
    other = page_of(client.get("/?postcode=1011+AB"))
    assert links(other, place["open"]) == set() and nb_url not in other


def test_my_page_links_what_is_open_around_my_home_and_the_ambassador_form_once(
    place: dict[str, Any], app: Flask
) -> None:
    make_public(place)
    anna = place["anna"]
    client = app.test_client()
    client.get("/language/en")
    sign_in(client, anna.id)
    page = page_of(client.get("/my"))
    assert links(page, place["open"]) == place["open"]
    assert links(page, place["not_open"]) == set()
    assert f'href="/neighbourhoods/{place["nb"].id}"' in page
    assert 'id="become-ambassador"' in page

    choice = ambassadors.street_choices(anna)[0]
    form = page_of(client.get("/my/ambassador"))
    assert f'value="{choice.value}"' in form
    token = factories.csrf_token(client, "/my/ambassador")
    data = {"street": choice.value, "promise": "y", "csrf_token": token}
    first = client.post("/my/ambassador", data=data)
    assert first.status_code == 302
    # The same form sent again (a double click, the back button): no second row, no error.
    again = client.post("/my/ambassador", data=data, follow_redirects=True)
    assert again.status_code == 200
    assert "You have already volunteered for this street." in page_of(again)
    assert db.session.scalar(select(func.count()).select_from(Ambassador)) == 1
    sent = db.session.scalars(
        select(EmailLog).where(EmailLog.key.like("ambassador-volunteered:%"))
    ).all()
    assert [m.recipient for m in sent] == ["anna@example.nl"]
    assert "Hondsrug" in sent[0].subject

    # Not offered again: the state instead of the form, on both pages.
    form = page_of(client.get("/my/ambassador"))
    assert f'value="{choice.value}"' not in form and 'name="street"' not in form
    assert "ambassador-state-" in form
    page = page_of(client.get("/my"))
    assert 'id="become-ambassador"' not in page and "ambassador-state-" in page
    action_page = page_of(client.get("/actions/samen-isoleren"))
    assert 'id="become-ambassador"' not in action_page and "ambassador-state-" in action_page
    # Approved: the page says so.
    role = ambassadors.ambassadorships_of(anna)[0]
    ambassadors.approve(place["staff"], role)
    assert "You are the neighbour ambassador for Hondsrug since" in page_of(client.get("/my"))


def test_a_double_volunteering_in_the_service_sends_one_confirmation(
    place: dict[str, Any],
) -> None:
    from coop.core import jobs

    anna = place["anna"]
    choice = ambassadors.street_choices(anna)[0]
    ambassadors.volunteer(anna, choice, "")
    with pytest.raises(Exception, match="already_volunteered"):
        ambassadors.volunteer(anna, choice, "")
    jobs.dispatcher().run_pending()
    jobs.dispatcher().run_pending()
    count = db.session.scalar(
        select(func.count())
        .select_from(EmailLog)
        .where(EmailLog.template == "ambassador_volunteered")
    )
    assert count == 1
    assert ambassadors.open_street_choices(anna) == []


def test_odd_ambassador_posts_give_no_error_page(place: dict[str, Any], app: Flask) -> None:
    client = app.test_client()
    sign_in(client, place["anna"].id)
    for street in ("", "x" * 500, "1:2:3", "999999:3524:Hondsrug", "\x00"):
        response = factories.post_form(client, "/my/ambassador", {"street": street, "promise": "y"})
        assert response.status_code in (200, 302)
    assert db.session.scalar(select(func.count()).select_from(Ambassador)) == 0
