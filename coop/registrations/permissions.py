"""Who may see, change and withdraw a registration (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import Role, User
from coop.accounts.permissions import staff_of
from coop.core import authz
from coop.registrations.models import Registration


@authz.policy(Registration)
def _registration(user: User | None, obj: Registration, action: str) -> bool:
    if user is None:
        return False
    if user.role is Role.RESIDENT:
        return obj.user_id == user.id and action in {"view", "edit", "withdraw", "export"}
    return action in {"view", "manage"} and staff_of(user, obj.action.organisation_id)
