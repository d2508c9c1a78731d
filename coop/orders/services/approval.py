"""Approval: only ``approve_run`` creates orders. A job turns the proposal into orders in chunks
(``APPROVAL_CHUNK_HOMES`` homes per transaction), so a kill loses at most one chunk and a retry
goes on where it stopped."""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.actions.models import ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.time import utcnow
from coop.core.workdays import working_days_deadline
from coop.extensions import db
from coop.orders.models import (
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    RunStatus,
    RunTrigger,
)
from coop.orders.services.batches import Home, unassigned_homes
from coop.orders.services.review import proposal
from coop.orders.services.rules import OrderError
from coop.orders.services.runs import start_run
from coop.orders.services.sync import sync_registrations
from coop.registrations.models import (
    Registration,
)

log = logging.getLogger(__name__)


# --- approval: the orders, made from the proposal in chunks -------------------------------------


# How many homes an approval job turns into order lines per transaction: a kill loses at most
# this much work, and the page's progress moves after each; 20,000 homes take 40 commits.
APPROVAL_CHUNK_HOMES = 500


@unit_of_work
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
