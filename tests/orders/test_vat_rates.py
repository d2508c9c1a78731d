"""VAT rates are data: which rates apply on a day (the first and the last day both included), a
quote uses only the rates of the day it is sent, and the quote form offers only today's
rates."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from coop.core.time import AMSTERDAM, utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import fieldwork, services, vat_rates
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import Quote, QuoteItem, VatRate
from coop.orders.services import OrderError
from tests import factories
from tests.login import sign_in
from tests.orders.world import World, build, local, quote_sent


def today() -> date:
    return local_today(utcnow())


def percent_of(rate_percent: int) -> VatRate:
    return next(rate for rate in factories.vat_rates() if rate.percent == rate_percent)


# --- which rates apply on a day ----------------------------------------------------------------


def test_a_new_database_has_the_three_dutch_rates_with_their_source(ctx: Flask) -> None:
    rates = vat_rates.rates_on(today())
    assert [rate.percent for rate in rates] == [21, 9, 0]
    assert all(rate.source.startswith("https://www.belastingdienst.nl/") for rate in rates)
    assert all(rate.valid_until is None for rate in rates)
    assert percent_of(9).valid_from == date(2019, 1, 1)
    assert "isoleren" in percent_of(9).name_nl and "insulating" in percent_of(9).name_en


def test_a_rate_applies_from_its_first_day_through_its_last_day(ctx: Flask) -> None:
    first, last = date(2031, 1, 1), date(2031, 12, 31)
    factories.vat_rate(15, first, last)
    assert 15 not in vat_rates.percents_on(first - timedelta(days=1))
    assert 15 in vat_rates.percents_on(first)
    assert 15 in vat_rates.percents_on(last)
    assert 15 not in vat_rates.percents_on(last + timedelta(days=1))
    # Without a last day: until further notice.
    factories.vat_rate(7, first)
    assert 7 in vat_rates.percents_on(date(2099, 1, 1))


def test_rates_are_offered_highest_first_and_each_percentage_once(ctx: Flask) -> None:
    assert vat_rates.percents_on(today()) == [21, 9, 0]
    with pytest.raises(OrderError) as refused:
        vat_rates.check_quote_rates([21, 6], today())
    assert refused.value.code == "vat_rate"
    vat_rates.check_quote_rates([21, 9, 0, 9], today())


# --- the quote uses the rates of the day it is sent -------------------------------------------


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    with app.test_request_context():
        built = build()
    client.get("/language/en")
    return built


def test_a_quote_is_refused_a_rate_that_has_ended_and_takes_a_new_one_once_added(
    app: Flask, world: World
) -> None:
    tomorrow = local(today() + timedelta(days=1))
    with app.test_request_context():
        # The law changes: 9% applies through today, 10% from tomorrow.
        percent_of(9).valid_until = today()
        factories.vat_rate(10, today() + timedelta(days=1))
        line = world.line_of(world.registrations_x[0])
        fitter = world.user(world.user_x)
        services.accept_order(fitter, line.order, now=utcnow())

        def send(rate: int, now: Any) -> Quote:
            return fieldwork.send_quote(
                fitter,
                world.line_of(world.registrations_x[0]),
                [QuoteItemInput("Arbeid dakisolatie", 40, 2000, rate)],
                valid_until=(now + timedelta(days=14)).astimezone(AMSTERDAM).date(),
                now=now,
            )

        with pytest.raises(OrderError) as refused:
            send(9, tomorrow)
        assert refused.value.code == "vat_rate"
        db.session.rollback()
        with pytest.raises(OrderError):
            send(10, utcnow())  # not yet
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0
        quote = send(10, tomorrow)
        assert [item.vat_rate for item in quote.items] == [10]
        assert quote.vat_cents == 8000
        # Today 9% still applies.
        assert send(9, utcnow()).items[0].vat_rate == 9


def quote_page(client: FlaskClient, world: World) -> tuple[str, str]:
    with client.application.app_context():
        line = world.line_of(world.registrations_x[0])
        if line.order.status.value == "sent":
            services.accept_order(world.user(world.user_x), line.order, now=utcnow())
        url = f"/installer/lines/{line.id}/quote"
    sign_in(client, world.user_x)
    return url, client.get(url).get_data(as_text=True)


def vat_options(page: str) -> list[str]:
    select_html = re.search(r'<select[^>]*name="vat_0".*?</select>', page, re.DOTALL)
    assert select_html, "no VAT choice on the quote form"
    return re.findall(r'<option[^>]*value="(\d+)"', select_html.group(0))


def test_the_quote_form_offers_only_the_rates_that_apply_today(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        factories.vat_rate(6, date(2001, 1, 1), date(2018, 12, 31))  # ended
        factories.vat_rate(12, today() + timedelta(days=1))  # not yet
        factories.vat_rate(5, date(2020, 1, 1), today(), name_en="Last day today")
    url, page = quote_page(client, world)
    assert vat_options(page) == ["21", "9", "5", "0"]
    assert "21% – Standard rate" in page and "5% – Last day today" in page
    assert re.search(r'<option selected value="21">|<option value="21" selected', page)

    # A rate that is not in the list (ended) is refused at its row; nothing is sent.
    response = factories.post_form(
        client,
        url,
        {
            "description_0": "Dakisolatie",
            "quantity_0": "40",
            "price_0": "40",
            "vat_0": "6",
            "valid_until": (today() + timedelta(days=14)).isoformat(),
            "send": "1",
        },
    )
    page = response.get_data(as_text=True)
    assert "Choose one of the VAT rates in the list." in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0


def test_the_refusal_names_no_rates_of_its_own(app: Flask) -> None:
    from coop.orders.portal_views import MESSAGES

    for language, words in (("en", "in the list"), ("nl", "uit de lijst")):
        with app.test_request_context(headers={"Accept-Language": language}):
            message = str(MESSAGES["vat_rate"])
        assert words in message
        assert not re.search(r"\d", message), message


def test_a_quote_row_keeps_any_percentage_but_never_more_than_100(app: Flask, world: World) -> None:
    # The table no longer knows the Dutch rates (migration 0018): only that it is a percentage.
    with app.test_request_context():
        quote = quote_sent(world, world.registrations_x[0])
        item_id = quote.items[0].id
        db.session.execute(
            text("UPDATE quote_items SET vat_rate = 15 WHERE id = :id"), {"id": item_id}
        )
        db.session.commit()
        assert db.session.get(QuoteItem, item_id).vat_rate == 15  # type: ignore[union-attr]
        with pytest.raises(IntegrityError):
            db.session.execute(
                text("UPDATE quote_items SET vat_rate = 150 WHERE id = :id"), {"id": item_id}
            )
            db.session.commit()
        db.session.rollback()


def test_the_table_refuses_a_rate_out_of_range_or_ending_before_it_starts(ctx: Flask) -> None:
    for bad in (
        {"percent": 150, "valid_from": date(2030, 1, 1)},
        {"percent": -1, "valid_from": date(2030, 1, 1)},
        {"percent": 9, "valid_from": date(2030, 1, 1), "valid_until": date(2029, 12, 31)},
    ):
        db.session.add(VatRate(name_nl="x", name_en="x", source="x", **bad))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
