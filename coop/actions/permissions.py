"""Who may see and manage actions and neighbourhoods (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import User
from coop.accounts.permissions import staff_of
from coop.actions.models import Action, ActionStatus, Neighbourhood
from coop.core import authz


@authz.policy(Action)
def _action(user: User | None, obj: Action, action: str) -> bool:
    if action == "view" and obj.status in (ActionStatus.OPEN, ActionStatus.CLOSED):
        return True
    return action in {"view", "manage"} and staff_of(user, obj.organisation_id)


@authz.policy(Neighbourhood)
def _neighbourhood(user: User | None, obj: Neighbourhood, action: str) -> bool:
    return action in {"view", "manage"} and staff_of(user, obj.organisation_id)
