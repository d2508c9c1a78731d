"""The promise of the rating form kept: other residents of the action read the reviews on the
action page without the name (nor address, nor email), with the count and average per
installer; staff read them on the installer's page. Confirming the work without a rating does
not end the chance to rate: the resident rates later, once, from their own page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import fieldwork, services
from coop.orders.models import OrderLine, Review
from tests import factories
from tests.orders.world import World, act_as, build, quote_sent


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    with app.test_request_context():
        built = build()
        services.accept_order(built.user(built.user_x), built.order(built.order_x))
    client.get("/language/en")
    return built


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def installed(world: World, registration_id: int) -> OrderLine:
    """The quote accepted and the work reported done; the line awaits the resident."""
    quote = quote_sent(world, registration_id)
    fieldwork.accept_quote(world.resident_of(registration_id), quote)
    line = quote.line
    installer = world.user(
        world.user_x if line.order.installer_id == world.installer_x else world.user_y
    )
    fieldwork.mark_installed(installer, line, local_today(utcnow()))
    return line


def test_reviews_are_shown_on_the_action_page_without_who_wrote_them(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.test_request_context():
        rated = [world.registrations_x[0], world.registrations_x[1]]
        authors = []
        for registration_id, rating, comment in zip(
            rated,
            (5, 2),
            ("Netjes en op tijd gewerkt.", "Steiger bleef een week staan."),
            strict=True,
        ):
            line = installed(world, registration_id)
            resident = world.resident_of(registration_id)
            household = line.household_registration.household
            authors.append((resident.name, resident.email, household.street, household.postcode))
            fieldwork.confirm_installation(resident, line, rating, comment)

    page = page_of(client.get("/actions/samen-isoleren"))
    section = page[page.index('id="reviews-title"') :]
    assert "Netjes en op tijd gewerkt." in section and "Steiger bleef een week staan." in section
    assert "Dakwerk Lunetten" in section
    assert re.search(r"Average 3\.5 out of 5, from 2 reviews", section)
    assert "5 out of 5" in section and "2 out of 5" in section
    # Nothing that names the writer: not the name, the email, the street or the postcode.
    for name, email, street, postcode in authors:
        for secret in (name, email, street, postcode):
            assert secret not in page, secret
    # In Dutch too.
    client.get("/language/nl")
    dutch = page_of(client.get("/actions/samen-isoleren"))
    assert "Gemiddeld 3,5 van de 5" in dutch

    # Staff see the same on the installer's page.
    act_as(client, world.staff)
    client.get("/language/en")
    desk = page_of(client.get(f"/desk/installers/{world.installer_x}"))
    assert "Average 3.5 out of 5, from 2 reviews" in desk
    assert "Netjes en op tijd gewerkt." in desk
    assert authors[0][0] not in desk


def test_work_confirmed_without_a_rating_can_be_rated_later_once(
    app: Flask, client: FlaskClient, world: World
) -> None:
    registration_id = world.registrations_x[2]
    with app.test_request_context():
        line = installed(world, registration_id)
        line_id, resident_id = line.id, world.resident_of(registration_id).id
    act_as(client, resident_id)
    client.get("/language/en")
    rate_url = f"/my/lines/{line_id}/rate"
    # Before the work is confirmed there is nothing to rate yet.
    assert f'href="{rate_url}"' not in page_of(client.get(f"/my/registrations/{registration_id}"))
    assert "once you have confirmed" in page_of(client.get(rate_url))

    confirmed = factories.post_form(
        client, f"/my/lines/{line_id}/confirm", {"rating": "", "comment": ""}
    )
    assert confirmed.status_code == 302
    page = page_of(client.get(f"/my/registrations/{registration_id}"))
    assert "You can still rate the installer later" in page
    assert f'href="{rate_url}"' in page

    # Odd input is refused at its field and stores nothing.
    for rating in ("", "0", "6", "abc", "5.5"):
        response = factories.post_form(client, rate_url, {"rating": rating, "comment": ""})
        assert response.status_code == 200, rating
        assert 'id="rating-error"' in page_of(response)
    response = factories.post_form(client, rate_url, {"rating": "4", "comment": "x" * 2001})
    assert response.status_code == 200 and 'id="comment-error"' in page_of(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Review)) == 0

    token = factories.csrf_token(client, rate_url)
    data = {"rating": "4", "comment": "Goed werk, wel wat laat.", "csrf_token": token}
    assert client.post(rate_url, data=data).status_code == 302
    # The same form sent again: refused, still one review.
    again = client.post(rate_url, data=data)
    assert again.status_code == 409 and "already rated" in page_of(again)
    with app.app_context():
        [review] = db.session.scalars(select(Review)).all()
        assert (review.rating, review.comment, review.line_id) == (
            4,
            "Goed werk, wel wat laat.",
            line_id,
        )
    page = page_of(client.get(f"/my/registrations/{registration_id}"))
    assert f'href="{rate_url}"' not in page and "4 out of 5" in page
    assert "Goed werk, wel wat laat." in page_of(client.get("/actions/samen-isoleren"))


def test_another_resident_cannot_rate_someone_elses_work(
    app: Flask, client: FlaskClient, world: World
) -> None:
    owner, other = world.registrations_x[0], world.registrations_x[1]
    with app.test_request_context():
        line = installed(world, owner)
        fieldwork.confirm_installation(world.resident_of(owner), line, None)
        line_id, other_id = line.id, world.resident_of(other).id
    act_as(client, other_id)
    assert client.get(f"/my/lines/{line_id}/rate").status_code == 404
    assert client.post(f"/my/lines/{line_id}/rate", data={"rating": "1"}).status_code in (
        400,
        404,
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Review)) == 0
