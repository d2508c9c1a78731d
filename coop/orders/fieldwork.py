"""The work on one household once an installer has accepted its order: the site survey, the
quote the resident accepts or declines, the installation and the resident's confirmation.

Installers act only on lines of their own accepted orders, residents only on their own; each
step moves the order line on, the registration's status follows (``sync_registration``), and the
email a person would expect is written to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import Role, User
from coop.core import jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.formatting import MAX_AMOUNT_CENTS
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import events, vat_rates
from coop.orders.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Quote,
    QuoteItem,
    QuoteStatus,
    Review,
    SiteSurvey,
    SurveyStatus,
)
from coop.orders.services import OrderError, sync_registration
from coop.registrations.models import Household, Registration

log = logging.getLogger(__name__)

MAX_SURVEY_AHEAD = timedelta(days=365)
MAX_QUOTE_ITEMS = 30
MAX_QUOTE_VALIDITY_DAYS = 180
MAX_ITEM_QUANTITY = 100_000
QUOTE_REMINDER_DAYS = 2  # the resident is reminded this many days before the quote expires
MAX_COMMENT = 2000


def get_line(line_id: int) -> OrderLine | None:
    return db.session.get(OrderLine, line_id)


def get_quote(quote_id: int) -> Quote | None:
    return db.session.get(Quote, quote_id)


def _installer_of(actor: User, line: OrderLine) -> None:
    if actor.role is not Role.INSTALLER or actor.installer_id != line.order.installer_id:
        raise OrderError("not_yours")


def _resident_of(actor: User, line: OrderLine) -> None:
    if (
        actor.role is not Role.RESIDENT
        or line.registration is None
        or line.registration.user_id != actor.id
    ):
        raise OrderError("not_yours")


def _lock(line: OrderLine) -> OrderLine:
    lock_row(line)
    return line


def _accepted_order(line: OrderLine) -> Order:
    if line.order.status is not OrderStatus.ACCEPTED:
        raise OrderError("order_not_accepted")
    return line.order


def _move(line: OrderLine, to: LineStatus, actor: User, now: datetime) -> None:
    line.status = to
    line.updated_at = now
    db.session.flush()
    sync_registration(line.household_registration, actor=actor, now=now)


# --- the site survey --------------------------------------------------------------------------


def plan_survey(
    actor: User,
    line: OrderLine,
    starts_at: datetime,
    duration_minutes: int = 60,
    *,
    now: datetime | None = None,
) -> SiteSurvey:
    """Plan (or move) the visit; the resident gets the date and a calendar file."""
    now = now or utcnow()
    _installer_of(actor, line)
    _lock(line)
    _accepted_order(line)
    if line.status not in (LineStatus.ASSIGNED, LineStatus.SURVEY_PLANNED):
        raise OrderError("survey_not_possible", status=line.status.value)
    if starts_at <= now:
        raise OrderError("survey_in_past")
    if starts_at > now + MAX_SURVEY_AHEAD:
        raise OrderError("survey_too_far")
    if not 15 <= duration_minutes <= 480:
        raise OrderError("duration_out_of_range")
    for earlier in line.surveys:
        if earlier.status in (SurveyStatus.PLANNED, SurveyStatus.CHANGE_REQUESTED):
            earlier.status = SurveyStatus.REPLACED
    survey = SiteSurvey(
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        planned_at=now,
        planned_by_id=actor.id,
    )
    line.surveys.append(survey)
    _move(line, LineStatus.SURVEY_PLANNED, actor, now)
    jobs.enqueue("orders.send_survey_planned", f"survey-planned:{survey.id}", survey_id=survey.id)
    db.session.commit()
    log.info("survey planned line=%s survey=%s", line.id, survey.id)
    return survey


def request_survey_change(
    actor: User, line: OrderLine, message: str, *, now: datetime | None = None
) -> SiteSurvey:
    """The resident cannot make it: the installer is asked to plan another moment."""
    now = now or utcnow()
    _resident_of(actor, line)
    message = message.strip()
    if not message:
        raise OrderError("message_required")
    if len(message) > MAX_COMMENT:
        raise OrderError("message_too_long")
    _lock(line)
    survey = line.survey
    if survey is None or line.status is not LineStatus.SURVEY_PLANNED:
        raise OrderError("no_survey")
    if survey.starts_at <= now:
        raise OrderError("survey_passed")
    if survey.status is SurveyStatus.CHANGE_REQUESTED:
        raise OrderError("change_already_requested")
    survey.status = SurveyStatus.CHANGE_REQUESTED
    survey.change_request = message
    survey.change_requested_at = now
    jobs.enqueue(
        "orders.send_survey_change_requested",
        f"survey-change:{survey.id}",
        survey_id=survey.id,
    )
    db.session.commit()
    return survey


# --- the quote --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteItemInput:
    description: str
    quantity: int
    unit_price_cents: int
    vat_rate: int


@dataclass(frozen=True)
class QuoteTotals:
    excl_vat_cents: int
    vat_cents: int
    total_cents: int
    vat_by_rate: dict[int, int]


def _vat(amount_cents: int, rate: int) -> int:
    # Half-up to the cent, on integers (no float rounding of money).
    return (amount_cents * rate + 50) // 100


def quote_totals(items: Sequence[QuoteItemInput | QuoteItem]) -> QuoteTotals:
    """VAT per rate over the sum of that rate's lines, as a Dutch invoice shows it."""
    by_rate: dict[int, int] = {}
    for item in items:
        by_rate[item.vat_rate] = (
            by_rate.get(item.vat_rate, 0) + item.quantity * item.unit_price_cents
        )
    vat_by_rate = {rate: _vat(amount, rate) for rate, amount in sorted(by_rate.items())}
    excl = sum(by_rate.values())
    vat = sum(vat_by_rate.values())
    return QuoteTotals(excl, vat, excl + vat, vat_by_rate)


def send_quote(
    actor: User,
    line: OrderLine,
    items: Sequence[QuoteItemInput],
    valid_until: date,
    note: str = "",
    *,
    now: datetime | None = None,
) -> Quote:
    """Send the resident a quote; an earlier quote they had not decided on is replaced."""
    now = now or utcnow()
    _installer_of(actor, line)
    _lock(line)
    _accepted_order(line)
    if line.status not in (LineStatus.ASSIGNED, LineStatus.SURVEY_PLANNED, LineStatus.QUOTED):
        raise OrderError("quote_not_possible", status=line.status.value)
    if not items:
        raise OrderError("no_items")
    if len(items) > MAX_QUOTE_ITEMS:
        raise OrderError("too_many_items")
    today = local_today(now)
    for item in items:
        if not item.description.strip() or len(item.description) > 200:
            raise OrderError("item_description")
        if not 0 < item.quantity <= MAX_ITEM_QUANTITY:
            raise OrderError("item_quantity")
        if item.unit_price_cents < 0:
            raise OrderError("amount_negative")
        if item.unit_price_cents > MAX_AMOUNT_CENTS:
            raise OrderError("amount_too_large")
    # The rates that apply on the day it is sent, as the action's desk keeps them.
    vat_rates.check_quote_rates(
        (item.vat_rate for item in items), line.order.action.organisation_id, today
    )
    totals = quote_totals(items)
    if totals.total_cents <= 0:
        raise OrderError("total_zero")
    if totals.total_cents > MAX_AMOUNT_CENTS:
        raise OrderError("amount_too_large")
    if valid_until <= today:
        raise OrderError("validity_in_past")
    if valid_until > today + timedelta(days=MAX_QUOTE_VALIDITY_DAYS):
        raise OrderError("validity_too_long")
    for earlier in line.quotes:
        if earlier.status is QuoteStatus.SENT:
            earlier.status = QuoteStatus.REPLACED
    quote = Quote(
        valid_until=valid_until,
        note=note.strip(),
        total_excl_vat_cents=totals.excl_vat_cents,
        vat_cents=totals.vat_cents,
        total_cents=totals.total_cents,
        sent_at=now,
        sent_by_id=actor.id,
        items=[
            QuoteItem(
                position=position,
                description=item.description.strip(),
                quantity=item.quantity,
                unit_price_cents=item.unit_price_cents,
                vat_rate=item.vat_rate,
            )
            for position, item in enumerate(items, start=1)
        ],
    )
    line.quotes.append(quote)
    _move(line, LineStatus.QUOTED, actor, now)
    jobs.enqueue("orders.send_quote", f"quote-sent:{quote.id}", quote_id=quote.id)
    db.session.commit()
    log.info("quote sent line=%s quote=%s total=%s", line.id, quote.id, quote.total_cents)
    return quote


def quote_open(quote: Quote, now: datetime) -> bool:
    """Whether the resident can still accept or decline it (it is valid through its last day)."""
    return quote.status is QuoteStatus.SENT and local_today(now) <= quote.valid_until


def _decide(actor: User, quote: Quote, now: datetime) -> OrderLine:
    line = quote.line
    _resident_of(actor, line)
    _lock(line)
    db.session.refresh(quote)
    if quote.status is not QuoteStatus.SENT:
        raise OrderError("quote_decided", status=quote.status.value)
    if local_today(now) > quote.valid_until:
        raise OrderError("quote_expired")
    if line.status is not LineStatus.QUOTED:
        raise OrderError("quote_decided", status=line.status.value)
    return line


@unit_of_work
def accept_quote(actor: User, quote: Quote, *, now: datetime | None = None) -> Quote:
    """The resident agrees to the work at this price."""
    now = now or utcnow()
    line = _decide(actor, quote, now)
    quote.status = QuoteStatus.ACCEPTED
    quote.decided_at = now
    _move(line, LineStatus.ACCEPTED, actor, now)
    jobs.enqueue("orders.send_quote_accepted", f"quote-accepted:{quote.id}", quote_id=quote.id)
    # Payments build on orders: the deposit is asked in this same transaction.
    events.quote_accepted.send(quote, now=now)
    db.session.commit()
    log.info("quote accepted quote=%s line=%s", quote.id, line.id)
    return quote


def decline_quote(
    actor: User, quote: Quote, reason: str = "", *, now: datetime | None = None
) -> Quote:
    """The resident does not want the work: this measure ends for the household."""
    now = now or utcnow()
    if len(reason) > MAX_COMMENT:
        raise OrderError("message_too_long")
    line = _decide(actor, quote, now)
    quote.status = QuoteStatus.DECLINED
    quote.decided_at = now
    quote.decline_reason = reason.strip() or None
    _move(line, LineStatus.DECLINED, actor, now)
    jobs.enqueue(
        "orders.send_quote_declined",
        f"quote-declined:{quote.id}",
        quote_id=quote.id,
    )
    db.session.commit()
    return quote


def expire_quotes(now: datetime | None = None) -> int:
    """Quotes past their last valid day: the installer may send a new one."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Quote)
            .where(Quote.status == QuoteStatus.SENT, Quote.valid_until < local_today(now))
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    )
    for quote in due:
        quote.status = QuoteStatus.EXPIRED
        jobs.enqueue("orders.send_quote_expired", f"quote-expired:{quote.id}", quote_id=quote.id)
    db.session.commit()
    return len(due)


def remind_open_quotes(now: datetime | None = None) -> int:
    """One reminder to the resident two days before a quote expires."""
    now = now or utcnow()
    today = local_today(now)
    due = list(
        db.session.scalars(
            select(Quote)
            .where(
                Quote.status == QuoteStatus.SENT,
                Quote.reminder_sent_at.is_(None),
                Quote.valid_until >= today,
                Quote.valid_until <= today + timedelta(days=QUOTE_REMINDER_DAYS),
            )
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    )
    for quote in due:
        quote.reminder_sent_at = now
        jobs.enqueue("orders.send_quote_reminder", f"quote-reminder:{quote.id}", quote_id=quote.id)
    db.session.commit()
    return len(due)


# --- installation and the resident's confirmation ----------------------------------------------


def plan_installation(
    actor: User, line: OrderLine, on: date, *, now: datetime | None = None
) -> OrderLine:
    now = now or utcnow()
    _installer_of(actor, line)
    _lock(line)
    _accepted_order(line)
    if line.status is not LineStatus.ACCEPTED:
        raise OrderError("installation_not_possible", status=line.status.value)
    today = local_today(now)
    if on < today:
        raise OrderError("date_in_past")
    if on > today + MAX_SURVEY_AHEAD:
        raise OrderError("date_too_far")
    line.installation_planned_on = on
    line.updated_at = now
    jobs.enqueue(
        "orders.send_installation_planned",
        f"installation-planned:{line.id}:{on.isoformat()}",
        line_id=line.id,
    )
    db.session.commit()
    return line


def mark_installed(
    actor: User, line: OrderLine, on: date, *, now: datetime | None = None
) -> OrderLine:
    """The installer reports the work done; the resident is asked to confirm it."""
    now = now or utcnow()
    _installer_of(actor, line)
    _lock(line)
    _accepted_order(line)
    if line.status is not LineStatus.ACCEPTED:
        raise OrderError("installation_not_possible", status=line.status.value)
    today = local_today(now)
    if on > today:
        raise OrderError("date_in_future")
    accepted = next((q for q in line.quotes if q.status is QuoteStatus.ACCEPTED), None)
    if (
        accepted is not None
        and accepted.decided_at is not None
        and on < local_today(accepted.decided_at)
    ):
        raise OrderError("installed_before_accepted")
    line.installed_on = on
    _move(line, LineStatus.INSTALLED, actor, now)
    jobs.enqueue("orders.send_installed", f"installed:{line.id}", line_id=line.id)
    db.session.commit()
    return line


def confirm_installation(
    actor: User,
    line: OrderLine,
    rating: int | None,
    comment: str = "",
    *,
    now: datetime | None = None,
) -> OrderLine:
    """The resident confirms the work is done, and may rate the installer (1 to 5)."""
    now = now or utcnow()
    _resident_of(actor, line)
    comment = comment.strip()
    if rating is not None and not 1 <= rating <= 5:
        raise OrderError("rating_range")
    if len(comment) > MAX_COMMENT:
        raise OrderError("message_too_long")
    _lock(line)
    if line.status is not LineStatus.INSTALLED:
        raise OrderError("confirm_not_possible", status=line.status.value)
    line.confirmed_at = now
    if rating is not None:
        line.review = Review(
            installer_id=line.order.installer_id, rating=rating, comment=comment, created_at=now
        )
    _move(line, LineStatus.COMPLETED, actor, now)
    jobs.enqueue("orders.send_confirmed", f"installation-confirmed:{line.id}", line_id=line.id)
    db.session.commit()
    return line


# --- reading ----------------------------------------------------------------------------------


def lines_of_registration(registration: Registration) -> list[OrderLine]:
    """Every order line of the registration, current ones first: the resident's own page."""
    lines = db.session.scalars(
        select(OrderLine)
        .where(OrderLine.registration_id == registration.id)
        .options(
            selectinload(OrderLine.surveys),
            selectinload(OrderLine.quotes).selectinload(Quote.items),
            selectinload(OrderLine.order).selectinload(Order.installer),
        )
        .order_by(OrderLine.current.desc(), OrderLine.id.desc())
    )
    return list(lines)


def lines_of_order(order: Order) -> list[OrderLine]:
    """The households of an order in street order, as the installer drives past them; the lines
    of residents who erased their account (detached) last."""
    return list(
        db.session.scalars(
            select(OrderLine)
            .outerjoin(Registration, Registration.id == OrderLine.registration_id)
            .outerjoin(Household, Household.id == Registration.household_id)
            .where(OrderLine.order_id == order.id)
            .options(
                selectinload(OrderLine.registration).selectinload(Registration.household),
                selectinload(OrderLine.registration).selectinload(Registration.user),
                selectinload(OrderLine.surveys),
                selectinload(OrderLine.quotes),
            )
            .order_by(
                OrderLine.registration_id.is_(None),
                Household.pc4,
                Household.street,
                Household.house_number,
                Household.house_number_addition,
                OrderLine.id,
            )
        )
    )


def rating_of(installer_id: int) -> tuple[float | None, int]:
    """The average rating and the number of reviews of an installer."""
    ratings = list(
        db.session.scalars(select(Review.rating).where(Review.installer_id == installer_id))
    )
    if not ratings:
        return None, 0
    return sum(ratings) / len(ratings), len(ratings)


def line_context(line: OrderLine) -> dict[str, Any]:
    """What the emails about a line need. A detached line (its resident erased the account)
    has no registration and no household: only the work itself."""
    registration = line.registration
    return {
        "line": line,
        "order": line.order,
        "installer": line.order.installer,
        "registration": registration,
        "household": registration.household if registration is not None else None,
        "action": line.order.action,
        "measure": line.measure,
    }
