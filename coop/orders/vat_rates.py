"""The Dutch VAT rates a quote may use: which apply on a day, and staff adding and ending them.

Rates change by law, not by release, so they are rows (``VatRate``) with their source and the
days they apply: ``valid_from`` and ``valid_until`` both included, no ``valid_until`` meaning
until further notice. A quote may use the rates that apply on the day it is sent. Each desk
keeps its own, for the quotes on its actions: a desk's admin can change nothing another desk
relies on, as with everything else of a desk. A new desk starts with ``STARTING_RATES``.

The record is closed history: a rate's percent, names, source and first day never change once
it exists, a new rate starts today or later, and a last day is set (or moved) only to today or
later. So which rates applied on a day that has passed never changes afterwards; a change of the
law ends the rate and adds a new one. A rate that has not yet applied on any day (a typing
error, a law that was changed before it took effect) can be withdrawn: no quote can have used
it, as a quote uses only the rates of the day it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, or_, select

from coop.accounts import events as account_events
from coop.accounts.models import Organisation, User
from coop.core import audit
from coop.core.db import lock_row, unit_of_work
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders.models import VatRate
from coop.orders.services import OrderError

log = logging.getLogger(__name__)

MAX_NAME = 200
MAX_SOURCE = 500
_AUDITED = ("percent", "name_nl", "name_en", "source", "valid_from", "valid_until")


class StartingRate(NamedTuple):
    percent: int
    name_nl: str
    name_en: str
    valid_from: date


# What a new desk starts with (the migration that made the table seeded the desks there were
# with the same): the law as it stands since 1 January 2019. From then on the desk's staff keep
# its rates on the desk's page; nothing reads this list again.
STARTING_SOURCE = (
    "https://www.belastingdienst.nl/wps/wcm/connect/bldcontentnl/belastingdienst/zakelijk/btw/"
    "tarieven_en_vrijstellingen/"
)
STARTING_RATES = (
    StartingRate(21, "Algemeen tarief (hoog tarief)", "Standard rate", date(2012, 10, 1)),
    StartingRate(
        9,
        "Verlaagd tarief (laag tarief), o.a. arbeid voor het isoleren van woningen ouder dan "
        "2 jaar",
        "Reduced rate, e.g. labour for insulating homes older than 2 years",
        date(2019, 1, 1),
    ),
    StartingRate(0, "Nultarief", "Zero rate", date(1969, 1, 1)),
)


class VatRateTable:
    """A desk's rates as a whole, for ``coop.core.authz``: who may read them and add one (a
    single rate is a ``VatRate``)."""


VAT_RATE_TABLE = VatRateTable()


@dataclass(frozen=True)
class VatRateDetails:
    percent: int
    name_nl: str
    name_en: str
    source: str
    valid_from: date
    valid_until: date | None = None


@account_events.organisation_created.connect
def _start_new_desk(organisation: Organisation, **_details: object) -> None:
    """A new desk's rates (``STARTING_RATES``), in the transaction that creates it."""
    db.session.add_all(
        VatRate(
            organisation_id=organisation.id,
            percent=rate.percent,
            name_nl=rate.name_nl,
            name_en=rate.name_en,
            source=STARTING_SOURCE,
            valid_from=rate.valid_from,
        )
        for rate in STARTING_RATES
    )


def _applies_on(organisation_id: int, day: date) -> ColumnElement[bool]:
    return and_(
        VatRate.organisation_id == organisation_id,
        VatRate.valid_from <= day,
        or_(VatRate.valid_until.is_(None), VatRate.valid_until >= day),
    )


def _desk_of(actor: User) -> int:
    """The desk whose rates a staff member adds to (``coop.orders.permissions`` lets only its
    admins); staff always have a desk."""
    assert actor.organisation_id is not None
    return actor.organisation_id


def rates_on(organisation_id: int, day: date) -> list[VatRate]:
    """The desk's rates that apply on ``day``, the highest first: the standard rate leads, and
    a new quote row starts with it."""
    return list(
        db.session.scalars(
            select(VatRate)
            .where(_applies_on(organisation_id, day))
            .order_by(VatRate.percent.desc(), VatRate.valid_from, VatRate.id)
        )
    )


def percents_on(organisation_id: int, day: date) -> list[int]:
    """The percentages a quote on the desk's action sent on ``day`` may use, the highest first,
    each once."""
    return list(dict.fromkeys(rate.percent for rate in rates_on(organisation_id, day)))


def check_quote_rates(percents: Iterable[int], organisation_id: int, day: date) -> None:
    """Refuse a quote on the desk's action sent on ``day`` with a percentage that does not
    apply that day."""
    allowed = set(percents_on(organisation_id, day))
    if any(percent not in allowed for percent in percents):
        raise OrderError("vat_rate")


def all_rates(organisation_id: int) -> list[VatRate]:
    """Every rate of the desk on record, the latest first."""
    return list(
        db.session.scalars(
            select(VatRate)
            .where(VatRate.organisation_id == organisation_id)
            .order_by(VatRate.valid_from.desc(), VatRate.percent.desc(), VatRate.id.desc())
        )
    )


def get_rate(rate_id: int) -> VatRate | None:
    return db.session.get(VatRate, rate_id)


def is_open(rate: VatRate, today: date) -> bool:
    """Whether its last day can still be set: it has none yet, or one still to come."""
    return rate.valid_until is None or rate.valid_until >= today


def _check(details: VatRateDetails, today: date) -> None:
    if not 0 <= details.percent <= 100:
        raise OrderError("percent_range")
    if not details.name_nl.strip():
        raise OrderError("name_nl_required")
    if len(details.name_nl.strip()) > MAX_NAME:
        raise OrderError("name_nl_too_long")
    if not details.name_en.strip():
        raise OrderError("name_en_required")
    if len(details.name_en.strip()) > MAX_NAME:
        raise OrderError("name_en_too_long")
    if not details.source.strip():
        raise OrderError("source_required")
    if len(details.source.strip()) > MAX_SOURCE:
        raise OrderError("source_too_long")
    if details.valid_from < today:
        raise OrderError("start_in_past")
    if details.valid_until is not None and details.valid_until < details.valid_from:
        raise OrderError("end_before_start")


def _overlapping(
    organisation_id: int,
    percent: int,
    first: date,
    last: date | None,
    *,
    besides: int | None = None,
) -> VatRate | None:
    """A rate of the desk of the same percentage (other than ``besides``) that applies on a day
    of ``first``..``last``: two would offer the installer the same choice twice."""
    query = select(VatRate).where(
        VatRate.organisation_id == organisation_id,
        VatRate.percent == percent,
        or_(VatRate.valid_until.is_(None), VatRate.valid_until >= first),
    )
    if last is not None:
        query = query.where(VatRate.valid_from <= last)
    if besides is not None:
        query = query.where(VatRate.id != besides)
    return db.session.scalars(query.order_by(VatRate.valid_from).limit(1)).first()


@unit_of_work
def add_rate(actor: User, details: VatRateDetails, *, now: datetime | None = None) -> VatRate:
    """Record a rate of the actor's desk from its first day on (today or later), with its
    source; audited."""
    now = now or utcnow()
    desk = _desk_of(actor)
    _check(details, local_today(now))
    if _overlapping(desk, details.percent, details.valid_from, details.valid_until) is not None:
        raise OrderError("rate_overlaps", percent=details.percent)
    rate = VatRate(
        organisation_id=desk,
        percent=details.percent,
        name_nl=details.name_nl.strip(),
        name_en=details.name_en.strip(),
        source=details.source.strip(),
        valid_from=details.valid_from,
        valid_until=details.valid_until,
        created_at=now,
        created_by_id=actor.id,
    )
    if details.valid_until is not None:
        rate.ended_at, rate.ended_by_id = now, actor.id
    db.session.add(rate)
    db.session.flush()
    audit.record(actor, desk, "vat_rate.add", rate, after=audit.snapshot(rate, _AUDITED))
    log.info("vat rate added rate=%s percent=%s by=%s", rate.id, rate.percent, actor.id)
    return rate


@unit_of_work
def end_rate(actor: User, rate: VatRate, last_day: date, *, now: datetime | None = None) -> VatRate:
    """Set the last day a rate applies: today at the earliest, so that no day that has passed
    loses a rate its quotes could use. A last day still to come can be moved."""
    now = now or utcnow()
    today = local_today(now)
    lock_row(rate)
    if not is_open(rate, today):
        raise OrderError("rate_ended")
    if last_day < today:
        raise OrderError("end_in_past")
    if last_day < rate.valid_from:
        raise OrderError("end_before_start")
    # Moving a last day later must not run into the rate that follows it.
    if (
        _overlapping(rate.organisation_id, rate.percent, rate.valid_from, last_day, besides=rate.id)
        is not None
    ):
        raise OrderError("rate_overlaps", percent=rate.percent)
    before = audit.snapshot(rate, ["valid_until"])
    rate.valid_until = last_day
    rate.ended_at, rate.ended_by_id = now, actor.id
    audit.record(
        actor,
        rate.organisation_id,
        "vat_rate.end",
        rate,
        before=before,
        after=audit.snapshot(rate, ["valid_until"]),
    )
    log.info("vat rate ended rate=%s last_day=%s by=%s", rate.id, last_day, actor.id)
    return rate


@unit_of_work
def withdraw_rate(actor: User, rate: VatRate, *, now: datetime | None = None) -> None:
    """Take back a rate whose first day is still to come; audited with what it was."""
    now = now or utcnow()
    lock_row(rate)
    if rate.valid_from <= local_today(now):
        raise OrderError("rate_in_force")
    audit.record(
        actor,
        rate.organisation_id,
        "vat_rate.withdraw",
        rate,
        before=audit.snapshot(rate, _AUDITED),
    )
    log.info("vat rate withdrawn rate=%s percent=%s by=%s", rate.id, rate.percent, actor.id)
    db.session.delete(rate)
