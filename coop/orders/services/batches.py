"""Demand: the homes of an action without an installer, grouped in batches per measure and
postcode area when registration closes (``actions.events.registration_closed``); the open demand
tender rounds show installers (``tenders.demand``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from coop.actions import events as action_events
from coop.actions.models import Action
from coop.core import jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import (
    Batch,
    OrderLine,
)
from coop.orders.services.rules import MATCHABLE
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
)
from coop.tenders import demand as tender_demand
from coop.tenders.demand import DemandGroup

# --- demand: batches and the homes without an installer ---------------------------------------


@dataclass(frozen=True)
class Home:
    """A household's wish for one measure, as matching and approval see it."""

    registration_measure_id: int
    registration_id: int
    action_measure_id: int
    pc4: str
    quantity: int
    street: str
    house_number: int
    addition: str


def unassigned_homes(action_id: int, *, pc4s: Collection[str] | None = None) -> list[Home]:
    """Every matchable household measure of the action without a current order line, in street
    order (so that a batch split over installers keeps neighbours together); only those in
    ``pc4s`` when given."""
    current_line = (
        select(OrderLine.id)
        .where(
            OrderLine.registration_measure_id == RegistrationMeasure.id,
            OrderLine.current.is_(True),
        )
        .exists()
    )
    rows = db.session.execute(
        select(
            RegistrationMeasure.id,
            Registration.id,
            RegistrationMeasure.action_measure_id,
            Household.pc4,
            RegistrationMeasure.quantity,
            Household.street,
            Household.house_number,
            Household.house_number_addition,
        )
        .join(Registration, Registration.id == RegistrationMeasure.registration_id)
        .join(Household, Household.id == Registration.household_id)
        .where(
            Registration.action_id == action_id,
            Registration.status.in_(MATCHABLE),
            RegistrationMeasure.withdrawn_at.is_(None),
            ~current_line,
            *([Household.pc4.in_(sorted(pc4s))] if pc4s is not None else []),
        )
        .order_by(
            Household.pc4,
            Household.street,
            Household.house_number,
            Household.house_number_addition,
            RegistrationMeasure.id,
        )
    ).all()
    return [Home(*row) for row in rows]


def ensure_batches(action: Action, homes: Iterable[Home]) -> dict[tuple[int, str], Batch]:
    """The batch of every (measure, PC4) among ``homes``, created where missing. Safe to run
    again and concurrently (the unique key decides; the loser reads the winner's row)."""
    existing = {
        (b.action_measure_id, b.pc4): b
        for b in db.session.scalars(select(Batch).where(Batch.action_id == action.id))
    }
    missing = sorted({(h.action_measure_id, h.pc4) for h in homes} - set(existing))
    if missing:
        try:
            with db.session.begin_nested():
                for action_measure_id, pc4 in missing:
                    batch = Batch(action_id=action.id, action_measure_id=action_measure_id, pc4=pc4)
                    db.session.add(batch)
                    existing[action_measure_id, pc4] = batch
        except IntegrityError:
            return ensure_batches(action, homes)
    return existing


def prepare_batches(action_id: int) -> int:
    """When registration closes: the groups of homes, so that staff and bidding installers see
    the demand per measure and area before any matching. Returns how many batches there are."""
    action = db.session.get(Action, action_id)
    if action is None:
        return 0
    batches = ensure_batches(action, unassigned_homes(action.id))
    db.session.commit()
    return len(batches)


@tender_demand.open_demand.provide
def demand(action: Action) -> list[DemandGroup]:
    """The demand without an installer, per measure and postcode area (for bids and pages)."""
    by_measure = {m.id: m for m in action.measures}
    count: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for home in unassigned_homes(action.id):
        entry = count[home.action_measure_id, home.pc4]
        entry[0] += 1
        entry[1] += home.quantity
    return [
        DemandGroup(by_measure[measure_id], pc4, homes, quantity)
        for (measure_id, pc4), (homes, quantity) in sorted(
            count.items(), key=lambda kv: (by_measure[kv[0][0]].position, kv[0][1])
        )
    ]


@action_events.registration_closed.connect
def registration_closed(action: Action) -> None:
    """Called in the transaction that closes registration: group the demand in a job."""
    jobs.enqueue(
        "orders.prepare_batches",
        f"prepare-batches:{action.id}:{(action.closed_at or utcnow()).isoformat()}",
        action_id=action.id,
    )


def batches_of(action: Action) -> list[Batch]:
    return list(
        db.session.scalars(
            select(Batch).where(Batch.action_id == action.id).order_by(Batch.pc4, Batch.id)
        )
    )
