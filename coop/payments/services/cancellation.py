"""A cancelled action: nothing is due any more, and every deposit held goes back by one refund
run (a job with progress), except for work already installed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from coop.accounts.models import User
from coop.actions import events as action_events
from coop.actions.models import Action, ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.time import utcnow
from coop.extensions import db

# Orders' receiver of ``action_cancelled`` connects before ours (receivers run in the order they
# connected): a cancelled action's orders end before its deposits are settled.
from coop.orders import services as _orders_receive_first  # noqa: F401
from coop.payments.models import (
    UNPAID,
    Payment,
    PaymentMode,
    PaymentStatus,
    RefundReason,
    RefundRun,
    RefundRunStatus,
)
from coop.payments.services.lifecycle import _staff_ids
from coop.payments.services.policy import PaymentError
from coop.payments.services.queries import work_installed
from coop.payments.services.refunds import refund_one, request_refund
from coop.payments.services.transfers import _cancel

log = logging.getLogger(__name__)


# --- a cancelled action: every deposit back ---------------------------------------------------


@action_events.action_cancelled.connect
def action_cancelled(action: Action, *, actor: User | None, now: datetime) -> RefundRun | None:
    """Called in the cancellation's transaction: nothing is due any more, and every deposit we
    hold goes back, by one refund run (a job with progress). Except for work already installed:
    it was done, so its deposit stays as it is (paid, or still due) and is never refunded."""
    payments = [
        payment
        for payment in db.session.scalars(
            select(Payment)
            .where(Payment.action_id == action.id)
            .order_by(Payment.id)
            .with_for_update()
        )
        if not work_installed(payment)
    ]
    for payment in payments:
        if payment.status in UNPAID:
            _cancel(payment, actor=actor, now=now, note="action cancelled")
    holding = [p for p in payments if p.status in (PaymentStatus.PAID, PaymentStatus.FLAGGED)]
    if not holding:
        return None
    return _start_run(actor, action, holding, now)


def _start_run(
    actor: User | None, action: Action, payments: list[Payment], now: datetime
) -> RefundRun:
    run = RefundRun(action_id=action.id, created_at=now, created_by_id=actor.id if actor else None)
    db.session.add(run)
    db.session.flush()
    for payment in payments:
        request_refund(actor, payment, RefundReason.ACTION_CANCELLED, now=now, run=run)
    jobs.enqueue("payments.refund_action", f"refund-run:{run.id}", run_id=run.id)
    if any(p.mode is PaymentMode.OFFLINE for p in payments):
        # Bank transfers to make by hand: one email per run (it lists them), not one per refund.
        for user_id in _staff_ids(action.organisation_id):
            jobs.enqueue(
                "payments.send_run_to_transfer",
                f"refund-run-to-transfer:{run.id}:{user_id}",
                run_id=run.id,
                user_id=user_id,
            )
    log.info("refund run started id=%s action=%s payments=%s", run.id, action.id, len(payments))
    return run


@unit_of_work
def refund_all_again(actor: User, action: Action, *, now: datetime | None = None) -> RefundRun:
    """Staff start a new run for a cancelled action: for deposits that arrived after the first
    run, or that staff moved back to refund after a failure. Safe to press twice."""
    now = now or utcnow()
    if action.status is not ActionStatus.CANCELLED:
        raise PaymentError("action_not_cancelled")
    lock_row(action)
    holding = [
        payment
        for payment in db.session.scalars(
            select(Payment)
            .where(
                Payment.action_id == action.id,
                Payment.status.in_((PaymentStatus.PAID, PaymentStatus.FLAGGED)),
            )
            .order_by(Payment.id)
            .with_for_update()
        )
        if not work_installed(payment)  # installed work is never refunded
    ]
    if not holding:
        raise PaymentError("nothing_to_refund")
    run = _start_run(actor, action, holding, now)
    audit.record(
        actor, action.organisation_id, "payment.refund_all", run, after={"payments": len(holding)}
    )
    db.session.commit()
    return run


@dataclass(frozen=True)
class RunProgress:
    run: RefundRun
    total: int
    refunded: int
    waiting: int  # asked at Stripe and not confirmed yet, or for staff to transfer
    flagged: int

    @property
    def percent(self) -> int:
        return 100 if not self.total else (100 * (self.refunded + self.flagged)) // self.total


def run_progress(run: RefundRun) -> RunProgress:
    counts = dict(
        db.session.execute(
            select(Payment.status, func.count())
            .where(Payment.refund_run_id == run.id)
            .group_by(Payment.status)
        ).all()
    )
    total = sum(counts.values())
    return RunProgress(
        run,
        total,
        counts.get(PaymentStatus.REFUNDED, 0),
        counts.get(PaymentStatus.REFUNDING, 0),
        counts.get(PaymentStatus.FLAGGED, 0),
    )


def runs_of(action: Action) -> list[RefundRun]:
    return list(
        db.session.scalars(
            select(RefundRun).where(RefundRun.action_id == action.id).order_by(RefundRun.id.desc())
        )
    )


def run_refunds(run_id: int) -> str:
    """The refund run's work: each deposit in it refunded at Stripe, one commit each, so the
    progress moves and a run killed half-way continues where it was when it runs again."""
    run = db.session.get(RefundRun, run_id)
    if run is None or run.status is RefundRunStatus.DONE:
        db.session.rollback()
        return "skipped"
    run.attempts += 1
    db.session.commit()
    todo = list(
        db.session.execute(
            select(Payment.id, Payment.refund_attempts)
            .where(
                Payment.refund_run_id == run_id,
                Payment.status == PaymentStatus.REFUNDING,
                Payment.mode == PaymentMode.STRIPE,
                Payment.stripe_refund_id.is_(None),
            )
            .order_by(Payment.id)
        ).all()
    )
    db.session.rollback()
    for payment_id, attempt in todo:
        refund_one(payment_id, attempt)
    run = db.session.get(RefundRun, run_id)
    assert run is not None
    lock_row(run)
    run.status = RefundRunStatus.DONE
    run.finished_at = utcnow()
    db.session.commit()
    return f"done ({len(todo)} asked at Stripe)"


def give_up_run(run_id: int, error: str) -> None:
    run = db.session.get(RefundRun, run_id)
    if run is None:
        return
    run.error = error[:2000]
    db.session.commit()
