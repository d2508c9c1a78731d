"""From closed registration to orders: batches, matching runs, the proposal staff review and
approve, and the installers' answers (accept, decline, or no answer by the deadline).

A matching run always covers the homes of the action that have no installer yet, so the first
run, a re-run by staff and the re-matching after a decline are one mechanism. A run is computed
by a job (``run_matching``) that records its progress; it can be killed at any point and run
again without leaving a second proposal, and only ``approve_run`` creates orders.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop import matching
from coop.accounts.models import Role, User
from coop.actions import events as action_events
from coop.actions.models import Action, ActionMeasure, ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row
from coop.core.time import utcnow
from coop.core.workdays import working_days_deadline
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import (
    OPEN_LINE,
    OPEN_RUN,
    Batch,
    LineStatus,
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    ProposedAssignment,
    QuoteStatus,
    RunStatus,
    RunTrigger,
    SurveyStatus,
)
from coop.registrations import services as registrations
from coop.registrations.models import (
    JOURNEY,
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)
from coop.tenders import demand as tender_demand
from coop.tenders import services as tenders
from coop.tenders.demand import DemandGroup
from coop.tenders.models import TenderRound

log = logging.getLogger(__name__)

# Registrations whose homes are matched: confirmed, and not ended or completed.
MATCHABLE = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.SURVEY_PLANNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
)
# Lines that take up an installer's committed capacity.
USING_CAPACITY = (*OPEN_LINE, LineStatus.COMPLETED)
_LINE_TO_REGISTRATION = {
    LineStatus.ASSIGNED: RegistrationStatus.ASSIGNED,
    LineStatus.SURVEY_PLANNED: RegistrationStatus.SURVEY_PLANNED,
    LineStatus.QUOTED: RegistrationStatus.QUOTED,
    LineStatus.ACCEPTED: RegistrationStatus.ACCEPTED,
    LineStatus.INSTALLED: RegistrationStatus.INSTALLED,
    LineStatus.COMPLETED: RegistrationStatus.COMPLETED,
}
MAX_REGISTRY_WEEKS = 104
# An installer that has not answered hears once when a day is left.
ORDER_REMINDER_BEFORE = timedelta(hours=24)
MAX_DECLINE_REASON = 2000


class OrderError(Exception):
    """A rule stopped the operation; ``code`` names it, ``params`` fill in its message."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


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


# --- matching runs ----------------------------------------------------------------------------


def get_run(run_id: int) -> MatchingRun | None:
    return db.session.get(MatchingRun, run_id)


def runs_of(action: Action) -> list[MatchingRun]:
    return list(
        db.session.scalars(
            select(MatchingRun)
            .where(MatchingRun.action_id == action.id)
            .order_by(MatchingRun.id.desc())
        )
    )


def open_run(action: Action) -> MatchingRun | None:
    """The run that is queued, running or waiting for approval, if any (at most one)."""
    return db.session.scalar(
        select(MatchingRun)
        .where(MatchingRun.action_id == action.id, MatchingRun.status.in_(OPEN_RUN))
        .order_by(MatchingRun.id.desc())
        .limit(1)
    )


def start_run(
    actor: User | None,
    action: Action,
    trigger: RunTrigger,
    *,
    use_registry_prices: bool = False,
    registry_weeks: int = 12,
    now: datetime | None = None,
    commit: bool = True,
) -> MatchingRun:
    """Queue a matching of every home of the action that has no installer yet.

    A proposal not yet approved is superseded by the new run (it was computed on what was known
    then). Matching uses the bids of the newest tender round, which must be past its deadline.
    """
    now = now or utcnow()
    lock_row(action)  # serialises runs and approvals
    if action.status is not ActionStatus.CLOSED:
        raise OrderError("action_not_closed")
    if not 1 <= registry_weeks <= MAX_REGISTRY_WEEKS:
        raise OrderError("registry_weeks_out_of_range")
    tender = tenders.latest_round(action)
    if tender is not None and tender.sealed(now):
        raise OrderError("tender_running")
    if tender is None and not use_registry_prices:
        raise OrderError("no_prices")
    approving = db.session.scalar(
        select(MatchingRun.id).where(
            MatchingRun.action_id == action.id, MatchingRun.status == RunStatus.APPROVING
        )
    )
    if approving is not None:
        # Its orders are being created; homes left over wait for the next run.
        raise OrderError("approval_running")
    db.session.execute(
        update(MatchingRun)
        .where(MatchingRun.action_id == action.id, MatchingRun.status.in_(OPEN_RUN))
        .values(status=RunStatus.SUPERSEDED, stage="superseded", finished_at=now)
    )
    run = MatchingRun(
        action_id=action.id,
        trigger=trigger,
        tender_round_id=tender.id if tender is not None else None,
        use_registry_prices=use_registry_prices,
        registry_weeks=registry_weeks,
        created_at=now,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(run)
    db.session.flush()
    jobs.enqueue("orders.run_matching", f"matching-run:{run.id}", run_id=run.id)
    if actor is not None:
        audit.record(
            actor,
            action.organisation_id,
            "matching.start",
            run,
            after={"use_registry_prices": use_registry_prices, "registry_weeks": registry_weeks},
        )
    if commit:
        db.session.commit()
    log.info("matching run queued id=%s action=%s trigger=%s", run.id, action.id, trigger.value)
    return run


def _progress(run: MatchingRun, stage: str, percent: int) -> None:
    """Committed at once, so the staff's progress bar moves while the job works."""
    run.stage = stage
    run.progress = percent
    db.session.commit()


def compute_run(run_id: int, *, time_limit_s: float | None = None) -> str:
    """The job's work: batch the homes without an installer, solve, store the proposal.

    Every step can be cut off (a killed worker) and run again: batches are created once (their
    unique key), the proposal is written in the same transaction that marks the run proposed,
    and a run that is no longer running (proposed, superseded) is left alone.
    """
    run = db.session.get(MatchingRun, run_id)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        db.session.rollback()
        return "skipped"
    now = utcnow()
    run.status = RunStatus.RUNNING
    run.attempts += 1
    run.started_at = run.started_at or now
    _progress(run, "batching", 5)

    action = run.action
    homes = unassigned_homes(action.id)
    batches = ensure_batches(action, homes)
    _progress(run, "batching", 25)

    tender = db.session.get(TenderRound, run.tender_round_id) if run.tender_round_id else None
    offers = candidates(
        action,
        tender,
        use_registry_prices=run.use_registry_prices,
        registry_weeks=run.registry_weeks,
    )
    problem = build_problem(action, batches, homes, offers, _exclusions(action.id))
    _progress(run, "solving", 35)

    limit = time_limit_s or float(current_app.config.get("MATCHING_TIME_LIMIT", 20))
    assignment = matching.solve(problem, time_limit_s=limit)
    _progress(run, "storing", 90)

    # The action's row lock orders this against approvals and newer runs of the action.
    lock_row(action)
    db.session.refresh(run)
    if run.status is not RunStatus.RUNNING:
        db.session.rollback()
        return "superseded"
    db.session.execute(delete(ProposedAssignment).where(ProposedAssignment.run_id == run.id))
    prices = {(c.installer.id, m): p for c in offers for m, p in c.prices.items()}
    by_batch = {b.id: b for b in batches.values()}
    for result in assignment.results:
        batch = by_batch[int(result.key)]
        item = next(i for i in problem.items if i.key == result.key)
        for share in result.shares:
            installer_id = int(share.installer)
            db.session.add(
                ProposedAssignment(
                    run_id=run.id,
                    batch_id=batch.id,
                    installer_id=installer_id,
                    homes=share.units,
                    quantity=share.quantity or 0,
                    unit_price_cents=prices.get((installer_id, batch.action_measure_id)),
                    cost_cents=share.cost,
                    explanation_nl=result.explanation.get("nl", ""),
                    explanation_en=result.explanation.get("en", ""),
                )
            )
        missing = item.size - result.units
        if missing:
            db.session.add(
                ProposedAssignment(
                    run_id=run.id,
                    batch_id=batch.id,
                    installer_id=None,
                    homes=missing,
                    quantity=0,
                    explanation_nl=result.explanation.get("nl", ""),
                    explanation_en=result.explanation.get("en", ""),
                )
            )
    run.status = RunStatus.PROPOSED
    run.homes_total = assignment.total
    run.homes_covered = assignment.covered
    run.cost_cents = assignment.cost
    run.optimal = assignment.optimal
    run.finished_at = utcnow()
    run.stage = "done"
    run.progress = 100
    for user_id in _staff_ids(action.organisation_id):
        jobs.enqueue(
            "orders.send_proposal_ready",
            f"proposal-ready:{run.id}:{user_id}",
            run_id=run.id,
            user_id=user_id,
        )
    db.session.commit()
    log.info(
        "matching run proposed id=%s homes=%s covered=%s cost=%s seconds=%.1f",
        run.id,
        assignment.total,
        assignment.covered,
        assignment.cost,
        assignment.seconds,
    )
    return "proposed"


def fail_run(run_id: int, error: str) -> None:
    """The job gave up for good: say so on the run, so staff can start another."""
    run = db.session.get(MatchingRun, run_id)
    if run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run.status = RunStatus.FAILED
        run.error = error[:2000]
        run.stage = "failed"
        run.finished_at = utcnow()
        db.session.commit()


def _staff_ids(organisation_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(User.id).where(
                User.organisation_id == organisation_id,
                User.role == Role.STAFF,
                User.is_active_account.is_(True),
            )
        )
    )


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


# How many homes an approval job turns into order lines per transaction: a kill loses at most
# this much work, and the page's progress moves after each; 20,000 homes take 40 commits.
APPROVAL_CHUNK_HOMES = 500


def request_approval(actor: User, run: MatchingRun, *, now: datetime | None = None) -> MatchingRun:
    """Staff approve the proposal: the run records who and when and becomes "approving", and a
    job (``carry_out_approval``) creates the orders while the run's page shows its progress.

    Approving again while the job works (a double click, a colleague) changes nothing, except
    after the job gave up: then it is handed over again and carries on where it stopped. A run
    already approved or replaced is refused."""
    now = now or utcnow()
    action = run.action
    lock_row(action)
    db.session.refresh(run)
    if run.status is RunStatus.APPROVING:
        if run.stage == "failed":
            run.stage = "approving"
            run.error = None
            # A key of its own: the first job's row is failed for good and stays so.
            jobs.enqueue(
                "orders.approve_run",
                f"approve-run:{run.id}:again-{secrets.token_hex(4)}",
                run_id=run.id,
            )
            audit.record(actor, action.organisation_id, "matching.approve_again", run)
            db.session.commit()
            log.info("matching run approval handed over again id=%s", run.id)
        else:
            db.session.rollback()
        return run
    if action.status is not ActionStatus.CLOSED:
        raise OrderError("action_not_closed")
    if run.status is not RunStatus.PROPOSED:
        raise OrderError("not_proposed")
    run.status = RunStatus.APPROVING
    run.approved_at = now
    run.approved_by_id = actor.id
    run.stage = "approving"
    run.progress = 0
    run.error = None
    jobs.enqueue("orders.approve_run", f"approve-run:{run.id}", run_id=run.id)
    audit.record(
        actor,
        action.organisation_id,
        "matching.approve",
        run,
        after={"homes": run.homes_covered or 0, "cost_cents": run.cost_cents or 0},
    )
    db.session.commit()
    log.info("matching run approval queued id=%s action=%s", run.id, action.id)
    return run


def approve_run(actor: User, run: MatchingRun, *, now: datetime | None = None) -> list[Order]:
    """Approve and create the orders at once, in this process (the demo, the command line and
    tests); the desk's page calls ``request_approval`` and leaves the work to the job. The job
    that ``request_approval`` enqueued then finds nothing left to do."""
    request_approval(actor, run, now=now)
    carry_out_approval(run.id)
    return orders_of_run(run.id)


def orders_of_run(run_id: int) -> list[Order]:
    return list(db.session.scalars(select(Order).where(Order.run_id == run_id).order_by(Order.id)))


@dataclass(frozen=True)
class _GroupPlan:
    """One batch of an approved proposal, as plain values: (installer, homes, price) per part."""

    batch_id: int
    action_measure_id: int
    pc4: str
    parts: tuple[tuple[int, int, int], ...]

    @property
    def homes(self) -> int:
        return sum(homes for _, homes, _ in self.parts)


def carry_out_approval(run_id: int, *, chunk_homes: int | None = None) -> str:
    """The approval job: one order per installer per batch of the proposal, with one line per
    household measure in street order; each registration follows its lines; then the emails to
    the installers and the residents.

    It commits as it goes, a few batches per transaction (``APPROVAL_CHUNK_HOMES``), and the
    run's progress moves with it. Killed at any point and run again it carries on: a batch with
    orders of this run is done, since its orders were committed together (and the unique keys
    on orders and on a measure's current line would refuse a second one). The emails are
    enqueued once all orders exist, under the keys they always had, so each is sent once.
    Returns what happened (for logs and tests)."""
    limit = chunk_homes or APPROVAL_CHUNK_HOMES
    run = db.session.get(MatchingRun, run_id)
    if run is None or run.status is not RunStatus.APPROVING:
        db.session.rollback()
        return "skipped"
    plan = [
        _GroupPlan(
            group.batch.id,
            group.batch.action_measure_id,
            group.batch.pc4,
            tuple(
                (part.installer_id, part.homes, part.unit_price_cents)
                for part in group.parts
                if part.installer_id is not None and part.unit_price_cents is not None
            ),
        )
        for group in proposal(run)
    ]
    done = set(db.session.scalars(select(Order.batch_id).where(Order.run_id == run.id)))
    db.session.rollback()  # only read so far; each chunk is a transaction of its own
    total = sum(group.homes for group in plan)
    handled = sum(group.homes for group in plan if group.batch_id in done)
    chunk: list[_GroupPlan] = []
    for index, group in enumerate(plan):
        if group.batch_id not in done and group.parts:
            chunk.append(group)
        if chunk and (sum(g.homes for g in chunk) >= limit or index == len(plan) - 1):
            handled += sum(g.homes for g in chunk)
            if not _approve_groups(run_id, chunk, progress=_percent(handled, total)):
                return "stopped"
            chunk = []
    return _finish_approval(run_id)


def _percent(done: int, total: int) -> int:
    # 100 is for when the emails are enqueued too.
    return min(99, done * 100 // total) if total else 99


def _approving(run_id: int) -> MatchingRun | None:
    """The run, locked through its action, if it is still being approved (the action may have
    been cancelled, which ends the run, since the job started)."""
    run = db.session.get(MatchingRun, run_id)
    if run is None:
        return None
    lock_row(run.action)  # orders this against newer runs, declines and a cancellation
    db.session.refresh(run)
    if run.status is not RunStatus.APPROVING or run.action.status is not ActionStatus.CLOSED:
        db.session.rollback()
        log.info("matching run approval stopped id=%s status=%s", run_id, run.status.value)
        return None
    return run


def _approve_groups(run_id: int, groups: Sequence[_GroupPlan], *, progress: int) -> bool:
    """Orders for ``groups`` in one transaction. False when the run is no longer approving."""
    run = _approving(run_id)
    if run is None:
        return False
    action = run.action
    now = run.approved_at or utcnow()
    approver = db.session.get(User, run.approved_by_id) if run.approved_by_id else None
    # Within the lock again: a second job that raced this one may have done some already.
    done = set(
        db.session.scalars(
            select(Order.batch_id).where(
                Order.run_id == run.id, Order.batch_id.in_([g.batch_id for g in groups])
            )
        )
    )
    homes_by_batch: dict[tuple[int, str], list[Home]] = defaultdict(list)
    for home in unassigned_homes(action.id, pc4s={g.pc4 for g in groups}):
        homes_by_batch[home.action_measure_id, home.pc4].append(home)
    respond_by = working_days_deadline(now, action.order_response_days)
    assigned_registrations: set[int] = set()
    for group in groups:
        if group.batch_id in done:
            continue
        waiting = homes_by_batch.get((group.action_measure_id, group.pc4), [])
        start = 0
        for installer_id, homes, unit_price_cents in group.parts:
            # Homes withdrawn since the run shrink the last shares; new ones wait for a run.
            taken = waiting[start : start + homes]
            start += homes
            if not taken:
                continue
            db.session.add(
                Order(
                    action_id=action.id,
                    batch_id=group.batch_id,
                    installer_id=installer_id,
                    run_id=run.id,
                    unit_price_cents=unit_price_cents,
                    sent_at=now,
                    respond_by=respond_by,
                    lines=[
                        OrderLine(
                            registration_id=home.registration_id,
                            registration_measure_id=home.registration_measure_id,
                            quantity=home.quantity,
                            created_at=now,
                        )
                        for home in taken
                    ],
                )
            )
            assigned_registrations.update(home.registration_id for home in taken)
    db.session.flush()
    sync_registrations(_registrations(assigned_registrations), actor=approver, now=now)
    run.progress = max(run.progress, progress)
    db.session.commit()
    return True


def _finish_approval(run_id: int) -> str:
    """Every order exists: enqueue the installers' and residents' emails, mark the run
    approved, and match again the homes of orders declined while the approval went on."""
    run = _approving(run_id)
    if run is None:
        return "stopped"
    action = run.action
    orders = orders_of_run(run.id)
    registration_ids = db.session.scalars(
        select(OrderLine.registration_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.run_id == run.id,
            OrderLine.current.is_(True),
            OrderLine.registration_id.is_not(None),
        )
        .distinct()
        .order_by(OrderLine.registration_id)
    ).all()
    jobs.enqueue_many(
        "orders.send_assigned",
        [
            (f"assigned:{run.id}:{rid}", {"registration_id": rid, "run_id": run.id})
            for rid in registration_ids
        ],
    )
    jobs.enqueue_many(
        "orders.send_order",
        [(f"order-sent:{order.id}", {"order_id": order.id}) for order in orders],
    )
    run.status = RunStatus.APPROVED
    run.stage = "done"
    run.progress = 100
    released = [o for o in orders if o.status in (OrderStatus.DECLINED, OrderStatus.EXPIRED)]
    if released:
        # Their decline could not start a run while this one was being approved.
        db.session.flush()  # this run is approved now: the new run may start
        try:
            start_run(
                None,
                action,
                RunTrigger.ORDER_DECLINED,
                commit=False,
                use_registry_prices=run.use_registry_prices,
                registry_weeks=run.registry_weeks,
            )
        except OrderError as exc:
            log.info("no re-matching after approval of run=%s now: %s", run.id, exc.code)
    db.session.commit()
    log.info(
        "matching run approved id=%s orders=%s households=%s",
        run.id,
        len(orders),
        len(registration_ids),
    )
    return "approved"


def approval_failed(run_id: int, error: str) -> None:
    """The approval job gave up for good: the page says so and offers to carry on."""
    run = db.session.get(MatchingRun, run_id)
    if run is not None and run.status is RunStatus.APPROVING:
        run.stage = "failed"
        run.error = error[:2000]
        db.session.commit()


def _registrations(ids: Iterable[int]) -> list[Registration]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(
        db.session.scalars(
            select(Registration)
            .where(Registration.id.in_(wanted))
            .options(selectinload(Registration.measures), selectinload(Registration.history))
            .order_by(Registration.id)
        )
    )


# --- a registration's status follows its order lines -------------------------------------------


def current_lines(registration: Registration) -> list[OrderLine]:
    return list(
        db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id, OrderLine.current.is_(True))
            .order_by(OrderLine.id)
        )
    )


def sync_registration(
    registration: Registration,
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Set the registration's status to where its least advanced measure is: a home is
    "installed" once all its work is installed. True when the status changed."""
    return bool(sync_registrations([registration], actor=actor, now=now, note=note))


def sync_registrations(
    wanted: Sequence[Registration],
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> list[Registration]:
    """``sync_registration`` for many at once, with one query for their lines (an approval
    moves thousands). Returns the registrations whose status changed."""
    lines: dict[int, dict[int, OrderLine]] = defaultdict(dict)
    ids = [r.id for r in wanted]
    for start in range(0, len(ids), 500):
        for line in db.session.scalars(
            select(OrderLine).where(
                OrderLine.registration_id.in_(ids[start : start + 500]),
                OrderLine.current.is_(True),
            )
        ):
            if line.registration_id is not None and line.registration_measure_id is not None:
                lines[line.registration_id][line.registration_measure_id] = line
    changed = []
    with db.session.no_autoflush:
        for registration in wanted:
            if registration.status not in (*MATCHABLE, RegistrationStatus.COMPLETED):
                continue
            target = _status_from_lines(registration, lines[registration.id])
            if target is not registration.status:
                registrations.change_status(registration, target, actor=actor, now=now, note=note)
                changed.append(registration)
    return changed


def _status_from_lines(
    registration: Registration, lines: dict[int, OrderLine]
) -> RegistrationStatus:
    steps: list[RegistrationStatus] = []
    for wish in registration.measures:
        if wish.withdrawn_at is not None:
            continue  # withdrawn on its own: no longer part of the household's progress
        line = lines.get(wish.id)
        if line is None:
            steps.append(RegistrationStatus.CONFIRMED)
        elif line.status in _LINE_TO_REGISTRATION:
            steps.append(_LINE_TO_REGISTRATION[line.status])
        # a declined or withdrawn measure no longer holds the home back
    return min(steps, key=JOURNEY.index) if steps else RegistrationStatus.DECLINED


# --- the installer's answer -------------------------------------------------------------------


def get_order(order_id: int) -> Order | None:
    return db.session.get(Order, order_id)


def _lock_order(order: Order) -> Order:
    lock_row(order)
    return order


def accept_order(actor: User, order: Order, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    _lock_order(order)
    _check_answer(actor, order, now)
    order.status = OrderStatus.ACCEPTED
    order.answered_at = now
    order.answered_by_id = actor.id
    db.session.commit()
    log.info("order accepted id=%s installer=%s", order.id, order.installer_id)


def decline_order(actor: User, order: Order, reason: str, *, now: datetime | None = None) -> None:
    """The installer cannot take the order: its homes go back to matching without it."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason:
        raise OrderError("reason_required")
    if len(reason) > MAX_DECLINE_REASON:
        raise OrderError("reason_too_long")
    _lock_order(order)
    _check_answer(actor, order, now)
    order.status = OrderStatus.DECLINED
    order.answered_at = now
    order.answered_by_id = actor.id
    order.decline_reason = reason
    _release(order, actor=actor, now=now, trigger=RunTrigger.ORDER_DECLINED)
    db.session.commit()
    log.info("order declined id=%s installer=%s", order.id, order.installer_id)


def _check_answer(actor: User, order: Order, now: datetime) -> None:
    if actor.role is not Role.INSTALLER or actor.installer_id != order.installer_id:
        raise OrderError("not_yours")
    if order.status is not OrderStatus.SENT:
        raise OrderError("already_answered", status=order.status.value)
    if now > order.respond_by:
        raise OrderError("answer_too_late")


def _release(order: Order, *, actor: User | None, now: datetime, trigger: RunTrigger) -> None:
    """Free the order's homes, tell the residents and staff, and match the homes again."""
    registration_ids: set[int] = set()
    for line in order.lines:
        if line.current and line.status in OPEN_LINE:
            line.status = LineStatus.CANCELLED
            line.current = False
            if line.registration_id is not None:
                registration_ids.add(line.registration_id)
    db.session.flush()
    released = _registrations(registration_ids)
    sync_registrations(released, actor=actor, now=now)
    jobs.enqueue_many(
        "orders.send_installer_unavailable",
        [
            (
                f"installer-unavailable:{order.id}:{r.id}",
                {"order_id": order.id, "registration_id": r.id},
            )
            for r in released
        ],
    )
    for user_id in _staff_ids(order.action.organisation_id):
        jobs.enqueue(
            "orders.send_order_released",
            f"order-released:{order.id}:{user_id}",
            order_id=order.id,
            user_id=user_id,
        )
    if order.action.status is ActionStatus.CLOSED:
        try:
            start_run(None, order.action, trigger, now=now, commit=False, **_run_settings(order))
        except OrderError as exc:
            # A tender round still open (its deadline starts the matching, with the new bids)
            # or no prices to match with: the homes wait, and staff were told above. The
            # decline or the expiry itself must not fail for it.
            log.info("no re-matching for order=%s now: %s", order.id, exc.code)


def _run_settings(order: Order) -> dict[str, Any]:
    """A re-matching takes the prices the approved run used."""
    run = db.session.get(MatchingRun, order.run_id)
    if run is None:
        return {}
    return {"use_registry_prices": run.use_registry_prices, "registry_weeks": run.registry_weeks}


def expire_orders(now: datetime | None = None) -> int:
    """Orders not answered by their deadline: the homes go back to matching."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.SENT, Order.respond_by < now)
            .order_by(Order.id)
            .limit(100)
            # OF orders: the eager joins to batch and installer are outer joins, whose nullable
            # side PostgreSQL refuses to lock.
            .with_for_update(skip_locked=True, of=Order)
        )
    )
    for order in due:
        order.status = OrderStatus.EXPIRED
        order.answered_at = now
        jobs.enqueue("orders.send_order_expired", f"order-expired:{order.id}", order_id=order.id)
        _release(order, actor=None, now=now, trigger=RunTrigger.ORDER_EXPIRED)
        log.info("order expired id=%s installer=%s", order.id, order.installer_id)
    db.session.commit()
    return len(due)


def remind_unanswered_orders(now: datetime | None = None) -> int:
    """One reminder to the installer when less than a day is left to answer."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Order)
            .where(
                Order.status == OrderStatus.SENT,
                Order.reminder_sent_at.is_(None),
                Order.respond_by >= now,
                Order.respond_by <= now + ORDER_REMINDER_BEFORE,
            )
            .limit(200)
            .with_for_update(skip_locked=True, of=Order)
        )
    )
    for order in due:
        order.reminder_sent_at = now
        jobs.enqueue("orders.send_order_reminder", f"order-reminder:{order.id}", order_id=order.id)
    db.session.commit()
    return len(due)


def start_matching_after_tenders(now: datetime | None = None) -> int:
    """When a round's deadline passes, match with its bids (once per round).

    Cancelled rounds are never picked. A round that a newer one replaced before this ran (the
    scheduler was down at its deadline) is marked done without a run: matching waits for the
    newer round's deadline, and uses its bids (``start_run`` takes the newest round that was
    not cancelled, and refuses while that one is still taking bids).
    """
    now = now or utcnow()
    started = 0
    for tender in tenders.rounds_past_deadline(now):
        tender.matching_started_at = now
        action = tender.action
        current = tenders.latest_round(action)
        if current is None or current.id != tender.id:
            continue
        if action.status is ActionStatus.CLOSED and open_run(action) is None:
            start_run(None, action, RunTrigger.TENDER_CLOSED, now=now, commit=False)
            started += 1
    db.session.commit()
    return started


# --- the action or the registration ends -------------------------------------------------------


def end_line(line: OrderLine, *, now: datetime) -> bool:
    """Called in a measure's withdrawal (``coop.registrations.withdrawal``): the installer stops
    the work on this household's measure and is told. Installed work is never ended. True when
    the line was ended by this call."""
    lock_row(line)
    if line.status not in OPEN_LINE or line.status is LineStatus.INSTALLED:
        return False
    line.status = LineStatus.WITHDRAWN
    line.updated_at = now
    _end_open_work(line, now, QuoteStatus.DECLINED)
    jobs.enqueue(
        "orders.send_household_withdrawn", f"household-withdrawn:{line.id}", line_id=line.id
    )
    return True


def _end_open_work(line: OrderLine, now: datetime, quote_ends_as: QuoteStatus) -> None:
    """A line that ends before its work is done: its planned survey is off, and its open quote
    ends (so that no reminder or expiry email follows): declined when the resident withdrew,
    expired when the action was cancelled (the offer lapsed; the resident said nothing)."""
    for survey in line.surveys:
        if survey.status in (SurveyStatus.PLANNED, SurveyStatus.CHANGE_REQUESTED):
            survey.status = SurveyStatus.CANCELLED
    for quote in line.quotes:
        if quote.status is QuoteStatus.SENT:
            quote.status = quote_ends_as
            quote.decided_at = now


def detach_lines(registration: Registration) -> list[OrderLine]:
    """Before an erased resident's registration is deleted: its order lines stay in the
    installers' orders (the work, its quote and rating, for the books), without the person,
    the address or what the resident wrote. The work itself was ended before (``end_line``)."""
    lines = list(
        db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id)
            .options(
                selectinload(OrderLine.surveys),
                selectinload(OrderLine.quotes),
                selectinload(OrderLine.review),
            )
        )
    )
    for line in lines:
        line.registration_id = None
        line.registration_measure_id = None
        for survey in line.surveys:
            survey.change_request = None
        for quote in line.quotes:
            quote.decline_reason = None
        if line.review is not None:
            line.review.comment = ""
    return lines


@action_events.action_cancelled.connect
def action_cancelled(action: Action, *, now: datetime, **_details: Any) -> None:
    """Called in the cancellation's transaction: open orders and runs end, installers hear.

    Work already installed is never cancelled: its line stays installed (the resident can still
    confirm it) or completed, and its deposit stays as it is (``payments.action_cancelled``);
    an order holding such work stays accepted, so the installer keeps seeing what it did. Only
    the work not done yet ends, with its survey and open quote."""
    db.session.execute(
        update(MatchingRun)
        .where(MatchingRun.action_id == action.id, MatchingRun.status.in_(OPEN_RUN))
        .values(status=RunStatus.SUPERSEDED, stage="superseded", finished_at=now)
    )
    orders = db.session.scalars(
        select(Order).where(
            Order.action_id == action.id,
            Order.status.in_((OrderStatus.SENT, OrderStatus.ACCEPTED)),
        )
    )
    for order in orders:
        done = False
        for line in order.lines:
            if line.current and line.status in OPEN_LINE - {LineStatus.INSTALLED}:
                line.status = LineStatus.CANCELLED
                line.current = False
                line.updated_at = now
                _end_open_work(line, now, QuoteStatus.EXPIRED)
            elif line.status in (LineStatus.INSTALLED, LineStatus.COMPLETED):
                done = True
        if not done:
            order.status = OrderStatus.CANCELLED
        jobs.enqueue(
            "orders.send_order_cancelled", f"order-cancelled:{order.id}", order_id=order.id
        )


# --- reading for the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSummary:
    order: Order
    homes: int
    by_status: dict[LineStatus, int]


def orders_of_action(action: Action) -> list[OrderSummary]:
    orders = db.session.scalars(
        select(Order)
        .where(Order.action_id == action.id)
        .options(selectinload(Order.lines))
        .order_by(Order.id.desc())
    )
    return [_summary(order) for order in orders]


def orders_of_installer(installer: Installer) -> list[OrderSummary]:
    orders = db.session.scalars(
        select(Order)
        .where(Order.installer_id == installer.id)
        .options(selectinload(Order.lines), selectinload(Order.action))
        .order_by(Order.sent_at.desc(), Order.id.desc())
    )
    return [_summary(order) for order in orders]


def _summary(order: Order) -> OrderSummary:
    counts: dict[LineStatus, int] = defaultdict(int)
    for line in order.lines:
        counts[line.status] += 1
    return OrderSummary(order, len(order.lines), dict(counts))


@dataclass(frozen=True)
class DemandFigures:
    homes_waiting: int  # matchable household measures without an installer
    batches: int
    orders_open: int  # sent, no answer yet
    households_waiting: int = 0  # households with at least one of those measures


def demand_figures(action: Action) -> DemandFigures:
    homes = unassigned_homes(action.id)
    waiting = len(homes)
    batches = db.session.scalar(
        select(func.count()).select_from(Batch).where(Batch.action_id == action.id)
    )
    orders_open = db.session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.action_id == action.id, Order.status == OrderStatus.SENT)
    )
    return DemandFigures(
        waiting,
        int(batches or 0),
        int(orders_open or 0),
        len({h.registration_id for h in homes}),
    )


def measure_name(action_measure: ActionMeasure, language: str) -> str:
    measure = action_measure.measure
    return measure.name_en if language == "en" else measure.name_nl
