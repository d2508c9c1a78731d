"""VAT rates are data: a new database has the three Dutch rates with their source, and the
tables keep a rate a percentage whose last day is not before its first."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from coop.extensions import db
from coop.orders.models import QuoteItem, VatRate
from tests import factories
from tests.orders.world import World, build, quote_sent


def percent_of(rate_percent: int) -> VatRate:
    return next(rate for rate in factories.vat_rates() if rate.percent == rate_percent)


def test_a_new_database_has_the_three_dutch_rates_with_their_source(ctx: Flask) -> None:
    rates = db.session.scalars(select(VatRate).order_by(VatRate.percent.desc())).all()
    assert [rate.percent for rate in rates] == [21, 9, 0]
    assert all(rate.source.startswith("https://www.belastingdienst.nl/") for rate in rates)
    assert all(rate.valid_until is None for rate in rates)
    assert percent_of(9).valid_from == date(2019, 1, 1)
    assert "isoleren" in percent_of(9).name_nl and "insulating" in percent_of(9).name_en


@pytest.fixture
def world(app: Flask) -> World:
    with app.test_request_context():
        return build()


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
