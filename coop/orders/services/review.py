"""The proposal staff review: its groups and coverage, the other installers a batch could go to,
and moving homes to another installer before approval."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from coop.accounts.models import User
from coop.core import audit
from coop.core.db import lock_row, unit_of_work
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import (
    Batch,
    MatchingRun,
    Order,
    OrderLine,
    ProposedAssignment,
    RunStatus,
)
from coop.orders.services.batches import Home, unassigned_homes
from coop.orders.services.candidates import _exclusions, _service_area, candidates
from coop.orders.services.rules import OrderError
from coop.tenders.models import TenderRound

# --- the proposal: review, change, approve ----------------------------------------------------


@dataclass(frozen=True)
class ProposalGroup:
    """One batch in a proposal: who takes how many homes, and the explanation."""

    batch: Batch
    parts: list[ProposedAssignment]  # with an installer, largest first
    unassigned: int
    explanation_nl: str
    explanation_en: str
    changed_by_staff: bool

    @property
    def homes(self) -> int:
        return sum(p.homes for p in self.parts) + self.unassigned

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


def proposal(run: MatchingRun) -> list[ProposalGroup]:
    rows: dict[int, list[ProposedAssignment]] = defaultdict(list)
    for row in run.proposals:
        rows[row.batch_id].append(row)
    groups = []
    for parts in rows.values():
        assigned = sorted(
            (p for p in parts if p.installer_id is not None and p.homes > 0),
            key=lambda p: (-p.homes, p.installer_id or 0),
        )
        first = parts[0]
        groups.append(
            ProposalGroup(
                batch=first.batch,
                parts=assigned,
                unassigned=sum(p.homes for p in parts if p.installer_id is None),
                explanation_nl=first.explanation_nl,
                explanation_en=first.explanation_en,
                changed_by_staff=any(p.changed_by_staff for p in parts),
            )
        )
    return sorted(groups, key=lambda g: (g.batch.pc4, g.batch.action_measure.position, g.batch.id))


@dataclass(frozen=True)
class Coverage:
    """A run's figures in both units. The engine counts household measures ("homes" in a
    group: a home with a roof and a heat pump is in two groups); a household counts once, as
    covered when at least one of its measures gets an installer."""

    measures: int
    measures_covered: int
    households: int | None  # None where it can no longer be known (an approved run)
    households_covered: int


def coverage(run: MatchingRun) -> Coverage | None:
    """For the run's page and email. A proposal waiting for approval is counted as approval
    would take it (the first homes of each group in street order); an approved run from the
    order lines it created. None for a run without a proposal."""
    if run.homes_total is None or run.status is RunStatus.APPROVING:
        return None  # half the orders may exist: neither count would be right
    if run.status is RunStatus.APPROVED:
        lines = db.session.execute(
            select(OrderLine.registration_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.run_id == run.id)
        ).all()
        attached = {r for (r,) in lines if r is not None}
        # A detached line (its resident erased the account) counts as a household of its own.
        detached = sum(1 for (r,) in lines if r is None)
        return Coverage(run.homes_total, run.homes_covered or 0, None, len(attached) + detached)
    homes: dict[tuple[int, str], list[Home]] = defaultdict(list)
    for home in unassigned_homes(run.action_id):
        homes[home.action_measure_id, home.pc4].append(home)
    everyone = {h.registration_id for group in homes.values() for h in group}
    covered: set[int] = set()
    for group in proposal(run):
        waiting = homes.get((group.batch.action_measure_id, group.batch.pc4), [])
        taken = sum(part.homes for part in group.parts)
        covered.update(h.registration_id for h in waiting[:taken])
    return Coverage(run.homes_total, run.homes_covered or 0, len(everyone), len(covered))


@dataclass(frozen=True)
class Choice:
    """An installer staff can give (part of) a batch to, with what it has left for the measure."""

    installer: Installer
    unit_price_cents: int
    capacity_left: int
    source: str


def choices_for(run: MatchingRun, batch: Batch) -> list[Choice]:
    """Installers that offer the batch's measure in its area and were not declined for it,
    with their capacity left after the rest of this proposal.

    ``capacity_left`` is the room for this batch: the homes the proposal now gives an installer
    in this very batch are not taken off, as moving the batch frees them."""
    tender = db.session.get(TenderRound, run.tender_round_id) if run.tender_round_id else None
    offers = candidates(
        run.action,
        tender,
        use_registry_prices=run.use_registry_prices,
        registry_weeks=run.registry_weeks,
    )
    excluded = _exclusions(run.action_id)
    elsewhere: dict[int, int] = defaultdict(int)
    for row in run.proposals:
        if (
            row.installer_id is not None
            and row.batch_id != batch.id
            and row.batch.action_measure_id == batch.action_measure_id
        ):
            elsewhere[row.installer_id] += row.homes
    out = []
    for offer in offers:
        installer = offer.installer
        price = offer.prices.get(batch.action_measure_id)
        if price is None or (batch.id, installer.id) in excluded:
            continue
        if not any(lo <= int(batch.pc4) <= hi for lo, hi in _service_area(installer)):
            continue
        left = offer.capacity.get(batch.action_measure_id, 0) - elsewhere[installer.id]
        out.append(Choice(installer, price, max(0, left), offer.source))
    return sorted(out, key=lambda c: (c.unit_price_cents, c.installer.company_name))


@unit_of_work
def reassign(
    actor: User, run: MatchingRun, batch: Batch, shares: dict[int, int]
) -> list[ProposedAssignment]:
    """Staff move a batch to other installers, or split it: ``shares`` maps installer ids to
    homes; homes left over stay unassigned."""
    lock_row(run.action)
    db.session.refresh(run)
    if run.status is not RunStatus.PROPOSED:
        raise OrderError("not_proposed")
    rows = [p for p in run.proposals if p.batch_id == batch.id]
    if not rows:
        raise OrderError("unknown_batch")
    total = sum(p.homes for p in rows)
    wanted = {installer_id: homes for installer_id, homes in shares.items() if homes}
    if any(homes < 0 for homes in wanted.values()):
        raise OrderError("homes_negative")
    if sum(wanted.values()) > total:
        raise OrderError("too_many_homes", total=total)
    choices = {c.installer.id: c for c in choices_for(run, batch)}
    for installer_id, homes in wanted.items():
        choice = choices.get(installer_id)
        if choice is None:
            raise OrderError("installer_cannot_serve")
        if homes > choice.capacity_left:
            raise OrderError(
                "over_capacity", installer=choice.installer.company_name, left=choice.capacity_left
            )
    before = {str(p.installer_id): p.homes for p in rows}
    quantities = _quantity_by_homes(run.action_id, batch, [wanted[i] for i in sorted(wanted)])
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    names_en, names_nl = [], []
    new_rows = []
    for (installer_id, homes), quantity in zip(sorted(wanted.items()), quantities, strict=True):
        choice = choices[installer_id]
        names_en.append(f"{homes} to {choice.installer.company_name}")
        names_nl.append(f"{homes} naar {choice.installer.company_name}")
        new_rows.append(
            ProposedAssignment(
                run_id=run.id,
                batch_id=batch.id,
                installer_id=installer_id,
                homes=homes,
                quantity=quantity,
                unit_price_cents=choice.unit_price_cents,
                cost_cents=choice.unit_price_cents * quantity,
                changed_by_staff=True,
            )
        )
    rest = total - sum(wanted.values())
    if rest:
        names_en.append(f"{rest} unassigned")
        names_nl.append(f"{rest} niet toegewezen")
        new_rows.append(
            ProposedAssignment(
                run_id=run.id,
                batch_id=batch.id,
                installer_id=None,
                homes=rest,
                changed_by_staff=True,
            )
        )
    for row in new_rows:
        row.explanation_en = "Changed by staff: " + ", ".join(names_en)
        row.explanation_nl = "Aangepast door medewerker: " + ", ".join(names_nl)
        db.session.add(row)
    run.cost_cents = sum(p.cost_cents or 0 for p in run.proposals if p.batch_id != batch.id) + sum(
        p.cost_cents or 0 for p in new_rows
    )
    run.homes_covered = sum(
        p.homes for p in run.proposals if p.batch_id != batch.id and p.installer_id
    ) + sum(wanted.values())
    audit.record(
        actor,
        run.action.organisation_id,
        "matching.reassign",
        run,
        before={"batch_id": batch.id, "shares": before},
        after={"batch_id": batch.id, "shares": {str(k): v for k, v in wanted.items()}},
    )
    db.session.commit()
    return new_rows


def _quantity_by_homes(action_id: int, batch: Batch, homes: list[int]) -> list[int]:
    """The m² (or pieces) of the first homes in street order that each share would take."""
    batch_homes = [
        h
        for h in unassigned_homes(action_id)
        if h.action_measure_id == batch.action_measure_id and h.pc4 == batch.pc4
    ]
    out, start = [], 0
    for count in homes:
        out.append(sum(h.quantity for h in batch_homes[start : start + count]))
        start += count
    return out
