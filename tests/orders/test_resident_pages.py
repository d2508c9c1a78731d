"""The resident's side over HTTP: their registration page shows the installer and each step of
the work; they ask for another survey date, decline a quote with a reason, and confirm the
work with a rating; bad input is refused at its field and changes nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.core.time import AMSTERDAM, utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import fieldwork, services
from coop.orders.models import LineStatus, QuoteStatus, Review, SurveyStatus
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config
from tests.orders.world import World, act_as, build, quote_sent


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


@pytest.fixture
def smtp(smtp_server: tuple[SMTPRecorder, int]) -> SMTPRecorder:
    return smtp_server[0]


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    with app.test_request_context():
        built = build()
        services.accept_order(built.user(built.user_x), built.order(built.order_x))
    client.get("/language/en")
    return built


def moment(days: int, at: str) -> datetime:
    day = (utcnow().astimezone(AMSTERDAM) + timedelta(days=days)).date()
    return datetime.fromisoformat(f"{day.isoformat()}T{at}").replace(tzinfo=AMSTERDAM)


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def test_the_resident_asks_for_another_survey_date_and_the_installer_plans_again(
    app: Flask, client: FlaskClient, world: World, smtp: SMTPRecorder
) -> None:
    registration_id = world.registrations_x[0]
    with app.test_request_context():
        line = world.line_of(registration_id)
        fieldwork.plan_survey(world.user(world.user_x), line, moment(3, "10:00"))
        line_id, resident_id = line.id, line.registration.user_id
    act_as(client, resident_id)
    page = page_of(client.get(f"/my/registrations/{registration_id}"))
    section = page.split('id="work-title"')[1]
    for text in ("Dakwerk Lunetten", 'href="tel:0307654321"', "mailto:planning@", "10:00"):
        assert text in section, text
    url = f"/my/lines/{line_id}/survey-change"
    assert f'href="{url}"' in section

    response = factories.post_form(client, url, {"message": ""})
    assert response.status_code == 200
    assert re.search(r'id="message-error".*which moments suit you', page_of(response), re.S)
    response = factories.post_form(client, url, {"message": "Liever na 16:00 uur"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/my/registrations/{registration_id}#line-{line_id}"
    )
    with app.app_context():
        survey = world.line_of(registration_id).survey
        assert survey is not None and survey.status is SurveyStatus.CHANGE_REQUESTED
    [asked] = [
        m for m in smtp.to("fitter@dakwerk-lunetten.example") if "Amstellaan 5" in m["Subject"]
    ]
    assert "Liever na 16:00 uur" in message_text(asked)
    page = page_of(client.get(f"/my/registrations/{registration_id}"))
    assert "You asked for another date" in page and f'href="{url}"' not in page
    # Asking twice is refused with a message.
    response = factories.post_form(client, url, {"message": "Nog eens"}, token_from="/my")
    assert response.status_code == 409 and "already asked for another date" in page_of(response)

    # The installer sees the request on the start page and the order, and plans again.
    act_as(client, world.user_x)
    assert "1 resident asks for another survey date" in page_of(client.get("/installer"))
    assert "Liever na 16:00 uur" in page_of(client.get(f"/installer/orders/{world.order_x}"))
    day = moment(4, "16:30")
    response = factories.post_form(
        client,
        f"/installer/lines/{line_id}/survey",
        {"day": day.date().isoformat(), "at": "16:30", "duration": "60"},
    )
    assert response.status_code == 302
    with app.app_context():
        surveys = world.line_of(registration_id).surveys
        assert [s.status for s in surveys] == [SurveyStatus.REPLACED, SurveyStatus.PLANNED]
        assert surveys[-1].starts_at == day
    # A second calendar file: the same event, a higher sequence, so the calendar moves it.
    assert len([m for m in smtp.messages if "Opname gepland" in m["Subject"]]) == 2


def test_the_resident_declines_one_quote_and_confirms_other_work_with_a_rating(
    app: Flask, client: FlaskClient, world: World, smtp: SMTPRecorder
) -> None:
    declining, confirming = world.registrations_x[1], world.registrations_x[2]
    with app.test_request_context():
        declined_quote = quote_sent(world, declining)
        other = quote_sent(world, confirming)
        fieldwork.accept_quote(world.resident_of(confirming), other)
        fieldwork.mark_installed(world.user(world.user_x), other.line, local_today(utcnow()))
        quote_id, decliner = declined_quote.id, world.resident_of(declining).id
        line_id, confirmer = other.line.id, world.resident_of(confirming).id

    act_as(client, decliner)
    assert "Read the quote and decide" in page_of(client.get(f"/my/registrations/{declining}"))
    decline_url = f"/my/quotes/{quote_id}/decline"
    response = factories.post_form(client, decline_url, {"reason": "x" * 2001})
    assert response.status_code == 200
    assert re.search(r'id="reason-error".*at most 2000', page_of(response), re.S)
    response = factories.post_form(client, decline_url, {"reason": "Te duur voor ons"})
    assert response.status_code == 302
    with app.app_context():
        line = world.line_of(declining)
        assert line.status is LineStatus.DECLINED
        assert line.quote is not None and line.quote.status is QuoteStatus.DECLINED
        registration = db.session.get(Registration, declining)
        assert registration is not None and registration.status is RegistrationStatus.DECLINED
    [told] = [
        m
        for m in smtp.to("fitter@dakwerk-lunetten.example")
        if "Vondellaan 1" in message_text(m) and "Te duur voor ons" in message_text(m)
    ]
    assert told
    page = page_of(client.get(f"/my/quotes/{quote_id}"))
    assert "You declined this quote" in page and "/accept" not in page

    act_as(client, confirmer)
    confirm_url = f"/my/lines/{line_id}/confirm"
    page = page_of(client.get(f"/my/registrations/{confirming}"))
    assert f'href="{confirm_url}"' in page
    response = factories.post_form(client, confirm_url, {"rating": "7", "comment": ""})
    assert response.status_code == 200
    assert 'id="rating-error"' in page_of(response)
    with app.app_context():
        assert world.line_of(confirming).status is LineStatus.INSTALLED
        assert db.session.scalar(select(func.count()).select_from(Review)) == 0
    response = factories.post_form(client, confirm_url, {"rating": "", "comment": ""})
    assert response.status_code == 302  # a rating is optional
    with app.app_context():
        assert world.line_of(confirming).status is LineStatus.COMPLETED
        assert db.session.scalar(select(func.count()).select_from(Review)) == 0
    assert "Completed" in page_of(client.get(f"/my/registrations/{confirming}"))
    # Confirming twice is refused with a message.
    response = factories.post_form(client, confirm_url, {"rating": "5"}, token_from="/my")
    assert response.status_code == 409 and "no finished work to confirm" in page_of(response)
