"""The life of a login: how it starts, how long it lasts and how it ends.

Sessions are signed cookies. Signing stops forgery but not a copy: a cookie taken from a browser
(a shared computer, a proxy's log) would open the account for as long as it is kept. So every
session carries three things besides the user id, checked on each request:

- the account's *epoch* when the session started. Logging out, a new password, two-factor login
  switched on or off and an admin deactivating the account raise the epoch in the database, and
  every session started before (a copied cookie too) no longer loads its user;
- when it started: after ``SESSION_LIFETIME_HOURS`` (residents: ``RESIDENT_SESSION_...``) the
  person logs in again, however active;
- when it was last used: after ``SESSION_IDLE_MINUTES`` without a request it has ended.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, flash, session
from flask_babel import gettext
from flask_login import login_user, logout_user

from coop.accounts.models import Role, User
from coop.extensions import db

_AUTH = "_auth"
# The last-used time is written back at most this often: not a new cookie on every request.
_TOUCH_EVERY = 60
# What a session keeps across logging in and out: the language chosen by the person.
_KEPT = ("lang",)


def _clock() -> float:
    """Now, in seconds: a seam so that tests can let time pass."""
    return time.time()


def _limits(user: User) -> tuple[int, int]:
    """(idle, lifetime) in seconds for the user's kind of account."""
    config = current_app.config
    if user.role is Role.RESIDENT:
        return (
            int(config["RESIDENT_SESSION_IDLE_MINUTES"]) * 60,
            int(config["RESIDENT_SESSION_LIFETIME_HOURS"]) * 3600,
        )
    return int(config["SESSION_IDLE_MINUTES"]) * 60, int(config["SESSION_LIFETIME_HOURS"]) * 3600


def _clear() -> None:
    """An empty session but for the person's language."""
    kept = {name: session[name] for name in _KEPT if name in session}
    session.clear()
    session.update(kept)


def stamp(user: User) -> None:
    """Mark this browser's session as one of ``user``'s current epoch, starting now."""
    now = int(_clock())
    session[_AUTH] = {"e": user.session_epoch, "t": now, "s": now}


def start(user: User) -> bool:
    """Log ``user`` in on this browser with a new session: nothing of what the session held
    before the login (a pending code step, a form's state) carries over."""
    _clear()
    if not login_user(user):
        return False
    stamp(user)
    return True


def end_everywhere(user: User) -> None:
    """End every session of ``user`` (the caller commits). A session to keep, such as the one of
    the person who just changed their own password, is stamped again after the commit."""
    user.session_epoch = (user.session_epoch or 0) + 1


def end_here() -> None:
    """Log out on this browser (the epoch is the caller's business)."""
    logout_user()
    _clear()


def _problem(user: User, auth: Any, now: float) -> str | None:
    """Why the session of ``user`` no longer counts, or None."""
    if not isinstance(auth, dict):
        return "ended"
    epoch, started, seen = auth.get("e"), auth.get("t"), auth.get("s")
    if not (isinstance(epoch, int) and isinstance(started, int) and isinstance(seen, int)):
        return "ended"
    if epoch != user.session_epoch:
        return "ended"
    idle, lifetime = _limits(user)
    if now - started > lifetime:
        return "expired"
    if now - seen > idle:
        return "idle"
    return None


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the session's user, if the session still counts."""
    if not user_id.isdigit() or len(user_id) > 12:
        return None
    user = db.session.get(User, int(user_id))
    now = _clock()
    problem = (
        "ended" if user is None or not user.is_active else _problem(user, session.get(_AUTH), now)
    )
    if problem is not None:
        _clear()
        if problem == "idle":
            flash(gettext("You were logged out after a while without activity. Log in again."))
        elif problem == "expired":
            flash(gettext("For your safety a login lasts a limited time. Log in again."))
        return None
    assert user is not None
    auth = session[_AUTH]
    if now - auth["s"] >= _TOUCH_EVERY:
        session[_AUTH] = {**auth, "s": int(now)}
    return user
