"""What the installer's portal reads: the work waiting per order, the route planning export and
the calendar feed of planned visits. Reading only; every change goes through ``services`` and
``fieldwork``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, url_for
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.core import exports
from coop.core.authz import authorize
from coop.core.calendar import CalendarEvent
from coop.core.time import utcnow
from coop.core.web import localized
from coop.core.workdays import local_today
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.fieldwork import lines_of_order
from coop.orders.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    QuoteStatus,
    SurveyStatus,
)
from coop.registrations.models import Household, Registration
from coop.tenders.models import TenderInvitation, TenderRound

# Orders whose households the installer works on (or still has to answer for).
ACTIVE_ORDER = (OrderStatus.SENT, OrderStatus.ACCEPTED)
# A feed keeps the visits of the last weeks, so yesterday's visit does not vanish at midnight.
FEED_HISTORY = timedelta(days=60)


@dataclass
class OrderWork:
    """What is waiting on one order: an answer, or per household the next step."""

    order: Order
    homes: int
    surveys_to_plan: int = 0
    other_date_asked: int = 0
    quotes_to_send: int = 0
    installations_to_plan: int = 0
    to_mark_installed: int = 0

    @property
    def answer_needed(self) -> bool:
        return self.order.status is OrderStatus.SENT

    @property
    def anything(self) -> bool:
        return self.answer_needed or any(
            (
                self.surveys_to_plan,
                self.other_date_asked,
                self.quotes_to_send,
                self.installations_to_plan,
                self.to_mark_installed,
            )
        )


@dataclass
class InstallerWork:
    invitations: list[TenderInvitation] = field(default_factory=list)  # still open for bids
    orders: list[OrderWork] = field(default_factory=list)  # sent or accepted, newest first


def next_step(line: OrderLine, now: datetime) -> str | None:
    """What the installer does next for a household of an accepted order (a code the page
    words), or None when it waits for the resident or is done."""
    if line.order.status is not OrderStatus.ACCEPTED:
        return None
    survey = line.survey
    if line.status is LineStatus.ASSIGNED:
        return "plan_survey"
    if line.status is LineStatus.SURVEY_PLANNED and survey is not None:
        if survey.status is SurveyStatus.CHANGE_REQUESTED:
            return "other_date_asked"
        return "send_quote" if survey.starts_at <= now else None
    if line.status is LineStatus.QUOTED:
        quote = line.quote
        return "send_quote" if quote is not None and quote.status is QuoteStatus.EXPIRED else None
    if line.status is LineStatus.ACCEPTED:
        planned = line.installation_planned_on
        if planned is None:
            return "plan_installation"
        return "mark_installed" if planned <= local_today(now) else None
    return None


_COUNTERS = {
    "plan_survey": "surveys_to_plan",
    "other_date_asked": "other_date_asked",
    "send_quote": "quotes_to_send",
    "plan_installation": "installations_to_plan",
    "mark_installed": "to_mark_installed",
}


def work_of(installer: Installer, now: datetime | None = None) -> InstallerWork:
    """The installer's start page: tender rounds open for a bid, and the orders with what waits."""
    now = now or utcnow()
    invitations = list(
        db.session.scalars(
            select(TenderInvitation)
            .join(TenderRound)
            .where(
                TenderInvitation.installer_id == installer.id,
                TenderRound.cancelled_at.is_(None),
                TenderRound.deadline > now,
            )
            .options(selectinload(TenderInvitation.round).selectinload(TenderRound.action))
            .order_by(TenderRound.deadline, TenderInvitation.id)
        )
    )
    orders = db.session.scalars(
        select(Order)
        .where(Order.installer_id == installer.id, Order.status.in_(ACTIVE_ORDER))
        .options(
            selectinload(Order.action),
            selectinload(Order.lines).selectinload(OrderLine.surveys),
            selectinload(Order.lines).selectinload(OrderLine.quotes),
        )
        .order_by(Order.sent_at.desc(), Order.id.desc())
    )
    work = InstallerWork(invitations=invitations)
    for order in orders:
        item = OrderWork(order, homes=len(order.lines))
        for line in order.lines:
            step = next_step(line, now)
            if step is not None:
                setattr(item, _COUNTERS[step], getattr(item, _COUNTERS[step]) + 1)
        work.orders.append(item)
    return work


# --- the route planning export -----------------------------------------------------------------


def _lines_for_planning(installer_id: int) -> Iterator[OrderLine]:
    """The households of the installer's sent and accepted orders, area by area, street by
    street; withdrawn and cancelled ones left out."""
    rows = db.session.scalars(
        select(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Registration, Registration.id == OrderLine.registration_id)
        .join(Household, Household.id == Registration.household_id)
        .where(
            Order.installer_id == installer_id,
            Order.status.in_(ACTIVE_ORDER),
            OrderLine.status.not_in((LineStatus.WITHDRAWN, LineStatus.CANCELLED)),
        )
        .options(
            selectinload(OrderLine.registration).selectinload(Registration.household),
            selectinload(OrderLine.registration).selectinload(Registration.user),
            selectinload(OrderLine.surveys),
            selectinload(OrderLine.order),
        )
        .order_by(
            Household.pc4,
            Household.street,
            Household.house_number,
            Household.house_number_addition,
            OrderLine.id,
        )
        .execution_options(yield_per=500)
    )
    yield from rows


def route_planning_table(
    actor: User, installer: Installer, status_label: Callable[[LineStatus], str]
) -> exports.Table:
    """One row per household to visit. The resident's name, phone and email only where the
    order page shows them too (accepted orders); ``status_label`` words a line's status."""
    headers = [
        gettext("Order"),
        gettext("Action"),
        gettext("Postcode"),
        gettext("Street"),
        gettext("House number"),
        gettext("Addition"),
        gettext("Town or city"),
        gettext("Measure"),
        gettext("Quantity"),
        gettext("Unit"),
        gettext("Status"),
        gettext("Resident"),
        gettext("Phone number"),
        gettext("Email address"),
        gettext("Site survey"),
        gettext("Installation day"),
    ]

    # The rows are read while the response streams: by ids, not by objects of the request.
    installer_id, actor_id = installer.id, actor.id

    def rows() -> Iterator[list[exports.Cell]]:
        reader = db.session.get(User, actor_id)
        for line in _lines_for_planning(installer_id):
            household = line.household_registration.household
            resident = line.household_registration.user
            measure = line.measure
            contact = authorize(reader, line, "contact")
            survey = line.survey
            yield [
                line.order_id,
                localized(line.order.action, "title"),
                household.postcode,
                household.street,
                household.house_number,
                household.house_number_addition,
                household.city,
                localized(measure, "name"),
                line.quantity,
                gettext("m²") if measure.unit.value == "m2" else gettext("pieces"),
                status_label(line.status),
                resident.name if contact else None,
                resident.phone if contact else None,
                resident.email if contact else None,
                survey.starts_at if survey is not None else None,
                line.installation_planned_on,
            ]

    return exports.Table(title=gettext("Route planning"), headers=headers, rows=rows())


# --- the calendar feed ---------------------------------------------------------------------------


def _portal_link(line: OrderLine) -> str:
    """The household on the order's page in the portal, where the installer logs in."""
    path = url_for("portal.order", order_id=line.order_id, _anchor=f"line-{line.id}")
    return f"{current_app.config['BASE_URL']}{path}"


def calendar_events(installer: Installer, now: datetime | None = None) -> list[CalendarEvent]:
    """Planned site surveys and installation days of the installer's accepted orders."""
    now = now or utcnow()
    since = now - FEED_HISTORY
    events: list[CalendarEvent] = []
    orders = db.session.scalars(
        select(Order)
        .where(Order.installer_id == installer.id, Order.status == OrderStatus.ACCEPTED)
        .order_by(Order.id)
    )
    for order in orders:
        for line in lines_of_order(order):
            if line.detached or line.status in (
                LineStatus.WITHDRAWN,
                LineStatus.CANCELLED,
                LineStatus.DECLINED,
            ):
                continue
            household = line.household_registration.household
            resident = line.household_registration.user
            measure = line.measure
            what = f"{localized(measure, 'name')}, {line.quantity}"
            # The feed's address is pasted into calendars of other companies (Google, Apple,
            # Microsoft) and read on any device: the resident's name, not their phone number or
            # email; those are on the household's page in the portal, behind the login.
            contact = f"{resident.name}\n{_portal_link(line)}"
            survey = line.survey
            if survey is not None and survey.starts_at >= since:
                asked = survey.status is SurveyStatus.CHANGE_REQUESTED
                events.append(
                    CalendarEvent(
                        uid=f"survey-{line.id}@coop",
                        sequence=len(line.surveys),
                        summary=(
                            gettext("Site survey: %(address)s", address=household.address_line)
                            + (f" ({gettext('other date asked')})" if asked else "")
                        ),
                        starts=survey.starts_at,
                        ends=survey.starts_at + timedelta(minutes=survey.duration_minutes),
                        location=household.address_line,
                        description=f"{what}\n{contact}",
                    )
                )
            day = line.installation_planned_on
            if day is not None and day >= since.date():
                events.append(
                    CalendarEvent(
                        uid=f"installation-{line.id}@coop",
                        sequence=int(day.strftime("%Y%m%d")),
                        summary=gettext(
                            "Installation: %(address)s", address=household.address_line
                        ),
                        starts=day,
                        ends=day + timedelta(days=1),
                        location=household.address_line,
                        description=f"{what}\n{contact}",
                    )
                )
    return events
