"""The installer's portal over HTTP: answer an order, plan the survey (the resident's email
carries a calendar file), send a quote the resident accepts, report the work done and have it
confirmed; a decline that sends the homes back to matching; bad input refused at its field;
the route planning export and the calendar feed; and URL guessing by another installer and
another resident."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import func, select

from coop.core.models import OutboxJob
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.orders import fieldwork, services
from coop.orders.models import (
    LineStatus,
    MatchingRun,
    OrderStatus,
    Quote,
    QuoteStatus,
    Review,
    RunTrigger,
    SiteSurvey,
)
from coop.registrations.models import Registration, RegistrationStatus
from coop.tenders import services as tenders
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
    client.get("/language/en")  # the texts below are the English ones; Dutch is checked apart
    return built


def local_day(days: int) -> str:
    return (utcnow().astimezone(AMSTERDAM) + timedelta(days=days)).date().isoformat()


def post(client: FlaskClient, url: str, data: dict[str, Any], token_from: str | None = None) -> Any:
    return factories.post_form(client, url, data, token_from=token_from)


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def test_the_installer_accepts_plans_quotes_and_reports_done_and_the_resident_confirms(
    app: Flask, client: FlaskClient, world: World, smtp: SMTPRecorder
) -> None:
    order_url = f"/installer/orders/{world.order_x}"
    act_as(client, world.user_x)
    home = page_of(client.get("/installer"))
    assert f'href="{order_url}"' in home and "Accept or decline before" in home

    page = page_of(client.get(order_url))
    # Street order, whatever the order of registration; only this installer's households.
    assert page.index("Amstellaan 5") < page.index("Vondellaan 1") < page.index("Vondellaan 2")
    assert "Hondsrug" not in page
    # Names and phone numbers only once the order is accepted.
    assert "Vera Vondel" not in page and "tel:" not in page.split('id="homes-title"')[1]

    response = post(client, f"{order_url}/accept", {}, token_from=order_url)
    assert response.status_code == 302
    page = page_of(client.get(order_url))
    assert "Vera Vondel" in page and 'href="tel:0612345678"' in page
    with app.app_context():
        assert world.order(world.order_x).status is OrderStatus.ACCEPTED
        line = world.line_of(world.registrations_x[0])  # Amstellaan 5
        line_id, resident = line.id, line.registration.user
        resident_id, resident_email = resident.id, resident.email

    # A survey in the past is refused at the date, and nothing is planned.
    survey_url = f"/installer/lines/{line_id}/survey"
    response = post(client, survey_url, {"day": local_day(-1), "at": "10:00", "duration": "60"})
    assert response.status_code == 409
    assert re.search(r'id="day-error".*Choose a moment in the future', page_of(response), re.S)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SiteSurvey)) == 0

    day = local_day(3)
    response = post(client, survey_url, {"day": day, "at": "09:30", "duration": "90"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{order_url}#line-{line_id}")
    [invitation] = [m for m in smtp.to(resident_email) if "Opname gepland" in m["Subject"]]
    [ics] = [p for p in invitation.walk() if p.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")
    starts = datetime.fromisoformat(f"{day}T09:30").replace(tzinfo=AMSTERDAM)
    assert event.decoded("dtstart") == starts.astimezone(UTC)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=90)
    assert "Amstellaan 5" in str(event["location"])
    assert str(event["uid"]) == f"survey-{line_id}@coop"

    # A negative price is refused at its field; nothing is sent.
    quote_url = f"/installer/lines/{line_id}/quote"
    rows = {
        "description_0": "Dakisolatie 40 m²",
        "quantity_0": "40",
        "price_0": "40,00",
        "vat_0": "9",
        "description_1": "Steiger",
        "quantity_1": "1",
        "price_1": "250",
        "vat_1": "21",
        "description_2": "",
        "quantity_2": "",
        "price_2": "",
        "vat_2": "21",
        "valid_until": local_day(14),
    }
    response = post(client, quote_url, {**rows, "price_1": "-250", "send": "1"})
    assert response.status_code == 200
    assert re.search(r'id="price_1-error".*cannot be negative', page_of(response), re.S)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0

    # The totals first: VAT per rate over its rows; then send.
    page = page_of(post(client, quote_url, {**rows, "preview": "1"}))
    assert "€144.00" in page and "€52.50" in page and "€2,046.50" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0
    response = post(client, quote_url, {**rows, "send": "1"})
    assert response.status_code == 302
    with app.app_context():
        quote = db.session.scalars(select(Quote)).one()
        assert (quote.total_excl_vat_cents, quote.vat_cents, quote.total_cents) == (
            185000,
            19650,
            204650,
        )
        quote_id = quote.id
    assert any("offerte" in m["Subject"].lower() for m in smtp.to(resident_email))

    # The resident reads it on their own page and accepts.
    act_as(client, resident_id)
    registration_page = page_of(client.get(f"/my/registrations/{world.registrations_x[0]}"))
    assert f'href="/my/quotes/{quote_id}"' in registration_page
    assert "Dakwerk Lunetten" in registration_page and 'href="tel:0307654321"' in registration_page
    quote_page = page_of(client.get(f"/my/quotes/{quote_id}"))
    for text in ("Steiger", "VAT 9%", "€144.00", "VAT 21%", "€52.50", "€2,046.50"):
        assert text in quote_page, text
    response = post(
        client, f"/my/quotes/{quote_id}/accept", {}, token_from=f"/my/quotes/{quote_id}"
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/my/quotes/{quote_id}")
    assert "You accepted this quote" in page_of(client.get(f"/my/quotes/{quote_id}"))

    # The installer: a finish date still to come is refused at the field; then today.
    act_as(client, world.user_x)
    installed_url = f"/installer/lines/{line_id}/installed"
    response = post(client, installed_url, {"day": local_day(1)})
    assert response.status_code == 409
    assert re.search(r'id="day-error".*day still to come', page_of(response), re.S)
    with app.app_context():
        assert world.line_of(world.registrations_x[0]).status is LineStatus.ACCEPTED
    response = post(client, f"/installer/lines/{line_id}/installation", {"day": local_day(7)})
    assert response.status_code == 302
    assert post(client, installed_url, {"day": local_day(0)}).status_code == 302

    # The resident confirms, with a rating.
    act_as(client, resident_id)
    assert "Confirm the work is done" in page_of(
        client.get(f"/my/registrations/{world.registrations_x[0]}")
    )
    response = post(client, f"/my/lines/{line_id}/confirm", {"rating": "4", "comment": "Netjes"})
    assert response.status_code == 302
    with app.app_context():
        line = world.line_of(world.registrations_x[0])
        assert line.status is LineStatus.COMPLETED
        review = db.session.scalars(select(Review)).one()
        assert (review.rating, review.comment, review.installer_id) == (
            4,
            "Netjes",
            world.installer_x,
        )
        registration = db.session.get(Registration, world.registrations_x[0])
        assert registration is not None and registration.status is RegistrationStatus.COMPLETED
        # Every step is on the resident's timeline.
        assert [c.to_status.value for c in registration.history][-6:] == [
            "assigned",
            "survey_planned",
            "quoted",
            "accepted",
            "installed",
            "completed",
        ]
    subjects = [m["Subject"] for m in smtp.messages]
    assert any("Uitvoering gepland" in s or "installatie" in s.lower() for s in subjects)
    timeline = page_of(client.get(f"/my/registrations/{world.registrations_x[0]}"))
    assert "4 out of 5" in timeline


def test_a_decline_with_its_reason_starts_rematching_and_tells_staff_and_residents(
    app: Flask, client: FlaskClient, world: World, smtp: SMTPRecorder
) -> None:
    order_url = f"/installer/orders/{world.order_y}"
    act_as(client, world.user_y)
    with app.app_context():
        runs_before = db.session.scalar(select(func.count()).select_from(MatchingRun))

    response = post(client, f"{order_url}/decline", {"reason": "  "}, token_from=order_url)
    assert response.status_code == 200
    assert re.search(r'id="reason-error".*Say why you decline', page_of(response), re.S)
    with app.app_context():
        assert world.order(world.order_y).status is OrderStatus.SENT
        assert db.session.scalar(select(func.count()).select_from(MatchingRun)) == runs_before

    with app.test_request_context():  # the service's own limit, behind the form's
        with pytest.raises(services.OrderError) as refused:
            services.decline_order(world.user(world.user_y), world.order(world.order_y), "x" * 2001)
        assert refused.value.code == "reason_too_long"
        db.session.rollback()
    response = post(client, f"{order_url}/decline", {"reason": "Geen ploeg vrij in mei"})
    assert response.status_code == 302
    with app.app_context():
        order = world.order(world.order_y)
        assert order.status is OrderStatus.DECLINED
        assert order.decline_reason == "Geen ploeg vrij in mei"
        rerun = db.session.scalars(select(MatchingRun).order_by(MatchingRun.id.desc())).first()
        assert rerun is not None and rerun.trigger is RunTrigger.ORDER_DECLINED
        residents = [world.resident_of(r).email for r in world.registrations_y]
    # The desk hears, with the reason; so do the residents.
    [released] = [m for m in smtp.to("staff@example.nl") if "Warmte en Dak" in m["Subject"]]
    assert "Geen ploeg vrij in mei" in message_text(released)
    for email in residents:
        assert any("andere installateur" in m["Subject"] for m in smtp.to(email)), email
    # The installer no longer sees the households.
    page = page_of(client.get(order_url))
    assert "Hondsrug" not in page and "no longer shown" in page


def test_accepting_an_expired_quote_is_refused_with_a_message_and_changes_nothing(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.test_request_context():
        quote = quote_sent(world, world.registrations_x[1], now=utcnow() - timedelta(days=20))
        quote_id, resident_id = quote.id, world.resident_of(world.registrations_x[1]).id
        jobs_before = db.session.scalar(select(func.count()).select_from(OutboxJob))
    act_as(client, resident_id)
    page = page_of(client.get(f"/my/quotes/{quote_id}"))
    assert "expired" in page and f'action="/my/quotes/{quote_id}/accept"' not in page

    response = post(client, f"/my/quotes/{quote_id}/accept", {}, token_from="/my")
    assert response.status_code == 409
    assert "This quote has expired" in page_of(response)
    with app.app_context():
        quote = db.session.get(Quote, quote_id)
        assert quote is not None and quote.status is QuoteStatus.SENT
        assert quote.line.status is LineStatus.QUOTED
        assert quote.line.registration.status is RegistrationStatus.QUOTED
        assert db.session.scalar(select(func.count()).select_from(OutboxJob)) == jobs_before

    # In Dutch too.
    client.get("/language/nl")
    response = post(client, f"/my/quotes/{quote_id}/accept", {}, token_from="/my")
    assert response.status_code == 409 and "Deze offerte is verlopen" in page_of(response)


def test_another_installer_and_another_resident_get_404_whatever_they_try(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.test_request_context():
        quote = quote_sent(world, world.registrations_x[0])
        line = quote.line
        line_id, quote_id = line.id, quote.id
        neighbour = world.resident_of(world.registrations_y[0]).id  # a household of Y's order
        owner = world.resident_of(world.registrations_x[0]).id
    # Installer Y works in the same action, on other households.
    act_as(client, world.user_y)
    token = factories.csrf_token(client, "/installer")
    for url in (
        f"/installer/orders/{world.order_x}",
        f"/installer/lines/{line_id}/survey",
        f"/installer/lines/{line_id}/quote",
        f"/installer/lines/{line_id}/installation",
        f"/installer/lines/{line_id}/installed",
        f"/my/quotes/{quote_id}",
    ):
        assert client.get(url).status_code == 404, url
    for url, data in (
        (f"/installer/orders/{world.order_x}/accept", {}),
        (f"/installer/orders/{world.order_x}/decline", {"reason": "weg ermee"}),
        (f"/installer/lines/{line_id}/survey", {"day": local_day(3), "at": "10:00"}),
        (f"/installer/lines/{line_id}/installed", {"day": local_day(0)}),
    ):
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 404, url
    csv_text = page_of(client.get("/installer/orders.csv"))
    assert "Hondsrug" in csv_text and "Amstellaan" not in csv_text and "Vondellaan" not in csv_text

    # A resident of the same action, with a home in the other order.
    act_as(client, neighbour)
    token = factories.csrf_token(client, "/my")
    for url in (
        f"/my/quotes/{quote_id}",
        f"/my/quotes/{quote_id}/decline",
        f"/my/lines/{line_id}/survey-change",
        f"/my/lines/{line_id}/confirm",
        f"/my/registrations/{world.registrations_x[0]}",
        f"/installer/orders/{world.order_x}",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"/my/quotes/{quote_id}/accept", f"/my/quotes/{quote_id}/decline"):
        assert client.post(url, data={"csrf_token": token}).status_code == 404, url
    # Ids that do not exist look the same as someone else's.
    assert client.get("/my/quotes/999999").status_code == 404

    with app.app_context():
        quote = db.session.get(Quote, quote_id)
        assert quote is not None and quote.status is QuoteStatus.SENT
        assert world.order(world.order_x).status is OrderStatus.ACCEPTED
        assert db.session.scalar(select(func.count()).select_from(SiteSurvey)) == 0
    # ...while the owner gets the page.
    act_as(client, owner)
    assert client.get(f"/my/quotes/{quote_id}").status_code == 200


def csv_rows(response: Any) -> list[list[str]]:
    text = page_of(response).removeprefix("\ufeff")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_the_route_planning_export_and_the_calendar_feed_of_planned_visits(
    app: Flask, client: FlaskClient, world: World
) -> None:
    act_as(client, world.user_x)
    response = client.get("/installer/orders.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    header, *rows = csv_rows(response)
    column = {name: index for index, name in enumerate(header)}
    assert [(r[column["Street"]], r[column["House number"]]) for r in rows] == [
        ("Amstellaan", "5"),
        ("Vondellaan", "1"),
        ("Vondellaan", "2"),
    ]
    assert {r[column["Resident"]] for r in rows} == {""}  # not accepted yet: no names

    with app.test_request_context():
        installer = world.user(world.user_x)
        services.accept_order(installer, world.order(world.order_x))
        surveyed = world.line_of(world.registrations_x[1])  # Vondellaan 1
        starts = datetime.fromisoformat(f"{local_day(2)}T14:15").replace(tzinfo=AMSTERDAM)
        fieldwork.plan_survey(installer, surveyed, starts)
        quote = quote_sent(world, world.registrations_x[2])
        fieldwork.accept_quote(world.resident_of(world.registrations_x[2]), quote)
        installation_day = (utcnow() + timedelta(days=9)).astimezone(AMSTERDAM).date()
        fieldwork.plan_installation(installer, quote.line, installation_day)
        surveyed_id, installed_id = surveyed.id, quote.line.id
    header, *rows = csv_rows(client.get("/installer/orders.csv"))
    vondel_1 = rows[1]
    assert vondel_1[column["Resident"]] == "Vic Vondel"
    assert vondel_1[column["Phone number"]] == "06 12345678"
    assert vondel_1[column["Site survey"]] == f"{local_day(2)} 14:15"
    assert vondel_1[column["Measure"]] == "Roof insulation"
    assert rows[2][column["Installation day"]] == installation_day.isoformat()

    # The calendar feed: made on request, at an address with a secret.
    assert "Make my calendar address" in page_of(client.get("/installer/calendar"))
    assert post(client, "/installer/calendar", {}).status_code == 302
    page = page_of(client.get("/installer/calendar"))
    feed = re.search(r'value="http://localhost(/installer/calendar/[^"]+\.ics)"', page)
    assert feed, page
    feed_path = feed.group(1)

    anonymous = app.test_client()  # a calendar app: no login
    response = anonymous.get(feed_path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    events = {str(e["uid"]): e for e in Calendar.from_ical(response.data).walk("VEVENT")}
    assert set(events) == {f"survey-{surveyed_id}@coop", f"installation-{installed_id}@coop"}
    survey = events[f"survey-{surveyed_id}@coop"]
    assert survey.decoded("dtstart") == starts.astimezone(UTC)
    assert "Vondellaan 1" in str(survey["location"])
    assert events[f"installation-{installed_id}@coop"].decoded("dtstart") == installation_day
    assert "Hondsrug" not in response.get_data(as_text=True)  # Y's households are not in it
    # The feed's address goes into other companies' calendars: the resident's name and the
    # household's page in the portal, never their phone number or email address.
    feed_text = response.get_data(as_text=True).replace("\r\n ", "")
    description = str(survey["description"])
    assert "Vic Vondel" in description
    assert f"/installer/orders/{world.order_x}#line-{surveyed_id}" in description
    with app.app_context():
        residents = [world.resident_of(r) for r in world.registrations_x]
        assert all(r.phone for r in residents)
        for resident in residents:
            assert resident.phone not in feed_text
            assert resident.phone.replace(" ", "") not in feed_text.replace(" ", "")
            assert resident.email not in feed_text
    assert response.headers["Cache-Control"] == "no-store"

    # A new address ends the old one.
    post(client, "/installer/calendar", {})
    assert anonymous.get(feed_path).status_code == 404
    assert anonymous.get("/installer/calendar/x.ics").status_code == 404


def test_a_decline_while_a_new_tender_round_is_open_waits_for_its_deadline(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.test_request_context():
        staff = world.user(world.staff)
        action = world.order(world.order_x).action
        deadline = utcnow() + timedelta(hours=2)
        tenders.open_round(staff, action, [world.installer_y], deadline=deadline)
        runs_before = db.session.scalar(select(func.count()).select_from(MatchingRun))
    act_as(client, world.user_x)
    order_url = f"/installer/orders/{world.order_x}"
    response = post(client, f"{order_url}/decline", {"reason": "Te ver weg"}, token_from=order_url)
    assert response.status_code == 302
    with app.test_request_context():
        assert world.order(world.order_x).status is OrderStatus.DECLINED
        # No run now (it would be refused while bids are sealed); the deadline starts it.
        assert db.session.scalar(select(func.count()).select_from(MatchingRun)) == runs_before
        assert services.start_matching_after_tenders(deadline + timedelta(minutes=1)) == 1
        run = services.open_run(world.order(world.order_x).action)
        assert run is not None and run.trigger is RunTrigger.TENDER_CLOSED
