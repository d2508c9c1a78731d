"""Staff and installer accounts: an invitation by email, with a link to set a password that
meets the rules (long enough, not a leaked or common one); the desk's team."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services.login import (
    AccountError,
    LinkProblem,
    _audit_organisation,
    find_user_by_email,
    hash_password,
    issue_login_token,
    normalise_email,
)
from coop.core import audit, jobs, tokens
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


# --- staff and installer accounts: invitations ------------------------------------------------

INVITE_TTL = timedelta(days=7)

MIN_PASSWORD_LENGTH = 12


class EmailInUseError(AccountError):
    """An account with this email address exists already (of whatever role)."""

    def __init__(self) -> None:
        super().__init__("email_in_use")


def _account_snapshot(user: User) -> dict[str, object]:
    # Never the password hash or the TOTP secret: the audit log is read by people.
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role.value,
        "organisation_id": user.organisation_id,
        "installer_id": user.installer_id,
        "is_desk_admin": user.is_desk_admin,
    }


def invite_user(
    actor: User,
    email: str,
    name: str,
    role: Role,
    *,
    organisation_id: int | None = None,
    installer_id: int | None = None,
    is_desk_admin: bool = False,
) -> User:
    """Create a staff or installer account without a password and email a link to set one.

    Staff belong to ``organisation_id`` (default: the inviting staff member's); installer users
    to ``installer_id``. Commits; raises ``EmailInUseError`` when the address has an account.
    """
    if role not in (Role.STAFF, Role.INSTALLER):
        raise AccountError("role_not_invitable")
    if role is Role.STAFF:
        organisation_id = organisation_id or actor.organisation_id
        if organisation_id is None:
            raise AccountError("organisation_required")
        installer_id = None
    elif installer_id is None:
        raise AccountError("installer_required")
    else:
        organisation_id = None
    address = normalise_email(email)
    if find_user_by_email(address) is not None:
        raise EmailInUseError()
    user = User(
        email=address,
        name=name.strip(),
        role=role,
        language=actor.language or "nl",
        organisation_id=organisation_id,
        installer_id=installer_id,
        is_desk_admin=is_desk_admin and role is Role.STAFF,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:  # someone took the address between our check and insert
        db.session.rollback()
        raise EmailInUseError() from exc
    token = issue_login_token(user, LoginPurpose.INVITE, valid_for=INVITE_TTL)
    jobs.enqueue("accounts.send_invitation", f"invite:{token.id}", token_id=token.id)
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(actor, audit_org, "user.invite", user, after=_account_snapshot(user))
    db.session.commit()
    log.info("invited user id=%s role=%s by user id=%s", user.id, role.value, actor.id)
    return user


def resend_invitation(actor: User, user: User) -> LoginToken:
    """A fresh invitation for someone who has not set a password yet; older links stop working."""
    if user.password_hash:
        raise AccountError("already_active")
    now = utcnow()
    db.session.execute(
        update(LoginToken)
        .where(
            LoginToken.user_id == user.id,
            LoginToken.purpose == LoginPurpose.INVITE,
            LoginToken.used_at.is_(None),
            LoginToken.expires_at > now,
        )
        .values(expires_at=now)
    )
    token = issue_login_token(user, LoginPurpose.INVITE, valid_for=INVITE_TTL, now=now)
    jobs.enqueue("accounts.send_invitation", f"invite:{token.id}", token_id=token.id)
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(actor, audit_org, "user.reinvite", user, after={"email": user.email})
    db.session.commit()
    return token


def invitation_link(token: LoginToken) -> str:
    # Its own signing purpose: a login link cannot be passed off as an invitation, or back.
    signed = tokens.sign("invite", {"id": token.id, "n": token.nonce})
    return f"{current_app.config['BASE_URL']}/invite/{signed}"


def _invitation_token(signed: str, now: datetime, *, lock: bool) -> LoginToken | LinkProblem:
    payload = tokens.unsign("invite", signed)
    if payload is None or not isinstance(payload.get("id"), int):
        return LinkProblem.INVALID
    query = select(LoginToken).where(
        LoginToken.id == payload["id"], LoginToken.purpose == LoginPurpose.INVITE
    )
    if lock:
        query = query.with_for_update()
    token = db.session.execute(query).scalar_one_or_none()
    if token is None or not secrets.compare_digest(token.nonce, str(payload.get("n", ""))):
        return LinkProblem.INVALID
    if token.used_at is not None:
        return LinkProblem.USED
    if token.expires_at <= now:
        return LinkProblem.EXPIRED
    if not token.user.is_active:
        return LinkProblem.INVALID
    return token


def check_invitation(signed: str, now: datetime | None = None) -> LoginToken | LinkProblem:
    """Whether the invitation link still works, without using it (to show the form)."""
    return _invitation_token(signed, now or utcnow(), lock=False)


# zxcvbn's estimate of the guesses needed: 3 is "safely unguessable", about 10^8 guesses and
# more, which the per-account delay on failed logins puts far out of an attacker's reach.
MIN_PASSWORD_SCORE = 3

# zxcvbn looks at this much of a password (its own limit); the rest only makes it stronger.
_ZXCVBN_MAX = 72

# Words zxcvbn's (English) lists lack but that Dutch passwords are made of, and this service's
# own words: a password built on them is as easy to guess as one built on "password".
COMMON_DUTCH_WORDS = (
    "welkom",
    "wachtwoord",
    "geheim",
    "zomer",
    "winter",
    "lente",
    "herfst",
    "voorjaar",
    "najaar",
    "nederland",
    "holland",
    "amsterdam",
    "rotterdam",
    "utrecht",
    "denhaag",
    "eindhoven",
    "groningen",
    "ajax",
    "feyenoord",
    "psv",
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
    "hallo",
    "liefde",
    "schatje",
    "energie",
    "energieloket",
    "loket",
    "gemeente",
    "isolatie",
    "warmtepomp",
    "installateur",
    "coop",
)


def password_problem(password: str, email: str, name: str = "") -> str | None:
    """Why a new password is not good enough, as a code; None when it is fine.

    Besides length, zxcvbn estimates how many guesses it takes, with its lists of passwords
    that leaked or are used most, common words and names, keyboard patterns, dates and
    sequences, plus the person's own email address and name and common Dutch words."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password_too_short"
    if password.strip().lower() == normalise_email(email):
        return "password_is_email"
    # Imported here, where a password is set: its word lists take 12 MiB in every process.
    from zxcvbn import zxcvbn

    local, _, domain = normalise_email(email).partition("@")
    own_words = [email, local, domain.split(".")[0], *name.lower().split()]
    estimate = zxcvbn(
        password[:_ZXCVBN_MAX],
        user_inputs=[*COMMON_DUTCH_WORDS, *(word for word in own_words if word)],
    )
    if estimate["score"] >= MIN_PASSWORD_SCORE:
        return None
    listed = {"passwords", "user_inputs"}
    if any(match.get("dictionary_name") in listed for match in estimate["sequence"]):
        return "password_common"
    return "password_guessable"


def accept_invitation(
    signed: str, password: str, now: datetime | None = None
) -> User | LinkProblem:
    """Set the invited user's password and use the link up; the caller logs the user in."""
    now = now or utcnow()
    token = _invitation_token(signed, now, lock=True)
    if isinstance(token, LinkProblem):
        db.session.rollback()
        return token
    user = token.user
    problem = password_problem(password, user.email, user.name)
    if problem is not None:
        db.session.rollback()
        raise AccountError(problem)
    token.used_at = now
    user.password_hash = hash_password(password)
    user.last_login_at = now
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(user, audit_org, "user.password_set", user, after={"password_set": True})
    db.session.commit()
    return user


def team_of(organisation_id: int) -> list[User]:
    """The staff of an organisation, for the team page."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.organisation_id == organisation_id, User.role == Role.STAFF)
            .order_by(User.name, User.id)
        )
    )


def staff_member(organisation_id: int, user_id: int) -> User | None:
    return db.session.scalar(
        select(User).where(
            User.id == user_id, User.organisation_id == organisation_id, User.role == Role.STAFF
        )
    )
