"""Who may see, pay and manage a deposit (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import Role, User
from coop.accounts.permissions import staff_of
from coop.core import authz
from coop.payments.models import Payment


@authz.policy(Payment)
def _payment(user: User | None, obj: Payment, action: str) -> bool:
    if user is None:
        return False
    if user.role is Role.RESIDENT:
        # A resident's own deposit: see it and pay it (never someone else's).
        registration = obj.registration
        return (
            action in {"view", "pay"}
            and registration is not None
            and registration.user_id == user.id
        )
    return action in {"view", "manage"} and staff_of(user, obj.action.organisation_id)
