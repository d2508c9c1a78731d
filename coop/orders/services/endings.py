"""When the work on a home ends: a withdrawn measure's order line, an erased resident's lines
(kept for the books without the person), a cancelled action's open orders
(``actions.events.action_cancelled``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from coop.actions import events as action_events
from coop.actions.models import Action
from coop.core import jobs
from coop.core.db import lock_row
from coop.extensions import db
from coop.orders.models import (
    OPEN_LINE,
    OPEN_RUN,
    LineStatus,
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    QuoteStatus,
    RunStatus,
    SurveyStatus,
)
from coop.registrations.models import (
    Registration,
)

# --- the action or the registration ends -------------------------------------------------------


def end_line(line: OrderLine, *, now: datetime) -> bool:
    """Called in a measure's withdrawal (``coop.residents.withdrawal``): the installer stops
    the work on this household's measure and is told. Installed work is never ended. True when
    the line was ended by this call."""
    lock_row(line)
    if line.status not in OPEN_LINE or line.status is LineStatus.INSTALLED:
        return False
    line.status = LineStatus.WITHDRAWN
    line.updated_at = now
    _end_open_work(line, now, QuoteStatus.DECLINED)
    jobs.enqueue(
        "orders.send_household_withdrawn", f"household-withdrawn:{line.id}", line_id=line.id
    )
    return True


def _end_open_work(line: OrderLine, now: datetime, quote_ends_as: QuoteStatus) -> None:
    """A line that ends before its work is done: its planned survey is off, and its open quote
    ends (so that no reminder or expiry email follows): declined when the resident withdrew,
    expired when the action was cancelled (the offer lapsed; the resident said nothing)."""
    for survey in line.surveys:
        if survey.status in (SurveyStatus.PLANNED, SurveyStatus.CHANGE_REQUESTED):
            survey.status = SurveyStatus.CANCELLED
    for quote in line.quotes:
        if quote.status is QuoteStatus.SENT:
            quote.status = quote_ends_as
            quote.decided_at = now


def detach_lines(registration: Registration) -> list[OrderLine]:
    """Before an erased resident's registration is deleted: its order lines stay in the
    installers' orders (the work, its quote and rating, for the books), without the person,
    the address or what the resident wrote. The work itself was ended before (``end_line``)."""
    lines = list(
        db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id)
            .options(
                selectinload(OrderLine.surveys),
                selectinload(OrderLine.quotes),
                selectinload(OrderLine.review),
            )
        )
    )
    for line in lines:
        line.registration_id = None
        line.registration_measure_id = None
        for survey in line.surveys:
            survey.change_request = None
        for quote in line.quotes:
            quote.decline_reason = None
        if line.review is not None:
            line.review.comment = ""
    return lines


@action_events.action_cancelled.connect
def action_cancelled(action: Action, *, now: datetime, **_details: Any) -> None:
    """Called in the cancellation's transaction: open orders and runs end, installers hear.

    Work already installed is never cancelled: its line stays installed (the resident can still
    confirm it) or completed, and its deposit stays as it is (``payments.action_cancelled``);
    an order holding such work stays accepted, so the installer keeps seeing what it did. Only
    the work not done yet ends, with its survey and open quote."""
    db.session.execute(
        update(MatchingRun)
        .where(MatchingRun.action_id == action.id, MatchingRun.status.in_(OPEN_RUN))
        .values(status=RunStatus.SUPERSEDED, stage="superseded", finished_at=now)
    )
    orders = db.session.scalars(
        select(Order).where(
            Order.action_id == action.id,
            Order.status.in_((OrderStatus.SENT, OrderStatus.ACCEPTED)),
        )
    )
    for order in orders:
        done = False
        for line in order.lines:
            if line.current and line.status in OPEN_LINE - {LineStatus.INSTALLED}:
                line.status = LineStatus.CANCELLED
                line.current = False
                line.updated_at = now
                _end_open_work(line, now, QuoteStatus.EXPIRED)
            elif line.status in (LineStatus.INSTALLED, LineStatus.COMPLETED):
                done = True
        if not done:
            order.status = OrderStatus.CANCELLED
        jobs.enqueue(
            "orders.send_order_cancelled", f"order-cancelled:{order.id}", order_id=order.id
        )
