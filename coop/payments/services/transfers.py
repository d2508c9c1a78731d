"""Refunds staff transfer by hand (offline mode), and cancelling a deposit that is no longer due."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.actions.models import Action
from coop.core import jobs
from coop.extensions import db
from coop.payments.models import (
    Payment,
    PaymentMode,
    PaymentStatus,
)
from coop.payments.services.lifecycle import _move, _staff_ids
from coop.payments.services.reports import PaymentRow, row_of
from coop.registrations.models import Registration

# --- refunds staff transfer by hand (offline mode) ----------------------------------------------


def refunds_to_transfer(organisation_id: int, action_id: int | None = None) -> list[PaymentRow]:
    """The desk's task list: refunds asked in offline mode that staff must still transfer back
    (and then mark as refunded), oldest first."""
    query = (
        select(Payment)
        .join(Action, Action.id == Payment.action_id)
        .where(
            Action.organisation_id == organisation_id,
            Payment.status == PaymentStatus.REFUNDING,
            Payment.mode == PaymentMode.OFFLINE,
        )
        .options(
            selectinload(Payment.registration).selectinload(Registration.household),
            selectinload(Payment.registration).selectinload(Registration.user),
            selectinload(Payment.action),
        )
        .order_by(Payment.refund_requested_at, Payment.id)
    )
    if action_id is not None:
        query = query.where(Payment.action_id == action_id)
    return [row_of(p) for p in db.session.scalars(query)]


def _tell_staff_to_transfer(payment: Payment) -> None:
    """Offline mode: every refund is a bank transfer staff make; each of the action's staff gets
    one email per refund (the key holds the refund's attempt)."""
    for user_id in _staff_ids(payment.action.organisation_id):
        jobs.enqueue(
            "payments.send_refund_to_transfer",
            f"refund-to-transfer:{payment.id}:{payment.refund_attempts}:{user_id}",
            payment_id=payment.id,
            attempt=payment.refund_attempts,
            user_id=user_id,
        )


def _cancel(payment: Payment, *, actor: User | None, now: datetime, note: str) -> None:
    _move(payment, PaymentStatus.CANCELLED, now=now, actor=actor, note=note)
    payment.cancelled_at = now
    if payment.mode is PaymentMode.STRIPE and payment.checkout_session_id:
        jobs.enqueue(
            "payments.expire_checkout",
            f"expire-checkout:{payment.checkout_session_id}",
            payment_id=payment.id,
            session_id=payment.checkout_session_id,
        )


def forget_registrations(registration_ids: list[int]) -> None:
    """Before a resident's registrations are erased: the payments stay for the books, without
    the link to the person. The link to the quote stays: the quote stays with its order line in
    the installer's order (detached from the person too), and it tells whether the work was
    installed, which decides whether the deposit may ever be refunded (a cancelled action)."""
    if not registration_ids:
        return
    for payment in db.session.scalars(
        select(Payment).where(Payment.registration_id.in_(registration_ids))
    ):
        payment.registration_id = None
