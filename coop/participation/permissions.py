"""Who may see and manage meetings, campaigns, surveys, neighbourhood pages, ambassadors and
the neighbours an ambassador may contact (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import Role, User
from coop.accounts.permissions import staff_of
from coop.core import authz
from coop.participation.ambassadors import Neighbour, ambassadorships_of, covers
from coop.participation.models import (
    Ambassador,
    InterestCampaign,
    Meeting,
    NeighbourhoodProfile,
    Survey,
    SurveyStatus,
)


@authz.policy(Meeting)
@authz.policy(InterestCampaign)
def _public_with_desk_figures(
    user: User | None, obj: Meeting | InterestCampaign, action: str
) -> bool:
    # Meetings and interest campaigns are public; their lists and figures are the desk's.
    return action == "view" or (action == "manage" and staff_of(user, obj.organisation_id))


@authz.policy(Survey)
def _survey(user: User | None, obj: Survey, action: str) -> bool:
    if action == "view" and obj.status is not SurveyStatus.DRAFT:
        return True
    return action in {"view", "manage"} and staff_of(user, obj.organisation_id)


@authz.policy(NeighbourhoodProfile)
def _profile(user: User | None, obj: NeighbourhoodProfile, action: str) -> bool:
    organisation_id = obj.neighbourhood.organisation_id
    return action == "view" and (obj.is_public or staff_of(user, organisation_id))


@authz.policy(Ambassador)
def _ambassador(user: User | None, obj: Ambassador, action: str) -> bool:
    if action == "manage":
        return staff_of(user, obj.neighbourhood.organisation_id)
    return action == "view" and user is not None and user.id == obj.user_id


@authz.policy(Neighbour)
def _neighbour(user: User | None, obj: Neighbour, action: str) -> bool:
    # An ambassador: only the neighbours of their own street who opted in to contact.
    return (
        action in {"view", "contact"}
        and obj.opted_in
        and user is not None
        and user.role is Role.RESIDENT
        and any(covers(a, obj) for a in ambassadorships_of(user))
    )
