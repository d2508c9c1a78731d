"""Who can take the demand: the bids of the newest tender round, or the registry's prices when
staff say so; and the matching problem built from demand and candidates."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from coop import matching
from coop.actions.models import Action
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import (
    Batch,
    Order,
    OrderLine,
    OrderStatus,
)
from coop.orders.services.batches import Home
from coop.orders.services.rules import USING_CAPACITY
from coop.registrations.models import (
    RegistrationMeasure,
)
from coop.tenders import services as tenders
from coop.tenders.models import TenderRound

# --- who can take the demand: bids, or registry prices when staff say so ----------------------


@dataclass(frozen=True)
class Candidate:
    """An installer as matching sees it for one action."""

    installer: Installer
    prices: dict[int, int]  # action measure id -> unit price in cents
    capacity: dict[int, int]  # action measure id -> homes it can still take
    source: str  # "bid" or "registry"


def _capacity_in_use(action_id: int) -> dict[tuple[int, int], int]:
    """(installer id, action measure id) -> homes already ordered from it in this action."""
    rows = db.session.execute(
        select(Order.installer_id, RegistrationMeasure.action_measure_id, func.count())
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(RegistrationMeasure, RegistrationMeasure.id == OrderLine.registration_measure_id)
        .where(Order.action_id == action_id, OrderLine.status.in_(USING_CAPACITY))
        .group_by(Order.installer_id, RegistrationMeasure.action_measure_id)
    ).all()
    return {(installer_id, measure_id): count for installer_id, measure_id, count in rows}


def candidates(
    action: Action,
    tender: TenderRound | None,
    *,
    use_registry_prices: bool,
    registry_weeks: int,
) -> list[Candidate]:
    in_use = _capacity_in_use(action.id)
    out: list[Candidate] = []
    bidders: set[int] = set()
    if tender is not None:
        for invitation in tenders.submitted_bids(tender):
            bidders.add(invitation.installer_id)
            prices = {line.action_measure_id: line.unit_price_cents for line in invitation.lines}
            capacity = {
                line.action_measure_id: max(
                    0,
                    line.capacity_homes
                    - in_use.get((invitation.installer_id, line.action_measure_id), 0),
                )
                for line in invitation.lines
            }
            out.append(Candidate(invitation.installer, prices, capacity, "bid"))
    if use_registry_prices:
        by_measure = {m.measure_id: m.id for m in action.measures}
        registry = db.session.scalars(
            select(Installer)
            .where(Installer.organisation_id == action.organisation_id)
            .options(selectinload(Installer.offers))
            .order_by(Installer.id)
        )
        for installer in registry:
            if installer.id in bidders:
                continue
            prices, capacity = {}, {}
            for offer in installer.offers:
                action_measure_id = by_measure.get(offer.measure_id)
                if action_measure_id is None:
                    continue
                prices[action_measure_id] = offer.unit_price_cents
                capacity[action_measure_id] = max(
                    0,
                    offer.homes_per_week * registry_weeks
                    - in_use.get((installer.id, action_measure_id), 0),
                )
            if prices:
                out.append(Candidate(installer, prices, capacity, "registry"))
    return out


def _service_area(installer: Installer) -> tuple[tuple[int, int], ...]:
    try:
        return matching.pc4_ranges(installer.service_area)
    except ValueError:  # an area the registry never accepted; it serves nowhere
        return ()


def _exclusions(action_id: int) -> set[tuple[int, int]]:
    """(batch id, installer id): an installer that declined (or let expire) an order of a batch
    is not asked for that batch again."""
    rows = db.session.execute(
        select(Order.batch_id, Order.installer_id).where(
            Order.action_id == action_id,
            Order.status.in_((OrderStatus.DECLINED, OrderStatus.EXPIRED)),
        )
    ).all()
    return {(batch_id, installer_id) for batch_id, installer_id in rows}


_DECLINED_REASON = {
    "en": "the installers that work here declined this group",
    "nl": "de installateurs die hier werken hebben deze groep afgewezen",
}


def build_problem(
    action: Action,
    batches: dict[tuple[int, str], Batch],
    homes: Sequence[Home],
    offers: Sequence[Candidate],
    excluded: set[tuple[int, int]],
) -> matching.AssignmentProblem:
    """The engine's problem: one demand group per batch, one installer offer per candidate,
    without the (batch, installer) pairs that were declined."""
    measure_code = {m.id: m.measure.code for m in action.measures}
    count: dict[int, int] = defaultdict(int)
    quantity: dict[int, int] = defaultdict(int)
    for home in homes:
        batch = batches[home.action_measure_id, home.pc4]
        count[batch.id] += 1
        quantity[batch.id] += home.quantity
    by_id = {b.id: b for b in batches.values()}
    groups = [
        matching.DemandGroup(
            key=str(batch_id),
            area=by_id[batch_id].pc4,
            measure=measure_code[by_id[batch_id].action_measure_id],
            homes=count[batch_id],
            quantity=quantity[batch_id],
        )
        for batch_id in sorted(count)
    ]
    installers = [
        matching.InstallerOffer(
            key=str(c.installer.id),
            name=c.installer.company_name,
            unit_prices={measure_code[m]: p for m, p in c.prices.items() if m in measure_code},
            areas=_service_area(c.installer),
            capacity={measure_code[m]: n for m, n in c.capacity.items() if m in measure_code},
        )
        for c in offers
    ]
    problem = matching.build_problem(groups, installers)
    if not excluded:
        return problem
    options = tuple(
        o
        for o in problem.options
        if (int(problem.items[o.item].key), int(problem.agents[o.agent].installer)) not in excluded
    )
    # Whether a group must be split, and why nobody can take it, depend on who is left.
    items = []
    for index, item in enumerate(problem.items):
        mine = [o for o in options if o.item == index]
        had_options = any(o.item == index for o in problem.options)
        fits_whole = any(problem.agents[o.agent].capacity >= item.size for o in mine)
        items.append(
            dataclasses.replace(
                item,
                splittable=bool(mine) and not fits_whole,
                unserved_reason=(
                    item.unserved_reason if mine or not had_options else dict(_DECLINED_REASON)
                ),
            )
        )
    return matching.AssignmentProblem(
        tuple(items), problem.agents, options, money=problem.money, unit=problem.unit
    )
