"""Matching runs. A run always covers the homes of the action that have no installer yet, so the
first run, a re-run by staff and the re-matching after a decline are one mechanism. A run is
computed by a job (``run_matching``) that records its progress; it can be killed at any point
and run again without leaving a second proposal."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select, update

from coop import matching
from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import (
    OPEN_RUN,
    MatchingRun,
    ProposedAssignment,
    RunStatus,
    RunTrigger,
)
from coop.orders.services.batches import ensure_batches, unassigned_homes
from coop.orders.services.candidates import _exclusions, build_problem, candidates
from coop.orders.services.rules import MAX_REGISTRY_WEEKS, OrderError
from coop.tenders import services as tenders
from coop.tenders.models import TenderRound

log = logging.getLogger(__name__)


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
