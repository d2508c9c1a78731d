"""Neighbourhoods: the areas an organisation works in (postcode areas, household count), which
its actions and participation pages are for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from coop.accounts.models import User
from coop.actions.models import (
    Neighbourhood,
)
from coop.actions.services import ActionError
from coop.core import audit
from coop.extensions import db


@dataclass
class NeighbourhoodDetails:
    name: str
    municipality: str
    postcode_areas: list[str] = field(default_factory=list)
    household_count: int | None = None


# --- neighbourhoods ---------------------------------------------------------------------------


def get_neighbourhood(neighbourhood_id: int) -> Neighbourhood | None:
    return db.session.get(Neighbourhood, neighbourhood_id)


def neighbourhoods_of(organisation_id: int) -> list[Neighbourhood]:
    return list(
        db.session.scalars(
            select(Neighbourhood)
            .where(Neighbourhood.organisation_id == organisation_id)
            .order_by(Neighbourhood.name, Neighbourhood.id)
        )
    )


def _neighbourhood_snapshot(neighbourhood: Neighbourhood) -> dict[str, Any]:
    return audit.snapshot(
        neighbourhood, ["name", "municipality", "postcode_areas", "household_count"]
    )


def _apply_neighbourhood(neighbourhood: Neighbourhood, details: NeighbourhoodDetails) -> None:
    if details.household_count is not None and details.household_count < 0:
        raise ActionError("household_count_negative")
    neighbourhood.name = details.name
    neighbourhood.municipality = details.municipality
    neighbourhood.postcode_areas = ",".join(details.postcode_areas)
    neighbourhood.household_count = details.household_count


def create_neighbourhood(actor: User, details: NeighbourhoodDetails) -> Neighbourhood:
    assert actor.organisation_id is not None
    neighbourhood = Neighbourhood(organisation_id=actor.organisation_id)
    _apply_neighbourhood(neighbourhood, details)
    db.session.add(neighbourhood)
    db.session.flush()
    audit.record(
        actor,
        neighbourhood.organisation_id,
        "neighbourhood.create",
        neighbourhood,
        after=_neighbourhood_snapshot(neighbourhood),
    )
    db.session.commit()
    return neighbourhood


def update_neighbourhood(
    actor: User, neighbourhood: Neighbourhood, details: NeighbourhoodDetails
) -> None:
    before = _neighbourhood_snapshot(neighbourhood)
    _apply_neighbourhood(neighbourhood, details)
    old, new = audit.changed(before, _neighbourhood_snapshot(neighbourhood))
    if new:
        audit.record(
            actor,
            neighbourhood.organisation_id,
            "neighbourhood.update",
            neighbourhood,
            before=old,
            after=new,
        )
    db.session.commit()
