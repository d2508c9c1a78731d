"""One place that says who may do what with which object.

Views call ``require(user, obj, action)``; it aborts with 404 rather than 403 for someone else's
object, so guessing ids tells nothing about what exists.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from flask import abort
from flask_login import AnonymousUserMixin

from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionStatus
from coop.registrations.models import Registration

Actor: TypeAlias = User | AnonymousUserMixin | None


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.is_active else None


def authorize(actor: Actor, obj: Any, action: str) -> bool:
    user = _user(actor)
    if isinstance(obj, Action):
        if action == "view":
            if obj.status in (ActionStatus.OPEN, ActionStatus.CLOSED):
                return True
            return (
                user is not None
                and user.role is Role.STAFF
                and user.organisation_id == obj.organisation_id
            )
        if action == "manage":
            return (
                user is not None
                and user.role is Role.STAFF
                and user.organisation_id == obj.organisation_id
            )
        return False
    if isinstance(obj, Registration):
        if user is None:
            return False
        if user.role is Role.RESIDENT:
            return obj.user_id == user.id and action in {"view", "edit", "withdraw", "export"}
        if user.role is Role.STAFF:
            return obj.action.organisation_id == user.organisation_id and action in {
                "view",
                "manage",
            }
        return False
    if isinstance(obj, User):
        # A person's own account: export or erase their data.
        return user is not None and user.id == obj.id and action in {"view", "export", "erase"}
    return False


def require(actor: Actor, obj: Any, action: str) -> None:
    if obj is None or not authorize(actor, obj, action):
        abort(404)
