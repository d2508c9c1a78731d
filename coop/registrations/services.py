"""The rules of a registration: sign up, confirm, edit, withdraw, remind, expire, export, erase.

Every function that changes state records the status history and the follow-up jobs in the
same transaction and commits it; views only call these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services import AccountError, get_or_create_resident, issue_login_token
from coop.actions.models import Action
from coop.core import audit, jobs
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.models import (
    ENDED,
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)

if TYPE_CHECKING:
    from coop.registrations.withdrawal import Withdrawal

log = logging.getLogger(__name__)

CONSENT_VERSION = "2026-11"

# Registrations that count as participants for the group price: confirmed and not ended.
PARTICIPATING = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.SURVEY_PLANNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
    RegistrationStatus.COMPLETED,
)

REMINDER_GRACE = timedelta(hours=24)
# A household whose earlier registration ended this way may sign up again.
REGISTER_AGAIN = frozenset({RegistrationStatus.WITHDRAWN, RegistrationStatus.EXPIRED})


class RegistrationError(Exception):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""

    def __init__(self, code: str, registration: Registration | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.registration = registration


@dataclass
class Dwelling:
    dwelling_type: DwellingType
    build_year: int
    ownership: Ownership
    energy_label: str | None


@dataclass
class Address:
    postcode: str  # normalised "1234 AB"
    house_number: int
    addition: str  # normalised, "" for none
    street: str
    city: str


@dataclass
class RegistrationInput:
    name: str
    email: str
    phone: str | None
    address: Address
    dwelling: Dwelling
    # action_measure_id -> quantity (m² or pieces)
    measures: dict[int, int] = field(default_factory=dict)
    consent: bool = False
    language: str = "nl"


def participants_by_measure(action: Action) -> dict[int, int]:
    rows = db.session.execute(
        select(RegistrationMeasure.action_measure_id, func.count())
        .join(Registration, Registration.id == RegistrationMeasure.registration_id)
        .where(
            Registration.action_id == action.id,
            Registration.status.in_(PARTICIPATING),
            RegistrationMeasure.withdrawn_at.is_(None),
        )
        .group_by(RegistrationMeasure.action_measure_id)
    ).all()
    return {measure_id: count for measure_id, count in rows}


def participant_count(action: Action) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(Registration.action_id == action.id, Registration.status.in_(PARTICIPATING))
    )
    return int(count or 0)


def _record(
    registration: Registration,
    to: RegistrationStatus,
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> None:
    registration.history.append(
        StatusChange(
            from_status=registration.status if registration.history else None,
            to_status=to,
            at=now,
            actor_id=actor.id if actor else None,
            note=note,
        )
    )
    registration.status = to


def change_status(
    registration: Registration,
    to: RegistrationStatus,
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> None:
    """Move a registration on (orders do, as its work progresses), with its history entry."""
    _record(registration, to, actor=actor, now=now, note=note)


def _validate_measures(action: Action, wanted: dict[int, int]) -> None:
    offered = {am.id: am for am in action.measures}
    if not wanted:
        raise RegistrationError("no_measures")
    for action_measure_id, quantity in wanted.items():
        action_measure = offered.get(action_measure_id)
        if action_measure is None:
            raise RegistrationError("unknown_measure")
        if not 1 <= quantity <= action_measure.measure.max_quantity:
            raise RegistrationError("quantity_out_of_range")


def find_household(address: Address) -> Household | None:
    return db.session.scalar(
        select(Household).where(
            Household.postcode == address.postcode,
            Household.house_number == address.house_number,
            Household.house_number_addition == address.addition,
        )
    )


def existing_registration(action: Action, address: Address) -> Registration | None:
    household = find_household(address)
    return _registration_of(action, household) if household is not None else None


def _registration_of(action: Action, household: Household) -> Registration | None:
    return db.session.scalar(
        select(Registration).where(
            Registration.action_id == action.id, Registration.household_id == household.id
        )
    )


def register(
    action: Action,
    data: RegistrationInput,
    *,
    actor: User | None = None,
    now: datetime | None = None,
) -> Registration:
    """Sign a household up for an action; it stays pending until the email link is followed."""
    now = now or utcnow()
    if not action.is_open_for_registration(now):
        raise RegistrationError("action_not_open")
    if not data.consent:
        raise RegistrationError("no_consent")
    if data.address.postcode[:4] not in action.pc4_list:
        raise RegistrationError("outside_area")
    _validate_measures(action, data.measures)
    household = find_household(data.address)
    existing = _registration_of(action, household) if household is not None else None
    if existing is not None and existing.status not in REGISTER_AGAIN:
        raise RegistrationError("already_registered", existing)
    try:
        user = get_or_create_resident(data.email, data.name, data.phone, data.language)
    except AccountError as exc:
        raise RegistrationError(exc.code) from exc
    if household is None:
        household = Household(
            postcode=data.address.postcode,
            house_number=data.address.house_number,
            house_number_addition=data.address.addition,
        )
        db.session.add(household)
    household.street = data.address.street
    household.city = data.address.city
    _apply_dwelling(household, data.dwelling)
    if existing is not None:
        # Withdrawn or lapsed earlier: the same registration starts again, history kept.
        registration = existing
        registration.user = user
        registration.consent_at = now
        registration.consent_version = CONSENT_VERSION
        registration.withdrawal_reason = None
        registration.reminder_sent_at = None
        registration.created_at = now
        registration.measures.clear()
        # The earlier round's unused link must not confirm this round (maybe someone else's).
        _end_confirmation_links(registration, now)
        db.session.flush()
    else:
        registration = Registration(
            action=action,
            household=household,
            user=user,
            consent_at=now,
            consent_version=CONSENT_VERSION,
            created_at=now,
        )
        db.session.add(registration)
    _record(registration, RegistrationStatus.PENDING_CONFIRMATION, actor=actor, now=now)
    for action_measure_id, quantity in sorted(data.measures.items()):
        registration.measures.append(
            RegistrationMeasure(action_measure_id=action_measure_id, quantity=quantity)
        )
    try:
        db.session.flush()
        token = issue_login_token(
            user,
            LoginPurpose.CONFIRM_REGISTRATION,
            valid_for=timedelta(hours=current_app.config["CONFIRMATION_EXPIRES_AFTER_HOURS"]),
            registration_id=registration.id,
            now=now,
        )
        jobs.enqueue(
            "registrations.send_confirmation",
            f"registration-confirm:{token.id}",
            registration_id=registration.id,
            token_id=token.id,
        )
        if actor is not None and actor.role is Role.STAFF:
            # Registered by the desk (phone, walk-in): the audit log says who entered it.
            audit.record(
                actor,
                action.organisation_id,
                "registration.register_on_behalf",
                registration,
                after={"household_id": registration.household_id, "user_id": user.id},
            )
        # Read before the commit expires them: reading them after it costs a query each (and
        # the action's, five: its loader options come along).
        registration_id, action_id = registration.id, action.id
        db.session.commit()
    except IntegrityError:
        # Two sign-ups for the same address at the same moment: the other one won.
        db.session.rollback()
        existing = existing_registration(action, data.address)
        if existing is not None:
            raise RegistrationError("already_registered", existing) from None
        raise
    log.info("registration created id=%s action=%s", registration_id, action_id)
    return registration


def _apply_dwelling(household: Household, dwelling: Dwelling) -> None:
    household.dwelling_type = dwelling.dwelling_type
    household.build_year = dwelling.build_year
    household.ownership = dwelling.ownership
    household.energy_label = dwelling.energy_label


def resend_access(registration: Registration, language: str) -> None:
    """The "this address is already registered" way in: a login link to the registered email."""
    user = registration.user
    token = issue_login_token(
        user, LoginPurpose.LOGIN, next_path=f"/my/registrations/{registration.id}"
    )
    user.language = language
    jobs.enqueue("accounts.send_login_link", f"login-link:{token.id}", token_id=token.id)
    db.session.commit()


def confirm(registration: Registration, *, now: datetime | None = None) -> bool:
    """Confirm by the emailed link; True if this call confirmed it. The caller's commit is ours."""
    now = now or utcnow()
    if registration.status is not RegistrationStatus.PENDING_CONFIRMATION:
        return False
    _record(registration, RegistrationStatus.CONFIRMED, actor=registration.user, now=now)
    return True


def registrations_of(user: User) -> list[Registration]:
    return list(
        db.session.scalars(
            select(Registration)
            .where(Registration.user_id == user.id)
            .options(
                selectinload(Registration.history),
                selectinload(Registration.measures),
                selectinload(Registration.household),
                selectinload(Registration.action),
            )
            .order_by(Registration.created_at.desc())
        )
    )


def get_registration(registration_id: int) -> Registration | None:
    return db.session.get(Registration, registration_id)


def can_edit(registration: Registration, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return registration.status in (
        RegistrationStatus.PENDING_CONFIRMATION,
        RegistrationStatus.CONFIRMED,
    ) and registration.action.is_open_for_registration(now)


def update_details(
    registration: Registration,
    *,
    name: str,
    phone: str | None,
    dwelling: Dwelling,
    measures: dict[int, int],
    now: datetime | None = None,
) -> None:
    """Change contact, dwelling and measures while the action still takes registrations."""
    now = now or utcnow()
    if not can_edit(registration, now):
        raise RegistrationError("not_editable")
    _validate_measures(registration.action, measures)
    registration.user.name = name
    registration.user.phone = phone
    _apply_dwelling(registration.household, dwelling)
    current = {rm.action_measure_id: rm for rm in registration.measures}
    for action_measure_id, registration_measure in current.items():
        if action_measure_id not in measures and registration_measure.withdrawn_at is None:
            registration.measures.remove(registration_measure)
    for action_measure_id, quantity in measures.items():
        if action_measure_id in current:
            current[action_measure_id].quantity = quantity
            # Ticked again while the details can still change: wanted again.
            current[action_measure_id].withdrawn_at = None
            current[action_measure_id].withdrawal_reason = None
        else:
            registration.measures.append(
                RegistrationMeasure(action_measure_id=action_measure_id, quantity=quantity)
            )
    registration.updated_at = now
    db.session.commit()


def can_withdraw(registration: Registration, now: datetime | None = None) -> bool:
    """Whether at least one measure can be withdrawn now (``coop.registrations.withdrawal``
    has the rule, per measure)."""
    # Imported here: the withdrawal builds on orders and payments, which build on registrations.
    from coop.registrations import withdrawal

    return withdrawal.can_withdraw_any(registration, now)


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
    from coop.registrations import withdrawal

    done = withdrawal.withdraw_measures(registration, measure_ids, reason, actor=actor, now=now)
    db.session.commit()
    return done


def _confirmation_token(registration: Registration) -> LoginToken | None:
    """The newest confirmation link of this registration (a new one per sign-up)."""
    return db.session.scalar(
        select(LoginToken)
        .where(
            LoginToken.registration_id == registration.id,
            LoginToken.purpose == LoginPurpose.CONFIRM_REGISTRATION,
        )
        .order_by(LoginToken.id.desc())
        .limit(1)
    )


def _end_confirmation_links(registration: Registration, now: datetime) -> None:
    db.session.execute(
        update(LoginToken)
        .where(
            LoginToken.registration_id == registration.id,
            LoginToken.purpose == LoginPurpose.CONFIRM_REGISTRATION,
            LoginToken.used_at.is_(None),
            LoginToken.expires_at > now,
        )
        .values(expires_at=now)
    )


def send_reminders(now: datetime | None = None) -> int:
    """One reminder for registrations still unconfirmed after the reminder delay."""
    now = now or utcnow()
    due = now - timedelta(hours=current_app.config["CONFIRMATION_REMINDER_AFTER_HOURS"])
    pending = db.session.scalars(
        select(Registration)
        .where(
            Registration.status == RegistrationStatus.PENDING_CONFIRMATION,
            Registration.reminder_sent_at.is_(None),
            Registration.created_at <= due,
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for registration in pending:
        registration.reminder_sent_at = now
        token = _confirmation_token(registration)
        if token is None:
            continue
        # The link in the reminder works for the day of grace the reminder gives.
        token.expires_at = max(token.expires_at, now + REMINDER_GRACE)
        jobs.enqueue(
            "registrations.send_reminder",
            f"registration-reminder:{token.id}",
            registration_id=registration.id,
            token_id=token.id,
        )
    db.session.commit()
    return len(pending)


def expire_unconfirmed(now: datetime | None = None) -> int:
    """Registrations never confirmed within the confirmation period lapse."""
    now = now or utcnow()
    cutoff = now - timedelta(hours=current_app.config["CONFIRMATION_EXPIRES_AFTER_HOURS"])
    stale = db.session.scalars(
        select(Registration)
        .where(
            Registration.status == RegistrationStatus.PENDING_CONFIRMATION,
            Registration.created_at <= cutoff,
            # Everyone gets their one reminder, and a day to act on it, before the end.
            Registration.reminder_sent_at <= now - REMINDER_GRACE,
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for registration in stale:
        _record(registration, RegistrationStatus.EXPIRED, actor=None, now=now)
        # A lapsed registration is not revived by its old link.
        _end_confirmation_links(registration, now)
    db.session.commit()
    return len(stale)


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
    # Imported here: orders and the withdrawal build on registrations.
    from coop.orders.models import OrderLine, QuoteStatus
    from coop.registrations import withdrawal

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
    for registration in registrations_of(user):
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
    # Imported here: participation builds on registrations (households, ownership, streets).
    from coop.participation import privacy as participation

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
    withdrawal (``coop.registrations.withdrawal``, with ``erasing``): order lines ended and the
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
    # Imported here: participation, orders, payments and the withdrawal build on registrations.
    from coop.orders import services as orders
    from coop.participation import privacy as participation
    from coop.payments import services as payments
    from coop.registrations import withdrawal

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


# Registrations whose measures are all in place.
INSTALLED = (RegistrationStatus.INSTALLED, RegistrationStatus.COMPLETED)


@dataclass(frozen=True)
class AreaFigures:
    """Registrations of an organisation's actions in some postcode areas, for public pages."""

    taking_part: int  # registrations that have not stepped out (withdrawn, declined, expired)
    installed_by_measure: dict[str, int]  # measure code -> homes where it is installed


def area_figures(organisation_id: int, pc4s: list[str]) -> AreaFigures:
    from coop.actions.models import ActionMeasure, Measure

    in_area = (
        select(Registration.id)
        .join(Household, Household.id == Registration.household_id)
        .join(Action, Action.id == Registration.action_id)
        .where(Action.organisation_id == organisation_id, Household.pc4.in_(pc4s))
    )
    stepped_out = (
        RegistrationStatus.WITHDRAWN,
        RegistrationStatus.DECLINED,
        RegistrationStatus.EXPIRED,
    )
    taking_part = db.session.scalar(
        select(func.count()).select_from(
            in_area.where(Registration.status.not_in(stepped_out)).subquery()
        )
    )
    from coop.orders.models import LineStatus, OrderLine

    # Per measure: a roof installed counts while the same household's heat pump is still
    # quoted. A measure without an order line (imported data) follows its registration.
    def line_where(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return (
            select(OrderLine.id)
            .where(
                OrderLine.registration_measure_id == RegistrationMeasure.id,
                OrderLine.current.is_(True),
                *conditions,
            )
            .exists()
        )

    installed = or_(
        line_where(OrderLine.status.in_((LineStatus.INSTALLED, LineStatus.COMPLETED))),
        and_(
            Registration.status.in_(INSTALLED),
            RegistrationMeasure.withdrawn_at.is_(None),
            ~line_where(),
        ),
    )
    rows = db.session.execute(
        select(Measure.code, func.count())
        .select_from(RegistrationMeasure)
        .join(ActionMeasure, ActionMeasure.id == RegistrationMeasure.action_measure_id)
        .join(Measure, Measure.id == ActionMeasure.measure_id)
        .join(Registration, Registration.id == RegistrationMeasure.registration_id)
        .where(Registration.id.in_(in_area), installed)
        .group_by(Measure.code)
    ).all()
    return AreaFigures(int(taking_part or 0), {code: int(n) for code, n in rows})
