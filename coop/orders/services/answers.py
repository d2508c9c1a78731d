"""The installer's answer to an order: accept, decline (its homes are matched again), or no
answer by the deadline (the order expires); reminders before the deadline, and the matching
that starts when a tender round's deadline passes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from coop.accounts.models import Role, User
from coop.actions.models import ActionStatus
from coop.core import jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import (
    OPEN_LINE,
    LineStatus,
    MatchingRun,
    Order,
    OrderStatus,
    RunTrigger,
)
from coop.orders.services.approval import _registrations
from coop.orders.services.rules import MAX_DECLINE_REASON, ORDER_REMINDER_BEFORE, OrderError
from coop.orders.services.runs import _staff_ids, open_run, start_run
from coop.orders.services.sync import sync_registrations
from coop.tenders import services as tenders

log = logging.getLogger(__name__)


# --- the installer's answer -------------------------------------------------------------------


def get_order(order_id: int) -> Order | None:
    return db.session.get(Order, order_id)


def _lock_order(order: Order) -> Order:
    lock_row(order)
    return order


@unit_of_work
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
