"""Accounts: residents found or created by email, single-use login links, staff passwords."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select

from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.core import jobs, tokens
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)

# Argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this when the email is unknown costs the same time as a real check.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AccountError(Exception):
    """A rule stopped the operation; ``code`` says which, the view turns it into a message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
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


def redeem_login_link(signed: str, now: datetime | None = None) -> RedeemedLink | LinkProblem:
    """Use a login link once. The caller commits (together with what the link confirms)."""
    now = now or utcnow()
    payload = tokens.unsign("login", signed)
    if payload is None or not isinstance(payload.get("id"), int):
        return LinkProblem.INVALID
    token = db.session.execute(
        select(LoginToken).where(LoginToken.id == payload["id"]).with_for_update()
    ).scalar_one_or_none()
    if token is None or not secrets.compare_digest(token.nonce, str(payload.get("n", ""))):
        return LinkProblem.INVALID
    if token.used_at is not None:
        return LinkProblem.USED
    if token.expires_at <= now:
        return LinkProblem.EXPIRED
    if not token.user.is_active:
        return LinkProblem.INVALID
    token.used_at = now
    token.user.last_login_at = now
    return RedeemedLink(user=token.user, token=token)


def request_login_link(email: str, language: str, next_path: str | None = None) -> None:
    """Email a login link if a resident has this address. Says nothing either way to the caller,
    so the form cannot be used to find out who is registered."""
    user = find_user_by_email(email)
    if user is None or user.role is not Role.RESIDENT or not user.is_active:
        log.info("login link asked for an unknown address")
        return
    user.language = language
    token = issue_login_token(user, LoginPurpose.LOGIN, next_path=next_path)
    jobs.enqueue("accounts.send_login_link", f"login-link:{token.id}", token_id=token.id)
    db.session.commit()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(email: str, password: str) -> User | None:
    """Staff and installer login; the same time and answer for unknown emails and bad passwords."""
    user = find_user_by_email(email)
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user
