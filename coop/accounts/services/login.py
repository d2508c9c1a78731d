"""Logging in: residents by a single-use link sent by email (asked for at most a few times an
hour per address), staff and installers by password (slowed down after failures); finding and
creating a resident's account."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import delete, select

from coop.accounts import throttle
from coop.accounts.models import LoginLinkRequest, LoginPurpose, LoginToken, Role, User
from coop.core import jobs, tokens
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
        # Written with the caller's next flush (a sign-up's, with the household and the
        # registration that name the resident), not in a flush of its own.
        db.session.add(user)
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


def _audit_organisation(user: User) -> int | None:
    """The organisation whose audit log records changes to ``user``'s account."""
    if user.organisation_id is not None:
        return user.organisation_id
    if user.installer is not None:
        return int(user.installer.organisation_id)
    return None


def totp_enabled(user: User) -> bool:
    return bool(user.totp_secret and user.totp_confirmed_at)


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
