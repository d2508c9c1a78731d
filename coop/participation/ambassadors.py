"""Neighbour ambassadors: a resident volunteers for their own street, the desk agrees, and the
ambassador then sees the neighbours in that street who said an ambassador may contact them
(on an interest pledge or a survey response), and logs the conversations. Staff see per street
whether it has an ambassador, how many opted in and how many were reached.

An ambassador sees no one else: not the neighbours who did not opt in, not other streets.
``authorize(user, neighbour, "contact")`` in core.authz says the same for every single row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import Role, User
from coop.actions.models import Neighbourhood
from coop.core import audit, jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation.models import (
    Ambassador,
    AmbassadorContact,
    AmbassadorStatus,
    InterestCampaign,
    InterestPledge,
    Survey,
    SurveyResponse,
)
from coop.participation.services import ParticipationError, street_key
from coop.registrations.services import registrations_of


@dataclass(frozen=True)
class StreetChoice:
    """A street a resident may volunteer for: where one of their registered homes is."""

    street: str
    pc4: str
    neighbourhood: Neighbourhood

    @property
    def value(self) -> str:
        return f"{self.neighbourhood.id}:{self.pc4}:{self.street}"


def street_choices(user: User) -> list[StreetChoice]:
    # Through the registrations domain's own service: the homes this resident registered.
    choices: dict[str, StreetChoice] = {}
    for registration in registrations_of(user):
        household = registration.household
        candidates = list(registration.action.neighbourhoods) or list(
            db.session.scalars(
                select(Neighbourhood).where(
                    Neighbourhood.organisation_id == registration.action.organisation_id
                )
            )
        )
        for neighbourhood in candidates:
            if household.pc4 in neighbourhood.pc4_list:
                choice = StreetChoice(household.street, household.pc4, neighbourhood)
                choices.setdefault(choice.value, choice)
                break
    return sorted(choices.values(), key=lambda c: (c.street, c.pc4))


def ambassadorships_of(user: User) -> list[Ambassador]:
    return list(
        db.session.scalars(
            select(Ambassador).where(Ambassador.user_id == user.id).order_by(Ambassador.id)
        )
    )


def get_ambassador(ambassador_id: int) -> Ambassador | None:
    return db.session.get(Ambassador, ambassador_id)


def volunteer(user: User, choice: StreetChoice, motivation: str) -> Ambassador:
    if user.role is not Role.RESIDENT:
        raise ParticipationError("not_a_resident")
    if choice.value not in {c.value for c in street_choices(user)}:
        raise ParticipationError("not_your_street")
    existing = _volunteered_for(user, choice)
    if existing is not None:
        raise ParticipationError("already_volunteered", ambassador=existing)
    ambassador = Ambassador(
        user_id=user.id,
        neighbourhood_id=choice.neighbourhood.id,
        street=choice.street,
        pc4=choice.pc4,
        motivation=motivation,
    )
    db.session.add(ambassador)
    try:
        db.session.flush()
    except IntegrityError:
        # The same form sent twice at once: the other request stored it first.
        db.session.rollback()
        existing = _volunteered_for(user, choice)
        raise ParticipationError("already_volunteered", ambassador=existing) from None
    # The confirmation goes with the row, under its own key: sent once, whatever happens next.
    jobs.enqueue(
        "participation.send_ambassador_volunteered",
        f"ambassador-volunteered:{ambassador.id}",
        ambassador_id=ambassador.id,
    )
    db.session.commit()
    return ambassador


def _volunteered_for(user: User, choice: StreetChoice) -> Ambassador | None:
    found: Ambassador | None = db.session.scalar(
        select(Ambassador).where(
            Ambassador.user_id == user.id,
            Ambassador.pc4 == choice.pc4,
            Ambassador.street == choice.street,
        )
    )
    return found


def open_street_choices(user: User) -> list[StreetChoice]:
    """The streets this resident may still volunteer for: not those volunteered for already."""
    taken = {(a.pc4, a.street) for a in ambassadorships_of(user)}
    return [c for c in street_choices(user) if (c.pc4, c.street) not in taken]


def approve(actor: User, ambassador: Ambassador, now: datetime | None = None) -> None:
    if ambassador.status is not AmbassadorStatus.VOLUNTEERED:
        raise ParticipationError("not_volunteered")
    ambassador.status = AmbassadorStatus.ACTIVE
    ambassador.approved_at = now or utcnow()
    ambassador.approved_by_id = actor.id
    audit.record(
        actor,
        ambassador.neighbourhood.organisation_id,
        "ambassador.approve",
        ambassador,
        after={"street": ambassador.street, "pc4": ambassador.pc4},
    )
    db.session.commit()


@dataclass(frozen=True)
class Neighbour:
    """A household in a street that said an ambassador may contact it."""

    ref: str  # "pledge:12" or "response:7": what the contact form posts
    organisation_id: int
    name: str
    email: str
    street: str
    pc4: str
    postcode: str
    house_number: int
    house_number_addition: str
    opted_in: bool

    @property
    def address_key(self) -> tuple[str, int, str]:
        return (self.postcode, self.house_number, self.house_number_addition)

    @property
    def address(self) -> str:
        addition = self.house_number_addition
        return f"{self.street} {self.house_number}{'-' + addition if addition else ''}, {self.postcode}"


def _street_households(organisation_id: int, pc4: str, street: str | None) -> list[Neighbour]:
    """Every household in the PC4 (one street, or all) known from pledges and responses of the
    organisation's campaigns and surveys, newest first, whether or not it opted in."""
    found: list[Neighbour] = []
    pledges = db.session.execute(
        select(InterestPledge)
        .join(InterestCampaign, InterestCampaign.id == InterestPledge.campaign_id)
        .where(
            InterestCampaign.organisation_id == organisation_id,
            InterestPledge.pc4 == pc4,
            InterestPledge.withdrawn_at.is_(None),
        )
        .order_by(InterestPledge.created_at.desc())
    ).scalars()
    for p in pledges:
        found.append(
            Neighbour(
                f"pledge:{p.id}",
                organisation_id,
                p.name,
                p.email,
                p.street,
                p.pc4,
                p.postcode,
                p.house_number,
                p.house_number_addition,
                p.contact_opt_in,
            )
        )
    responses = db.session.execute(
        select(SurveyResponse)
        .join(Survey, Survey.id == SurveyResponse.survey_id)
        .where(Survey.organisation_id == organisation_id, SurveyResponse.pc4 == pc4)
        .order_by(SurveyResponse.updated_at.desc())
    ).scalars()
    for r in responses:
        found.append(
            Neighbour(
                f"response:{r.id}",
                organisation_id,
                r.name,
                r.email,
                r.street,
                r.pc4,
                r.postcode,
                r.house_number,
                r.house_number_addition,
                r.contact_opt_in,
            )
        )
    if street is not None:
        key = street_key(street)
        found = [n for n in found if street_key(n.street) == key]
    return found


def covers(ambassador: Ambassador, neighbour: Neighbour) -> bool:
    return (
        ambassador.status is AmbassadorStatus.ACTIVE
        and ambassador.neighbourhood.organisation_id == neighbour.organisation_id
        and ambassador.pc4 == neighbour.pc4
        and street_key(ambassador.street) == street_key(neighbour.street)
    )


def neighbours_for(ambassador: Ambassador) -> list[Neighbour]:
    """The opted-in neighbours of an active ambassador's street, one per household (a
    household that opted out on its newest answer is left out)."""
    if ambassador.status is not AmbassadorStatus.ACTIVE:
        return []
    newest: dict[tuple[str, int, str], Neighbour] = {}
    for neighbour in _street_households(
        ambassador.neighbourhood.organisation_id, ambassador.pc4, ambassador.street
    ):
        newest.setdefault(neighbour.address_key, neighbour)
    return sorted(
        (n for n in newest.values() if n.opted_in),
        key=lambda n: (n.house_number, n.house_number_addition),
    )


def find_neighbour(ambassador: Ambassador, ref: str) -> Neighbour | None:
    return next((n for n in neighbours_for(ambassador) if n.ref == ref), None)


def log_contact(
    ambassador: Ambassador, ref: str, contacted_on: date, note: str
) -> AmbassadorContact:
    neighbour = find_neighbour(ambassador, ref)
    if neighbour is None:
        raise ParticipationError("not_your_neighbour")
    if contacted_on > utcnow().date():
        raise ParticipationError("contact_in_future")
    contact = AmbassadorContact(
        ambassador_id=ambassador.id,
        postcode=neighbour.postcode,
        house_number=neighbour.house_number,
        house_number_addition=neighbour.house_number_addition,
        contacted_on=contacted_on,
        note=note,
    )
    db.session.add(contact)
    db.session.commit()
    return contact


def contacts_of(ambassador: Ambassador) -> list[AmbassadorContact]:
    return list(
        db.session.scalars(
            select(AmbassadorContact)
            .where(AmbassadorContact.ambassador_id == ambassador.id)
            .order_by(AmbassadorContact.contacted_on.desc(), AmbassadorContact.id.desc())
        )
    )


@dataclass
class StreetCoverage:
    street: str
    pc4: str
    ambassadors: int = 0
    volunteered: int = 0
    households_known: int = 0
    opted_in: int = 0
    contacted: int = 0


def coverage(neighbourhood: Neighbourhood) -> list[StreetCoverage]:
    """Per street of the neighbourhood: ambassadors, households that opted in, and how many
    of those an ambassador has talked to."""
    streets: dict[tuple[str, str], StreetCoverage] = {}

    def row(pc4: str, street: str) -> StreetCoverage:
        key = (pc4, street_key(street))
        if key not in streets:
            streets[key] = StreetCoverage(street, pc4)
        return streets[key]

    for pc4 in neighbourhood.pc4_list:
        newest: dict[tuple[str, int, str], Neighbour] = {}
        for n in _street_households(neighbourhood.organisation_id, pc4, None):
            newest.setdefault(n.address_key, n)
        for n in newest.values():
            item = row(n.pc4, n.street)
            item.households_known += 1
            item.opted_in += int(n.opted_in)
    ambassadors = db.session.scalars(
        select(Ambassador).where(Ambassador.neighbourhood_id == neighbourhood.id)
    ).all()
    contacted: dict[tuple[str, str], set[tuple[str, int, str]]] = defaultdict(set)
    for ambassador in ambassadors:
        item = row(ambassador.pc4, ambassador.street)
        if ambassador.status is AmbassadorStatus.ACTIVE:
            item.ambassadors += 1
        elif ambassador.status is AmbassadorStatus.VOLUNTEERED:
            item.volunteered += 1
        for contact in contacts_of(ambassador):
            contacted[(ambassador.pc4, street_key(ambassador.street))].add(
                (contact.postcode, contact.house_number, contact.house_number_addition)
            )
    for key, households in contacted.items():
        streets[key].contacted = len(households)
    return sorted(streets.values(), key=lambda s: (s.pc4, street_key(s.street)))


def ambassadors_in(neighbourhood: Neighbourhood) -> list[Ambassador]:
    return list(
        db.session.scalars(
            select(Ambassador)
            .where(Ambassador.neighbourhood_id == neighbourhood.id)
            .order_by(Ambassador.status, Ambassador.pc4, Ambassador.street)
        )
    )
