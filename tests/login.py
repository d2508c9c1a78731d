"""Logging a test client in without the login pages (they are tested in tests/accounts).

A session holds more than the user's id: the account's session epoch and when the session
started and was last used (coop.accounts.sessions). Setting only ``_user_id`` is not a login.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from coop.accounts.models import User
from coop.extensions import db


def session_values(client: FlaskClient, user_id: int) -> dict[str, Any]:
    """What a session of ``user_id`` started now holds (as after logging in)."""
    from coop.accounts import sessions

    with client.application.app_context():
        user = db.session.get(User, user_id)
        assert user is not None, f"no user {user_id}"
        epoch = user.session_epoch
    now = int(sessions._clock())
    return {"_user_id": str(user_id), "_fresh": True, "_auth": {"e": epoch, "t": now, "s": now}}


def sign_in(client: FlaskClient, user_id: int | None, **extra: Any) -> None:
    """Log ``client`` in as ``user_id`` (None: log out), keeping the rest of its session."""
    values = session_values(client, user_id) if user_id is not None else {}
    with client.session_transaction() as session:
        for name in ("_user_id", "_fresh", "_auth"):
            session.pop(name, None)
        session.update(values)
        session.update(extra)
