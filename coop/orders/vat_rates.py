"""The Dutch VAT rates a quote may use: which apply on a day.

Rates change by law, not by release, so they are rows (``VatRate``) with their source and the
days they apply: ``valid_from`` and ``valid_until`` both included, no ``valid_until`` meaning
until further notice. A quote may use the rates that apply on the day it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import ColumnElement, and_, or_, select

from coop.extensions import db
from coop.orders.models import VatRate
from coop.orders.services import OrderError


def _applies_on(day: date) -> ColumnElement[bool]:
    return and_(
        VatRate.valid_from <= day,
        or_(VatRate.valid_until.is_(None), VatRate.valid_until >= day),
    )


def rates_on(day: date) -> list[VatRate]:
    """The rates that apply on ``day``, the highest first: the standard rate leads, and a new
    quote row starts with it."""
    return list(
        db.session.scalars(
            select(VatRate)
            .where(_applies_on(day))
            .order_by(VatRate.percent.desc(), VatRate.valid_from, VatRate.id)
        )
    )


def percents_on(day: date) -> list[int]:
    """The percentages a quote sent on ``day`` may use, the highest first, each once."""
    return list(dict.fromkeys(rate.percent for rate in rates_on(day)))


def check_quote_rates(percents: Iterable[int], day: date) -> None:
    """Refuse a quote sent on ``day`` with a percentage that does not apply that day."""
    allowed = set(percents_on(day))
    if any(percent not in allowed for percent in percents):
        raise OrderError("vat_rate")
