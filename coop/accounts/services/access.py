"""The account's own password, logging out everywhere, and switching an account's access off
or on (desk admins, audited)."""

from __future__ import annotations

import hmac
import logging

from coop.accounts import sessions, throttle
from coop.accounts.models import User
from coop.accounts.services.invitations import password_problem
from coop.accounts.services.login import (
    AccountError,
    TooManyAttemptsError,
    _audit_organisation,
    _password_matches,
    hash_password,
)
from coop.core import audit, authz
from coop.extensions import db

log = logging.getLogger(__name__)


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
