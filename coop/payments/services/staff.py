"""What staff do with a deposit: mark a bank transfer received (offline mode), cancel, refund,
settle a flagged deposit. Each audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from coop.accounts.models import Role, User
from coop.core import audit, jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.payments.models import (
    UNPAID,
    FlagReason,
    Payment,
    PaymentMode,
    PaymentStatus,
    RefundReason,
)
from coop.payments.services.lifecycle import _move
from coop.payments.services.policy import PaymentError
from coop.payments.services.refunds import request_refund
from coop.payments.services.webhooks import _money_received

# --- staff ------------------------------------------------------------------------------------


def _staff_of(actor: User, payment: Payment) -> None:
    if actor.role is not Role.STAFF or actor.organisation_id != payment.action.organisation_id:
        raise PaymentError("not_yours")


def _payment_snapshot(payment: Payment) -> dict[str, Any]:
    return audit.snapshot(
        payment,
        ["status", "amount_cents", "received_cents", "refunded_cents", "reference", "received_on"],
    )


def arrival_moment(received_on: date, now: datetime) -> datetime:
    """When money that arrived on ``received_on`` counts as paid: the end of that day in
    Amsterdam (so the resident keeps every day of the cooling-off period), or now if that is
    earlier (the transfer arrived today)."""
    end_of_day = datetime.combine(received_on + timedelta(days=1), time.min, tzinfo=AMSTERDAM)
    return min(end_of_day - timedelta(microseconds=1), now).astimezone(UTC)


@unit_of_work
def mark_received(
    actor: User,
    payment: Payment,
    cents: int,
    *,
    received_on: date | None = None,
    now: datetime | None = None,
) -> str:
    """Offline mode: staff saw the bank transfer arrive, on ``received_on`` (default today; not
    in the future, not before the deposit was asked). Another amount than asked is flagged. The
    day it arrived, not the day staff saw it, starts the cooling-off period (``paid_at``)."""
    now = now or utcnow()
    today = now.astimezone(AMSTERDAM).date()
    received_on = received_on or today
    _staff_of(actor, payment)
    lock_row(payment)
    if payment.mode is not PaymentMode.OFFLINE:
        raise PaymentError("stripe_mode")
    if payment.status not in (*UNPAID, PaymentStatus.CANCELLED):
        raise PaymentError("already_received", status=payment.status.value)
    if cents <= 0:
        raise PaymentError("amount_required")
    if received_on > today:
        raise PaymentError("received_in_future")
    if received_on < payment.created_at.astimezone(AMSTERDAM).date():
        raise PaymentError("received_before_asked")
    before = _payment_snapshot(payment)
    outcome = _money_received(
        payment, cents=cents, currency="eur", intent_id=None, now=now, actor=actor
    )
    payment.received_on = received_on
    payment.paid_at = arrival_moment(received_on, now)
    audit.record(
        actor,
        payment.action.organisation_id,
        "payment.received",
        payment,
        before=before,
        after=_payment_snapshot(payment),
    )
    db.session.commit()
    return outcome


@unit_of_work
def refund_by_staff(actor: User, payment: Payment, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    _staff_of(actor, payment)
    lock_row(payment)
    before = _payment_snapshot(payment)
    request_refund(actor, payment, RefundReason.STAFF, now=now)
    audit.record(
        actor,
        payment.action.organisation_id,
        "payment.refund",
        payment,
        before=before,
        after=_payment_snapshot(payment),
    )
    db.session.commit()


def can_mark_refunded(payment: Payment) -> bool:
    """A refund staff make by hand: a bank transfer back (offline mode), or after Stripe could
    not refund (a closed card)."""
    if payment.status is PaymentStatus.REFUNDING:
        return payment.mode is PaymentMode.OFFLINE
    return (
        payment.status is PaymentStatus.FLAGGED and payment.flag_reason is FlagReason.REFUND_FAILED
    )


@unit_of_work
def mark_refunded(actor: User, payment: Payment, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    _staff_of(actor, payment)
    lock_row(payment)
    if not can_mark_refunded(payment):
        raise PaymentError("not_refunding", status=payment.status.value)
    before = _payment_snapshot(payment)
    payment.refunded_cents = payment.received_cents or payment.amount_cents
    payment.refunded_at = now
    payment.refund_reason = payment.refund_reason or RefundReason.STAFF
    _move(payment, PaymentStatus.REFUNDED, now=now, actor=actor, note="transferred back by hand")
    jobs.enqueue(
        "payments.send_deposit_refunded", f"deposit-refunded:{payment.id}", payment_id=payment.id
    )
    audit.record(
        actor,
        payment.action.organisation_id,
        "payment.refunded",
        payment,
        before=before,
        after=_payment_snapshot(payment),
    )
    db.session.commit()
