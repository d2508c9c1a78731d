"""Who may see an invitation to a tender round and bid on it (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import User
from coop.accounts.permissions import installer_user_of, staff_of
from coop.core import authz
from coop.core.time import utcnow
from coop.tenders.models import TenderInvitation


@authz.policy(TenderInvitation)
def _invitation(user: User | None, obj: TenderInvitation, action: str) -> bool:
    if installer_user_of(user, obj.installer_id):
        return action in {"view", "bid"}
    # Staff compare the bids on their own page, and only once the round is no longer
    # sealed; an invitation itself shows a bid, so before the deadline it is the bidder's.
    return (
        action == "view"
        and staff_of(user, obj.round.action.organisation_id)
        and not obj.round.sealed(utcnow())
    )
