"""The rules of a registration: sign up, confirm, edit, withdraw, remind, expire, export, erase.

Every function that changes state records the status history and the follow-up jobs in the
same transaction and commits it; views only call these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import current_app, url_for
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop.accounts import services as accounts
from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services import AccountError, get_or_create_resident, issue_login_token
from coop.actions import participants
from coop.actions.models import Action, ActionMeasure
from coop.core import audit, jobs
from coop.core.errors import DomainError
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)

if TYPE_CHECKING:
    pass

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


class RegistrationError(DomainError):
    """A rule stopped the operation; ``code`` names it and the view shows the message;
    ``registration``: the one already there (registering an address twice)."""

    def __init__(self, code: str, registration: Registration | None = None) -> None:
        super().__init__(code)
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


@participants.by_measure.provide
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


@participants.count.provide
def participant_count(action: Action) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(Registration.action_id == action.id, Registration.status.in_(PARTICIPATING))
    )
    return int(count or 0)


# Registrations that no longer count: the resident stepped out or never confirmed.
_NOT_COUNTED = (RegistrationStatus.WITHDRAWN, RegistrationStatus.EXPIRED)


@participants.registrations_per_action.provide
def registration_counts(action_ids: list[int]) -> dict[int, int]:
    """Registrations that still count (not withdrawn or expired), per action."""
    rows = db.session.execute(
        select(Registration.action_id, func.count())
        .where(Registration.action_id.in_(action_ids), Registration.status.not_in(_NOT_COUNTED))
        .group_by(Registration.action_id)
    ).all()
    return {action_id: count for action_id, count in rows}


@participants.offer_chosen.provide
def offer_in_use(offer: ActionMeasure) -> bool:
    """Whether any registration (whatever its status) chose this measure."""
    return (
        db.session.scalar(
            select(RegistrationMeasure.id)
            .where(RegistrationMeasure.action_measure_id == offer.id)
            .limit(1)
        )
        is not None
    )


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
            new_key=True,  # the link was made just now
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


@accounts.registration_confirmed.provide
def confirm_by_link(registration_id: int) -> tuple[bool, str] | None:
    """A confirmation link was used (``coop.accounts``): confirm the registration; whether this
    confirmed it, and its page."""
    registration = get_registration(registration_id)
    if registration is None:
        return None
    confirmed = confirm(registration)
    return confirmed, url_for("registrations.detail", registration_id=registration.id)


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
