"""Refunds: asked in the transaction that decides them, made by a job (Stripe, with an idempotency
key), reconciled from Stripe's answer and its webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from coop.accounts.models import User
from coop.core import jobs
from coop.core.db import lock_row
from coop.core.time import utcnow
from coop.extensions import db
from coop.payments import stripe_gateway
from coop.payments.models import (
    HOLDS_MONEY,
    FlagReason,
    Payment,
    PaymentMode,
    PaymentStatus,
    RefundReason,
    RefundRun,
)
from coop.payments.services.lifecycle import _flag, _move
from coop.payments.services.policy import IDEMPOTENCY_WINDOW, PaymentError
from coop.payments.services.queries import _payment_from_metadata, work_installed
from coop.payments.services.transfers import _tell_staff_to_transfer
from coop.payments.stripe_gateway import (
    GatewayError,
    Refund,
)

# --- refunds ----------------------------------------------------------------------------------


def request_refund(
    actor: User | None,
    payment: Payment,
    reason: RefundReason,
    *,
    now: datetime,
    run: RefundRun | None = None,
) -> None:
    """Ask the refund of a deposit we hold; in Stripe mode a job creates it (with the key
    ``refund:<id>:<n>``), in offline mode staff transfer it and say so. The caller commits."""
    if payment.status not in (PaymentStatus.PAID, PaymentStatus.FLAGGED):
        raise PaymentError("not_refundable", status=payment.status.value)
    if reason is RefundReason.WITHDRAWN and work_installed(payment):
        # The rule's last line of defence: installed work is never refunded on a withdrawal.
        raise PaymentError("installed_work")
    payment.refund_reason = reason
    payment.refund_attempts += 1
    payment.refund_requested_at = now
    payment.stripe_refund_id = None  # a failed one is in the history; this is a new attempt
    if run is not None:
        payment.refund_run_id = run.id
    _move(payment, PaymentStatus.REFUNDING, now=now, actor=actor, note=reason.value)
    if payment.mode is PaymentMode.STRIPE and run is None:
        jobs.enqueue(
            "payments.create_refund",
            f"payment-refund:{payment.id}:{payment.refund_attempts}",
            payment_id=payment.id,
            attempt=payment.refund_attempts,
        )
    elif payment.mode is PaymentMode.OFFLINE and run is None:
        _tell_staff_to_transfer(payment)


def _refund_metadata(payment: Payment) -> dict[str, str]:
    return {
        "payment_id": str(payment.id),
        "attempt": str(payment.refund_attempts),
        "reason": payment.refund_reason.value if payment.refund_reason else "",
    }


def refund_one(payment_id: int, attempt: int, *, now: datetime | None = None) -> str:
    """The job's work: create the refund at Stripe and record what Stripe says.

    Killed after Stripe made the refund and before we recorded it, the job runs again with the
    same attempt, so the same idempotency key: Stripe answers with the refund it made.
    """
    now = now or utcnow()
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        db.session.rollback()
        return "gone"
    lock_row(payment)
    if payment.status is not PaymentStatus.REFUNDING or payment.refund_attempts != attempt:
        db.session.rollback()
        return f"nothing to do ({payment.status.value})"
    if payment.mode is not PaymentMode.STRIPE:
        db.session.rollback()
        return "offline: staff transfer it"
    gateway = stripe_gateway.gateway()
    try:
        if payment.stripe_refund_id:
            refund = gateway.retrieve_refund(payment.stripe_refund_id)
        else:
            intent_id = payment.payment_intent_id
            if intent_id is None and payment.checkout_session_id:
                intent_id = gateway.retrieve_checkout_session(
                    payment.checkout_session_id
                ).payment_intent
                payment.payment_intent_id = intent_id
            if intent_id is None:
                _flag(
                    payment, FlagReason.REFUND_FAILED, now=now, note="no Stripe payment to refund"
                )
                db.session.commit()
                return "flagged: nothing to refund"
            refund = _earlier_refund(payment, intent_id, now) or gateway.create_refund(
                idempotency_key=f"refund:{payment.id}:{attempt}",
                payment_intent=intent_id,
                amount_cents=payment.received_cents or payment.amount_cents,
                metadata=_refund_metadata(payment),
            )
    except GatewayError as exc:
        if exc.temporary:
            db.session.rollback()
            raise
        _flag(payment, FlagReason.REFUND_FAILED, now=now, note=str(exc)[:500])
        db.session.commit()
        return "flagged: refused by Stripe"
    payment.stripe_refund_id = refund.id
    outcome = _apply_refund(payment, refund, now=now, event_id=None)
    db.session.commit()
    return outcome


def _earlier_refund(payment: Payment, intent_id: str, now: datetime) -> Refund | None:
    """Past Stripe's idempotency window a key no longer protects: look for our refund first."""
    requested = payment.refund_requested_at
    if requested is None or now - requested < IDEMPOTENCY_WINDOW:
        return None
    wanted = _refund_metadata(payment)
    for refund in stripe_gateway.gateway().refunds_of(intent_id):
        if (
            refund.metadata.get("payment_id") == wanted["payment_id"]
            and refund.metadata.get("attempt") == wanted["attempt"]
        ):
            return refund
    return None


def _apply_refund(payment: Payment, refund: Refund, *, now: datetime, event_id: str | None) -> str:
    if refund.status == "succeeded":
        if payment.status is PaymentStatus.REFUNDED:
            return "already refunded"
        if payment.status not in HOLDS_MONEY:
            return f"refund succeeded, payment {payment.status.value}"
        payment.refunded_cents = refund.amount
        payment.refunded_at = now
        _move(payment, PaymentStatus.REFUNDED, now=now, event_id=event_id)
        jobs.enqueue(
            "payments.send_deposit_refunded",
            f"deposit-refunded:{payment.id}",
            payment_id=payment.id,
        )
        return "refunded"
    if refund.status in ("failed", "canceled"):
        if payment.status is PaymentStatus.REFUNDING and refund.id == payment.stripe_refund_id:
            _flag(
                payment,
                FlagReason.REFUND_FAILED,
                now=now,
                event_id=event_id,
                note=refund.failure_reason,
            )
            return "flagged: refund failed"
        return f"refund {refund.status}"
    return f"refund {refund.status}"  # pending, requires_action: a later event settles it


def _reconcile_refund(refund: Refund, event_id: str, now: datetime) -> tuple[Payment | None, str]:
    payment = _payment_from_metadata(refund.metadata)
    if payment is None and refund.payment_intent:
        payment = _payment_of_intent(refund.payment_intent)
    if payment is None:
        return None, "not one of our refunds"
    ours = refund.metadata.get("payment_id") == str(payment.id)
    if (
        ours
        and payment.status is PaymentStatus.REFUNDING
        and payment.stripe_refund_id is None
        and refund.metadata.get("attempt") == str(payment.refund_attempts)
    ):
        # Our job made it but did not get to record it (yet): the event does.
        payment.stripe_refund_id = refund.id
    if refund.id != payment.stripe_refund_id:
        if refund.status == "succeeded" and payment.status in HOLDS_MONEY:
            return payment, _apply_outside_refund(payment, refund.amount, now, event_id)
        return payment, f"another refund ({refund.status})"
    return payment, _apply_refund(payment, refund, now=now, event_id=event_id)


def _payment_of_intent(intent_id: str) -> Payment | None:
    payment = db.session.scalar(select(Payment).where(Payment.payment_intent_id == intent_id))
    if payment is not None:
        lock_row(payment)
    return payment


def _reconcile_charge(charge_id: str, event_id: str, now: datetime) -> tuple[Payment | None, str]:
    charge = stripe_gateway.gateway().retrieve_charge(charge_id)
    payment = _payment_of_intent(charge.payment_intent) if charge.payment_intent else None
    if payment is None:
        return None, "not one of our payments"
    if payment.stripe_refund_id:
        refund = stripe_gateway.gateway().retrieve_refund(payment.stripe_refund_id)
        return payment, _apply_refund(payment, refund, now=now, event_id=event_id)
    if charge.refunded and payment.status in HOLDS_MONEY:
        return payment, _apply_outside_refund(payment, charge.amount_refunded, now, event_id)
    return payment, f"charge refunded {charge.amount_refunded} of {charge.amount}"


def _apply_outside_refund(payment: Payment, cents: int, now: datetime, event_id: str) -> str:
    """Refunded in full in the Stripe dashboard, not through coop: record it as it is."""
    if cents < (payment.received_cents or payment.amount_cents):
        return f"refunded in part outside coop ({cents})"
    payment.refunded_cents = cents
    payment.refunded_at = now
    payment.refund_reason = payment.refund_reason or RefundReason.STAFF
    _move(payment, PaymentStatus.REFUNDED, now=now, event_id=event_id, note="refunded in Stripe")
    jobs.enqueue(
        "payments.send_deposit_refunded", f"deposit-refunded:{payment.id}", payment_id=payment.id
    )
    return "refunded outside coop"


def give_up_refund(payment_id: int, attempt: int, error: str) -> None:
    """The refund job failed its last attempt (Stripe unreachable for hours): staff must see it."""
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    lock_row(payment)
    if payment.status is PaymentStatus.REFUNDING and payment.refund_attempts == attempt:
        _flag(payment, FlagReason.REFUND_FAILED, now=utcnow(), note=error[:500])
    db.session.commit()


def expire_checkout(payment_id: int, session_id: str) -> str:
    """A deposit no longer due: close its open Stripe page so it cannot be paid any more. (If it
    was paid a moment before, the webhook brings the money and it is refunded.)"""
    try:
        session = stripe_gateway.gateway().retrieve_checkout_session(session_id)
        if session.status == "open":
            stripe_gateway.gateway().expire_checkout_session(session_id)
            return "expired"
        return f"already {session.status}"
    except GatewayError as exc:
        if exc.temporary:
            raise
        return f"not expired: {exc}"
