"""What a resident can join now, gathered for the pages a resident starts from: the home page,
an action's page and their own page (``/my``).

Only what is open is offered: a neighbourhood page staff made public, meetings still to come
(not cancelled), surveys that are open and interest campaigns before their deadline. Becoming
an ambassador is offered to a resident with a registered home in a street they have not
volunteered for yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from coop.accounts.models import User
from coop.actions import page_hooks as action_pages
from coop.actions.models import Action, Neighbourhood
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.participation import ambassadors, interest, meetings, surveys
from coop.participation.models import (
    Ambassador,
    InterestCampaign,
    Meeting,
    NeighbourhoodProfile,
    Survey,
)
from coop.registrations.services import registrations_of


@dataclass(frozen=True)
class MeetingOffer:
    meeting: Meeting
    places_left: int


@dataclass
class NeighbourhoodOffer:
    """What is open in one neighbourhood (or, without one, across the organisation)."""

    neighbourhood: Neighbourhood | None
    has_page: bool = False
    meetings: list[MeetingOffer] = field(default_factory=list)
    surveys: list[Survey] = field(default_factory=list)
    campaigns: list[InterestCampaign] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.has_page or self.meetings or self.surveys or self.campaigns)


@dataclass
class ParticipationOffer:
    """Everything open for a page: per neighbourhood, and the ambassador's state if known."""

    neighbourhoods: list[NeighbourhoodOffer] = field(default_factory=list)
    # A resident: may volunteer for a street not volunteered for yet; their volunteering so far.
    can_volunteer: bool = False
    ambassadorships: list[Ambassador] = field(default_factory=list)
    # The place has neighbourhoods, so its registered residents can become ambassadors.
    ambassadors_possible: bool = False

    @property
    def anything(self) -> bool:
        return (
            any(n.anything for n in self.neighbourhoods)
            or self.can_volunteer
            or bool(self.ambassadorships)
        )

    def meeting_on(self, day: date) -> Meeting | None:
        """An open meeting on that (local) day: a milestone such as "information evening" on
        the action's timeline links to it."""
        for offer in self.neighbourhoods:
            for item in offer.meetings:
                if item.meeting.starts_at.astimezone(AMSTERDAM).date() == day:
                    return item.meeting
        return None


def _public_page_ids(neighbourhood_ids: list[int]) -> set[int]:
    if not neighbourhood_ids:
        return set()
    return set(
        db.session.scalars(
            select(NeighbourhoodProfile.neighbourhood_id).where(
                NeighbourhoodProfile.neighbourhood_id.in_(neighbourhood_ids),
                NeighbourhoodProfile.is_public.is_(True),
            )
        )
    )


def _meeting_offers(items: list[Meeting], now: datetime) -> list[MeetingOffer]:
    return [MeetingOffer(m, meetings.places_left(m)) for m in items if not meetings.is_over(m, now)]


def _organisation_meetings(organisation_id: int, now: datetime) -> list[Meeting]:
    """Meetings for the whole organisation, not tied to one neighbourhood."""
    return list(
        db.session.scalars(
            select(Meeting)
            .where(
                Meeting.organisation_id == organisation_id,
                Meeting.neighbourhood_id.is_(None),
                Meeting.ends_at > now,
                Meeting.cancelled_at.is_(None),
            )
            .order_by(Meeting.starts_at)
        )
    )


def for_neighbourhoods(
    neighbourhoods: list[Neighbourhood],
    organisation_ids: set[int] | None = None,
    now: datetime | None = None,
) -> list[NeighbourhoodOffer]:
    """What is open in these neighbourhoods, then (per organisation given) what is open for
    the whole organisation; empty entries left out."""
    now = now or utcnow()
    public = _public_page_ids([n.id for n in neighbourhoods])
    found: list[NeighbourhoodOffer] = []
    for neighbourhood in neighbourhoods:
        found.append(
            NeighbourhoodOffer(
                neighbourhood,
                has_page=neighbourhood.id in public,
                meetings=_meeting_offers(meetings.upcoming_meetings(neighbourhood.id, now), now),
                surveys=surveys.open_surveys(neighbourhood.id),
                campaigns=interest.open_campaigns(neighbourhood.id, now),
            )
        )
    for organisation_id in sorted(organisation_ids or ()):
        found.append(
            NeighbourhoodOffer(
                None, meetings=_meeting_offers(_organisation_meetings(organisation_id, now), now)
            )
        )
    return [offer for offer in found if offer.anything]


def neighbourhoods_of_action(action: Action) -> list[Neighbourhood]:
    """The action's own neighbourhoods; without any, those of its organisation that share a
    postcode area with it."""
    if action.neighbourhoods:
        return sorted(action.neighbourhoods, key=lambda n: n.name)
    areas = set(action.pc4_list)
    candidates = db.session.scalars(
        select(Neighbourhood)
        .where(Neighbourhood.organisation_id == action.organisation_id)
        .order_by(Neighbourhood.name)
    )
    return [n for n in candidates if areas & set(n.pc4_list)]


@action_pages.participation_around.provide
def for_action(
    action: Action, user: User | None = None, now: datetime | None = None
) -> ParticipationOffer:
    neighbourhoods = neighbourhoods_of_action(action)
    offer = ParticipationOffer(
        for_neighbourhoods(neighbourhoods, {action.organisation_id}, now),
        ambassadors_possible=bool(neighbourhoods),
    )
    if user is not None:
        _add_ambassador_state(offer, user, only_action=action)
    return offer


def for_resident(user: User, now: datetime | None = None) -> ParticipationOffer:
    """What is open around the homes this resident registered."""
    neighbourhoods: dict[int, Neighbourhood] = {}
    organisations: set[int] = set()
    for registration in registrations_of(user):
        organisations.add(registration.action.organisation_id)
        for neighbourhood in neighbourhoods_of_action(registration.action):
            if registration.household.pc4 in neighbourhood.pc4_list:
                neighbourhoods.setdefault(neighbourhood.id, neighbourhood)
    offer = ParticipationOffer(
        for_neighbourhoods(
            sorted(neighbourhoods.values(), key=lambda n: n.name), organisations, now
        )
    )
    _add_ambassador_state(offer, user)
    return offer


def for_postcode_area(pc4: str, now: datetime | None = None) -> list[NeighbourhoodOffer]:
    """The home page after a postcode search: what is open in the neighbourhoods of that area."""
    candidates = db.session.scalars(select(Neighbourhood).order_by(Neighbourhood.name))
    return for_neighbourhoods([n for n in candidates if pc4 in n.pc4_list], None, now)


def public_pages() -> list[NeighbourhoodOffer]:
    """Every neighbourhood with a public page, by name (the home page without a postcode)."""
    profiles = db.session.scalars(
        select(NeighbourhoodProfile).where(NeighbourhoodProfile.is_public.is_(True))
    )
    found = [NeighbourhoodOffer(p.neighbourhood, has_page=True) for p in profiles]
    return sorted(found, key=lambda o: o.neighbourhood.name if o.neighbourhood else "")


def _add_ambassador_state(
    offer: ParticipationOffer, user: User, only_action: Action | None = None
) -> None:
    if not getattr(user, "is_authenticated", False) or not user.is_resident:
        return
    choices = ambassadors.street_choices(user)
    mine = ambassadors.ambassadorships_of(user)
    taken = {(a.pc4, a.street) for a in mine}
    if only_action is not None:
        ids = {n.id for n in neighbourhoods_of_action(only_action)}
        choices = [c for c in choices if c.neighbourhood.id in ids]
        mine = [a for a in mine if a.neighbourhood_id in ids]
    offer.can_volunteer = any((c.pc4, c.street) not in taken for c in choices)
    offer.ambassadorships = mine


@action_pages.neighbourhood_offers.provide
def for_home_page(pc4: str | None) -> list[NeighbourhoodOffer]:
    """For a postcode: what is open in its neighbourhoods; without one: the public
    neighbourhood pages, so that a resident finds their neighbourhood from the home page."""
    return for_postcode_area(pc4) if pc4 else public_pages()
