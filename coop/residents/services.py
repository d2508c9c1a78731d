"""What a resident does across the domains: the progress of their registrations with the work
on each measure, withdrawing measures (``withdrawal``), and the rights over their data
(exporting everything coop holds about them, erasing their account).

A use case of every domain at once (registrations, orders, payments, participation), so it
stands above them all: they need not know of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import selectinload

from coop.accounts.models import LoginToken, User
from coop.core.db import unit_of_work
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.models import OrderLine, QuoteStatus
from coop.participation import privacy as participation
from coop.payments import services as payments
from coop.registrations import services as registration_services
from coop.registrations.models import (
    ENDED,
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)
from coop.residents import withdrawal
from coop.residents.withdrawal import Withdrawal

log = logging.getLogger(__name__)


def can_withdraw(registration: Registration, now: datetime | None = None) -> bool:
    """Whether at least one measure can be withdrawn now (``coop.residents.withdrawal``
    has the rule, per measure)."""
    return withdrawal.can_withdraw_any(registration, now)


@unit_of_work
def withdraw(
    registration: Registration,
    reason: str,
    *,
    actor: User,
    now: datetime | None = None,
    measure_ids: list[int] | None = None,
) -> Withdrawal:
    """Withdraw the measures ``measure_ids`` (None: every measure that can be withdrawn); when
    none is left going, the registration is withdrawn with them."""
    done = withdrawal.withdraw_measures(registration, measure_ids, reason, actor=actor, now=now)
    db.session.commit()
    return done


@dataclass(frozen=True)
class TimelineStep:
    status: RegistrationStatus
    at: datetime | None
    done: bool
    current: bool
    on: date | None = None  # a day without a time (the day the work was done)


@dataclass(frozen=True)
class MeasureProgress:
    """One measure's own steps, from its installer to the confirmed work (or where it ended)."""

    measure: RegistrationMeasure
    steps: list[TimelineStep]


@dataclass(frozen=True)
class Timeline:
    """The household's steps (registered, confirmed) and each measure's own progress."""

    household: list[TimelineStep]
    measures: list[MeasureProgress]


# The household's own steps; what follows is per measure (``MEASURE_JOURNEY``).
HOUSEHOLD_JOURNEY = (RegistrationStatus.PENDING_CONFIRMATION, RegistrationStatus.CONFIRMED)
MEASURE_JOURNEY = (
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.SURVEY_PLANNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
    RegistrationStatus.COMPLETED,
)


def _with_current(steps: list[TimelineStep]) -> list[TimelineStep]:
    done = [i for i, step in enumerate(steps) if step.done]
    if done:
        last = steps[done[-1]]
        steps[done[-1]] = TimelineStep(last.status, last.at, True, True, last.on)
    return steps


def timeline(registration: Registration) -> Timeline:
    """For the resident's pages: the household's steps behind and ahead, and per measure the
    steps its own work went through (with when) and the usual steps ahead. A step done for one
    measure is never shown as still to come for it, whatever the others do."""
    household: list[TimelineStep] = []
    reached: set[RegistrationStatus] = set()
    shown = {*HOUSEHOLD_JOURNEY, RegistrationStatus.WITHDRAWN, RegistrationStatus.EXPIRED}
    for change in registration.history:
        if change.registration_measure_id is not None:
            continue  # a measure's own change: in its progress below
        if change.to_status in shown and change.to_status not in reached:
            household.append(TimelineStep(change.to_status, change.at, True, False))
            reached.add(change.to_status)
    if registration.status not in ENDED - {RegistrationStatus.COMPLETED}:
        confirmed = registration.status is not RegistrationStatus.PENDING_CONFIRMATION
        for status in HOUSEHOLD_JOURNEY:
            if status not in reached:
                # Behind it without a history entry (imported data), or still to come.
                done = confirmed or status is RegistrationStatus.PENDING_CONFIRMATION
                household.append(TimelineStep(status, None, done, False))
    household = _with_current(household)

    lines = {
        line.registration_measure_id: line
        for line in db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id, OrderLine.current.is_(True))
            .options(selectinload(OrderLine.surveys), selectinload(OrderLine.quotes))
        )
    }
    measures: list[MeasureProgress] = []
    for plan in withdrawal.measure_plans(registration):
        line = lines.get(plan.measure.id)
        when: dict[RegistrationStatus, tuple[datetime | None, date | None]] = {}
        if line is not None:
            when[RegistrationStatus.ASSIGNED] = (line.created_at, None)
            if line.surveys:
                when[RegistrationStatus.SURVEY_PLANNED] = (line.surveys[0].planned_at, None)
            if line.quotes:
                when[RegistrationStatus.QUOTED] = (line.quotes[0].sent_at, None)
            accepted = next((q for q in line.quotes if q.status is QuoteStatus.ACCEPTED), None)
            if accepted is not None:
                when[RegistrationStatus.ACCEPTED] = (accepted.decided_at, None)
            if line.installed_on is not None:
                when[RegistrationStatus.INSTALLED] = (None, line.installed_on)
            if line.confirmed_at is not None:
                when[RegistrationStatus.COMPLETED] = (line.confirmed_at, None)
        furthest = max((MEASURE_JOURNEY.index(s) for s in when), default=-1)
        steps: list[TimelineStep] = []
        for index, status in enumerate(MEASURE_JOURNEY):
            if status in when:
                at, on = when[status]
                steps.append(TimelineStep(status, at, True, False, on))
            elif index > furthest and plan.going and registration.status not in ENDED:
                steps.append(TimelineStep(status, None, False, False))
            # A step skipped on the way (a quote without a survey) is left out.
        if plan.measure.withdrawn_at is not None:
            steps.append(TimelineStep(plan.step, plan.measure.withdrawn_at, True, False))
        elif plan.step is RegistrationStatus.DECLINED and line is not None:
            declined = next((q for q in line.quotes if q.status is QuoteStatus.DECLINED), None)
            steps.append(
                TimelineStep(plan.step, declined.decided_at if declined else None, True, False)
            )
        measures.append(MeasureProgress(plan.measure, _with_current(steps)))
    return Timeline(household, measures)


def export_resident_data(user: User) -> dict[str, Any]:
    """Everything coop holds about a resident, as plain data (the GDPR right of access)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    registrations = []
    for registration in registration_services.registrations_of(user):
        household = registration.household
        registrations.append(
            {
                "id": registration.id,
                "action": registration.action.slug,
                "status": registration.status.value,
                "created_at": iso(registration.created_at),
                "consent_at": iso(registration.consent_at),
                "consent_version": registration.consent_version,
                "withdrawal_reason": registration.withdrawal_reason,
                "address": {
                    "street": household.street,
                    "house_number": household.house_number,
                    "addition": household.house_number_addition,
                    "postcode": household.postcode,
                    "city": household.city,
                },
                "dwelling": {
                    "type": household.dwelling_type.value,
                    "build_year": household.build_year,
                    "ownership": household.ownership.value,
                    "energy_label": household.energy_label,
                },
                "measures": [
                    {
                        "measure": rm.action_measure.measure.code,
                        "quantity": rm.quantity,
                        "unit": rm.action_measure.measure.unit.value,
                        "withdrawn_at": iso(rm.withdrawn_at),
                        "withdrawal_reason": rm.withdrawal_reason,
                    }
                    for rm in registration.measures
                ],
                "history": [
                    {
                        "from": c.from_status.value if c.from_status else None,
                        "to": c.to_status.value,
                        "at": iso(c.at),
                        "note": c.note,
                    }
                    for c in registration.history
                ],
            }
        )
    emails = db.session.scalars(
        select(EmailLog).where(_emails_to(user)).order_by(EmailLog.id)
    ).all()
    return {
        "account": {
            "email": user.email,
            "name": user.name,
            "phone": user.phone,
            "language": user.language,
            "created_at": iso(user.created_at),
            "last_login_at": iso(user.last_login_at),
        },
        "registrations": registrations,
        "participation": participation.export_person(user),
        "emails": [
            {"subject": e.subject, "sent_at": iso(e.sent_at), "status": e.status.value}
            for e in emails
        ],
        "exported_at": iso(utcnow()),
    }


def _emails_to(user: User) -> ColumnElement[bool]:
    """The person's emails: those logged with the account, and those sent to the address without
    one (survey links and interest confirmations are sent to the email the form gave)."""
    return or_(EmailLog.user_id == user.id, func.lower(EmailLog.recipient) == user.email.lower())


def erase_resident(user: User, now: datetime | None = None) -> None:
    """Erase a resident. First the work under way ends, through the same service as a
    withdrawal (``coop.residents.withdrawal``, with ``erasing``): order lines ended and the
    installers told, unpaid deposits cancelled, deposits paid within the cooling-off period
    refunded, the desk told. Then their registrations, households nobody else registered, their
    participation (RSVPs, survey responses, interest, ambassador roles; see
    ``coop.participation.privacy.erase_person``), login links and the account go; the email
    log keeps only that a message was sent, not to whom.

    What stays, without the person: the order lines (the installer's order still shows the work
    and its quote, the rating without its comment; ``orders.detach_lines``) and the deposits
    with their history (``payments.forget_registrations``), for the books. One transaction:
    all of it or nothing."""
    now = now or utcnow()
    participation.erase_person(user)
    registrations = db.session.scalars(
        select(Registration).where(Registration.user_id == user.id).order_by(Registration.id)
    ).all()
    for registration in registrations:
        withdrawal.withdraw_measures(registration, None, "", actor=None, now=now, erasing=True)
    db.session.flush()
    household_ids = {r.household_id for r in registrations}
    for registration in registrations:
        orders.detach_lines(registration)
    # The deposits stay for the books, without the link to the person.
    payments.forget_registrations([r.id for r in registrations])
    db.session.flush()
    for registration in registrations:
        db.session.delete(registration)
    db.session.flush()
    for household_id in household_ids:
        still_used = db.session.scalar(
            select(func.count())
            .select_from(Registration)
            .where(Registration.household_id == household_id)
        )
        if not still_used:
            household = db.session.get(Household, household_id)
            if household is not None:
                db.session.delete(household)
    db.session.execute(
        update(EmailLog)
        .where(_emails_to(user))
        .values(user_id=None, recipient="erased", body_text=None)
    )
    db.session.execute(LoginToken.__table__.delete().where(LoginToken.user_id == user.id))
    db.session.delete(user)
    db.session.commit()
    log.info("resident erased")
