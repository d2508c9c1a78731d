"""Unsubscribing from the desk's updates, by the link (and one-click header) in each of them."""

from __future__ import annotations

import logging
from datetime import datetime

from coop.accounts.models import User
from coop.core import tokens
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


# --- unsubscribe -------------------------------------------------------------------------------


def user_for_unsubscribe(token: str) -> User | None:
    payload = tokens.unsign("unsubscribe", token)
    if payload is None or not isinstance(payload.get("u"), int):
        return None
    return db.session.get(User, payload["u"])


def unsubscribe(user: User, now: datetime | None = None) -> None:
    """No more updates from now on; the first moment is kept when the link is used again."""
    if user.unsubscribed_at is None:
        user.unsubscribed_at = now or utcnow()
        db.session.commit()
        log.info("user %s unsubscribed from updates", user.id)
