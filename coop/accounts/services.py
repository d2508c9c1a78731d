"""Accounts: residents found or created by email, single-use login links, staff passwords."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from coop.accounts import sessions, throttle
from coop.accounts.models import LoginLinkRequest, LoginPurpose, LoginToken, Role, User
from coop.core import audit, authz, jobs, tokens
from coop.core.errors import DomainError
from coop.core.hooks import Hook
from coop.core.time import utcnow
from coop.extensions import db

if TYPE_CHECKING:
    from argon2 import PasswordHasher

log = logging.getLogger(__name__)


@functools.cache
def _hasher() -> PasswordHasher:
    """Argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1). Made (and argon2
    imported) at the first password: a sign-up never hashes one, and each web worker is
    smaller without it."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown costs the same time as a real check."""
    return _hasher().hash("not-a-real-password")


class AccountError(DomainError):
    """A rule stopped the operation; ``code`` says which, the view turns it into a message."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    if "\x00" in email:  # no address holds NUL, and PostgreSQL refuses it in a query
        return None
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def get_or_create_resident(email: str, name: str, phone: str | None, language: str) -> User:
    """The resident with this email, created if new; name and phone are updated to the latest."""
    user = find_user_by_email(email)
    if user is None:
        user = User(
            email=normalise_email(email),
            name=name,
            phone=phone,
            role=Role.RESIDENT,
            language=language,
        )
        db.session.add(user)
        db.session.flush()
        return user
    if user.role is not Role.RESIDENT:
        raise AccountError("email_not_resident")
    user.name = name
    user.phone = phone or user.phone
    return user


def issue_login_token(
    user: User,
    purpose: LoginPurpose,
    *,
    valid_for: timedelta | None = None,
    registration_id: int | None = None,
    next_path: str | None = None,
    now: datetime | None = None,
) -> LoginToken:
    now = now or utcnow()
    ttl = valid_for or timedelta(minutes=current_app.config["MAGIC_LINK_TTL_MINUTES"])
    token = LoginToken(
        user_id=user.id,
        purpose=purpose,
        nonce=secrets.token_urlsafe(16),
        registration_id=registration_id,
        next_path=next_path,
        created_at=now,
        expires_at=now + ttl,
    )
    db.session.add(token)
    db.session.flush()
    return token


def login_link(token: LoginToken) -> str:
    signed = tokens.sign("login", {"id": token.id, "n": token.nonce})
    return f"{current_app.config['BASE_URL']}/login/{signed}"


class LinkProblem(StrEnum):
    INVALID = "invalid"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class RedeemedLink:
    user: User
    token: LoginToken


# A confirmation link used: registrations confirm the registration (its id) and say whether it
# was confirmed now and which page to show (``coop.registrations.services`` provides it); None
# when the registration no longer exists.
registration_confirmed: Hook[Callable[[int], tuple[bool, str] | None]] = Hook(
    "registration_confirmed", lambda registration_id: None
)


def _login_token(signed: str, now: datetime, *, lock: bool) -> LoginToken | LinkProblem:
    """The token behind a login link if the link still works: signed by us, not used, not
    expired, of an active account."""
    payload = tokens.unsign("login", signed)
    if payload is None or not isinstance(payload.get("id"), int):
        return LinkProblem.INVALID
    query = select(LoginToken).where(LoginToken.id == payload["id"])
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


def check_login_link(signed: str, now: datetime | None = None) -> LoginToken | LinkProblem:
    """Whether a login or confirmation link still works, without using it: the page that
    opens from the email says at once when it does not (mail scanners fetch links too, so only
    the button's POST may use it)."""
    return _login_token(signed, now or utcnow(), lock=False)


def redeem_login_link(signed: str, now: datetime | None = None) -> RedeemedLink | LinkProblem:
    """Use a login link once. The caller commits (together with what the link confirms)."""
    now = now or utcnow()
    token = _login_token(signed, now, lock=True)
    if isinstance(token, LinkProblem):
        return token
    token.used_at = now
    token.user.last_login_at = now
    return RedeemedLink(user=token.user, token=token)


def request_login_link(email: str, language: str, next_path: str | None = None) -> None:
    """Email a login link if a resident has this address. Says nothing either way to the caller,
    so the form cannot be used to find out who is registered: not by its answer, and not by its
    time either. The same work is done for every address (a request row and its job, in one
    commit); the job finds out whether a resident has the address."""
    request = LoginLinkRequest(
        email=normalise_email(email)[:254],
        language=language[:5],
        next_path=next_path[:300] if next_path else None,
    )
    db.session.add(request)
    db.session.flush()
    # A random key: the request's row is deleted by its job, and SQLite reuses row ids.
    jobs.enqueue(
        "accounts.deliver_login_link",
        f"login-request:{secrets.token_hex(12)}",
        request_id=request.id,
    )
    db.session.commit()


def deliver_login_link(request_id: int) -> None:
    """The job behind the login form: a link (by its own job) if a resident has the address.
    The request row goes, so the address typed is not kept; the job's transaction commits."""
    request = db.session.get(LoginLinkRequest, request_id)
    if request is None:
        return
    email, language, next_path = request.email, request.language, request.next_path
    db.session.delete(request)
    user = find_user_by_email(email)
    if user is None or user.role is not Role.RESIDENT or not user.is_active:
        log.info("login link asked for an unknown address")
        return
    user.language = language
    token = issue_login_token(user, LoginPurpose.LOGIN, next_path=next_path)
    jobs.enqueue("accounts.send_login_link", f"login-link:{token.id}", token_id=token.id)


def forget_login_requests(now: datetime | None = None) -> int:
    """Requests whose job failed for good keep an address typed by someone: gone after a day."""
    cutoff = (now or utcnow()) - timedelta(days=1)
    gone = db.session.execute(
        delete(LoginLinkRequest).where(LoginLinkRequest.created_at < cutoff)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    return int(gone or 0)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's; the same time for an unknown or passwordless user."""
    from argon2.exceptions import InvalidHashError, VerificationError

    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and bool(user.password_hash)


class TooManyAttemptsError(AccountError):
    """Too many failed attempts on this account: the next one may come in ``wait`` seconds."""

    def __init__(self, wait: int) -> None:
        super().__init__("too_many_attempts")
        self.wait = wait


def authenticate(email: str, password: str) -> User | None:
    """Staff and installer login; the same time and answer for unknown emails and bad passwords.

    Raises ``TooManyAttemptsError`` while the account (the address typed) has to wait after
    many failed attempts; the password is then not checked at all."""
    address = normalise_email(email)
    wait = throttle.wait("password", address)
    if wait:
        raise TooManyAttemptsError(wait)
    user = find_user_by_email(address)
    if not _password_matches(user, password) or user is None or not user.is_active:
        throttle.failed("password", address)
        return None
    throttle.succeeded("password", address)
    assert user.password_hash is not None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    if not totp_enabled(user):  # with two-factor login, the login ends at the code step
        user.last_login_at = utcnow()
    db.session.commit()
    return user


# --- staff and installer accounts: invitations ------------------------------------------------

INVITE_TTL = timedelta(days=7)
MIN_PASSWORD_LENGTH = 12


class EmailInUseError(AccountError):
    """An account with this email address exists already (of whatever role)."""

    def __init__(self) -> None:
        super().__init__("email_in_use")


def _audit_organisation(user: User) -> int | None:
    """The organisation whose audit log records changes to ``user``'s account."""
    if user.organisation_id is not None:
        return user.organisation_id
    if user.installer is not None:
        return int(user.installer.organisation_id)
    return None


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


# --- two-factor login (TOTP) ------------------------------------------------------------------

TOTP_ISSUER = "coop"
# A code stays valid one 30-second step either side: clocks of phones drift.
TOTP_VALID_WINDOW = 1
# Between the right password and the right code, at most this long.
SECOND_STEP_TTL = timedelta(minutes=5)


def totp_enabled(user: User) -> bool:
    return bool(user.totp_secret and user.totp_confirmed_at)


def _clock() -> float:
    """Now, in seconds: a seam so that tests can move on to the next code's 30 seconds."""
    return time.time()


def _use_code(user: User, code: str) -> bool:
    """Whether ``code`` is the user's code of now (or of a step either side, for clocks a little
    apart) and its step has not been used before, which it then is.

    A code seen over a shoulder or kept in a proxy's log must not log in a second time. The step
    is claimed by one conditional UPDATE, so two requests with the same code at the same moment
    cannot both pass; the caller commits."""
    assert user.totp_secret is not None
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return False
    import pyotp  # here: only two-factor login needs it

    totp = pyotp.TOTP(user.totp_secret)
    now = totp.timecode(_clock())
    for step in range(now - TOTP_VALID_WINDOW, now + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            claimed = db.session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            user.totp_last_step = step
            return True
    return False


def begin_totp_setup(user: User) -> str:
    """A new secret for the authenticator app; two-factor login is on only once confirmed."""
    if totp_enabled(user):
        raise AccountError("totp_already_on")
    import pyotp

    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    db.session.commit()
    return user.totp_secret


def totp_uri(user: User) -> str:
    """The otpauth:// address an authenticator app reads (typed or pasted as text)."""
    if not user.totp_secret:
        raise AccountError("totp_not_started")
    import pyotp

    return str(
        pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    )


def confirm_totp(user: User, code: str, now: datetime | None = None) -> bool:
    """Switch two-factor login on when ``code`` proves the app has the secret."""
    if totp_enabled(user) or not user.totp_secret:
        raise AccountError("totp_not_started")
    if not check_code(user, code):
        return False
    user.totp_confirmed_at = now or utcnow()
    # A session that started without the second factor ends (the caller keeps its own).
    sessions.end_everywhere(user)
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(
            user, audit_org, "user.totp_on", user, before={"totp": False}, after={"totp": True}
        )
    db.session.commit()
    return True


def disable_totp(user: User, code: str) -> bool:
    """Switch two-factor login off; it takes a current code, so a borrowed session cannot."""
    if not totp_enabled(user):
        raise AccountError("totp_not_on")
    assert user.totp_secret is not None
    if not check_code(user, code):
        return False
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    sessions.end_everywhere(user)
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(
            user, audit_org, "user.totp_off", user, before={"totp": True}, after={"totp": False}
        )
    db.session.commit()
    return True


def check_code(user: User, code: str) -> bool:
    """Whether ``code`` is the user's current code (and claims it), with the per-account delay
    after many wrong codes. Raises ``TooManyAttemptsError`` during that delay."""
    subject = str(user.id)
    wait = throttle.wait("code", subject)
    if wait:
        raise TooManyAttemptsError(wait)
    if not _use_code(user, code):
        throttle.failed("code", subject)
        return False
    throttle.succeeded("code", subject)
    return True


def verify_second_factor(user_id: int, code: str) -> User | None:
    """The second login step: the user whose password was right, if ``code`` is right too."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or not totp_enabled(user):
        return None
    assert user.totp_secret is not None
    if not check_code(user, code):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


# --- the account's own password, and ending access --------------------------------------------


def change_password(user: User, current: str, new: str) -> None:
    """Staff and installers choose a new password, with their current one: a session left open
    on someone else's screen cannot take the account over. Every session of the account ends;
    the caller stamps its own again. Raises ``AccountError`` with the reason."""
    wait = throttle.wait("password", user.email)
    if wait:
        raise TooManyAttemptsError(wait)
    if not _password_matches(user, current):
        throttle.failed("password", user.email)
        raise AccountError("wrong_password")
    throttle.succeeded("password", user.email)
    if hmac.compare_digest(current.encode(), new.encode()):
        raise AccountError("password_unchanged")
    problem = password_problem(new, user.email, user.name)
    if problem is not None:
        raise AccountError(problem)
    user.password_hash = hash_password(new)
    sessions.end_everywhere(user)
    audit_org = _audit_organisation(user)
    if audit_org is not None:
        audit.record(user, audit_org, "user.password_change", user, after={"password_set": True})
    db.session.commit()
    log.info("user id=%s changed their password", user.id)


def may_deactivate(actor: User, user: User) -> bool:
    """Whether ``actor`` may switch ``user``'s access off or on (see ``core.authz``)."""
    return authz.authorize(actor, user, "deactivate")


def log_out(user: User) -> None:
    """End every session of ``user``: this browser's, another device's, a copied cookie."""
    sessions.end_everywhere(user)
    db.session.commit()


def set_active(actor: User, user: User, active: bool) -> bool:
    """Deactivate (or reactivate) a staff or installer account. Deactivating ends every session
    of the account at once and the person can no longer log in; the audit log records it.
    Returns whether anything changed."""
    if not may_deactivate(actor, user):
        raise AccountError("not_allowed")
    if user.is_active_account == active:
        return False
    user.is_active_account = active
    if not active:
        sessions.end_everywhere(user)
    audit_org = _audit_organisation(user)
    assert audit_org is not None
    audit.record(
        actor,
        audit_org,
        "user.reactivate" if active else "user.deactivate",
        user,
        before={"active": not active},
        after={"active": active},
    )
    db.session.commit()
    log.info(
        "user id=%s %s by user id=%s", user.id, "reactivated" if active else "deactivated", actor.id
    )
    return True


def installer_user(installer_id: int, user_id: int) -> User | None:
    return db.session.scalar(
        select(User).where(
            User.id == user_id, User.installer_id == installer_id, User.role == Role.INSTALLER
        )
    )


def account(user_id: int) -> User | None:
    """A staff or installer account by id (never a resident's)."""
    return db.session.scalar(
        select(User).where(User.id == user_id, User.role.in_((Role.STAFF, Role.INSTALLER)))
    )
