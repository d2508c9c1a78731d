"""Two-factor login (TOTP) for staff and installers: optional, on once confirmed with a code,
each code used once."""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timedelta

from sqlalchemy import or_, update

from coop.accounts import sessions, throttle
from coop.accounts.models import User
from coop.accounts.services.login import (
    AccountError,
    TooManyAttemptsError,
    _audit_organisation,
    totp_enabled,
)
from coop.core import audit
from coop.core.time import utcnow
from coop.extensions import db

# --- two-factor login (TOTP) ------------------------------------------------------------------

TOTP_ISSUER = "coop"

# A code stays valid one 30-second step either side: clocks of phones drift.
TOTP_VALID_WINDOW = 1

# Between the right password and the right code, at most this long.
SECOND_STEP_TTL = timedelta(minutes=5)


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
