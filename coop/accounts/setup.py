"""Setting up a desk without the web: its organisation and first admin, for the ``coop``
commands a new deployment runs (``create-organisation``, ``create-staff --admin``).

Both check what they are given and say what is wrong in a sentence for the person at the
terminal (these commands are run by whoever deploys coop, in English like the rest of the
command line). Both are safe to run again: an organisation of the same name, or a staff account
of the same email at the same organisation, is reported and left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from coop.accounts import events
from coop.accounts.models import Organisation, OrganisationKind, Role, User
from coop.accounts.services import (
    MIN_PASSWORD_LENGTH,
    find_user_by_email,
    hash_password,
    normalise_email,
    password_problem,
)
from coop.core import audit
from coop.extensions import db

log = logging.getLogger(__name__)

# The column sizes of the tables, so that a long value is refused with a sentence.
NAME_MAX = 200
MUNICIPALITY_MAX = 100
PHONE_MAX = 30
PERSON_NAME_MAX = 120


class SetupError(Exception):
    """Input the command cannot use; the message says what to change."""


T = TypeVar("T")


@dataclass(frozen=True)
class Created(Generic[T]):
    """What a command made, or found already there (``created`` False): nothing changed then."""

    value: T
    created: bool


def _text(value: str, what: str, most: int) -> str:
    value = " ".join(value.split())
    if not value:
        raise SetupError(f"Give the {what}.")
    if len(value) > most:
        raise SetupError(f"The {what} is too long: use at most {most} characters.")
    return value


def _email(value: str, what: str = "email address") -> str:
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise SetupError(f"The {what} {value.strip()!r} is not valid: {error}") from error
    return normalise_email(checked.normalized)


def create_organisation(
    name: str,
    municipality: str,
    email: str,
    *,
    kind: OrganisationKind = OrganisationKind.MUNICIPALITY,
    phone: str | None = None,
) -> Created[Organisation]:
    """A new energy desk or cooperative; the one of the same name (in any case) when it exists."""
    name = _text(name, "organisation's name", NAME_MAX)
    existing = db.session.scalar(
        select(Organisation)
        .where(func.lower(Organisation.name) == name.lower())
        .order_by(Organisation.id)
        .limit(1)
    )
    if existing is not None:
        return Created(existing, created=False)
    organisation = Organisation(
        name=name,
        kind=kind,
        municipality=_text(municipality, "municipality", MUNICIPALITY_MAX),
        email=_email(email, "organisation's email address"),
        phone=_text(phone, "phone number", PHONE_MAX) if phone and phone.strip() else None,
    )
    db.session.add(organisation)
    db.session.flush()
    events.organisation_created.send(organisation)
    db.session.commit()
    log.info("organisation created id=%s from the command line", organisation.id)
    return Created(organisation, created=True)


_PASSWORD_PROBLEMS = {
    "password_too_short": f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
    "password_is_email": "Choose a password that is not the email address.",
    "password_common": (
        "This password is on lists of passwords that leaked or are used a lot (or is built on "
        "the name, email address or a common word), so it is tried first. Choose another."
    ),
    "password_guessable": (
        "This password is too easy to guess: avoid names, dates, words with a number and "
        "keyboard rows. A few unrelated words make a strong password."
    ),
}


def check_staff(email: str, name: str, organisation_id: int) -> User | None:
    """What ``create_staff`` checks before the password: the organisation exists, the email and
    name are usable and the address is free. Returns the account when it is already this
    organisation's staff (nothing to do); raises ``SetupError`` when the input cannot be used."""
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        raise SetupError(
            f"There is no organisation with id {organisation_id}. "
            "`coop create-organisation` makes one and prints its id."
        )
    address = _email(email)
    _text(name, "name", PERSON_NAME_MAX)
    existing = find_user_by_email(address)
    if existing is None:
        return None
    if existing.role is Role.STAFF and existing.organisation_id == organisation.id:
        return existing
    raise SetupError(f"The email address {address} is already used by another account.")


def create_staff(
    email: str,
    name: str,
    organisation_id: int,
    password: str,
    *,
    admin: bool = False,
) -> Created[User]:
    """A staff account of the organisation that logs in with ``password`` at once; a desk admin
    (team, audit log) with ``admin``. An existing staff account of the same email at the same
    organisation is returned unchanged (its password and rights stay as they are)."""
    existing = check_staff(email, name, organisation_id)
    if existing is not None:
        return Created(existing, created=False)
    address = _email(email)
    # The invitation form's check (length, the address itself, zxcvbn with the person's own
    # name and address), each refusal with its own reason.
    problem = password_problem(password, address, name)
    if problem is not None:
        raise SetupError(_PASSWORD_PROBLEMS.get(problem, "Choose another password."))
    user = User(
        email=address,
        name=_text(name, "name", PERSON_NAME_MAX),
        role=Role.STAFF,
        organisation_id=organisation_id,
        password_hash=hash_password(password),
        is_desk_admin=admin,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as error:  # the same address, created by someone else just now
        db.session.rollback()
        raise SetupError(
            f"The email address {address} is already used by another account."
        ) from error
    audit.record(
        None,
        organisation_id,
        "user.create",
        user,
        after={"email": user.email, "name": user.name, "is_desk_admin": admin},
    )
    db.session.commit()
    log.info("staff account created id=%s admin=%s from the command line", user.id, admin)
    return Created(user, created=True)
