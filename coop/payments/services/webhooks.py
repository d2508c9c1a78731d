"""Stripe's webhooks. An event is a trigger, never the truth: processing it re-reads the object
from Stripe and moves the payment forward only (see ``models.TRANSITIONS``), so events that
come twice or in another order end in the same state."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import User
from coop.core import jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.payments import stripe_gateway
from coop.payments.models import (
    HOLDS_MONEY,
    EventStatus,
    FlagReason,
    Payment,
    PaymentMode,
    PaymentStatus,
    RefundReason,
    StripeEvent,
)
from coop.payments.services.lifecycle import _flag, _move
from coop.payments.services.queries import _payment_from_metadata
from coop.payments.services.refunds import _reconcile_charge, _reconcile_refund, request_refund
from coop.payments.stripe_gateway import (
    CheckoutSession,
    GatewayError,
    PaymentIntent,
    WebhookRejectedError,
)

log = logging.getLogger(__name__)


# --- webhooks ---------------------------------------------------------------------------------

SESSION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)

INTENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed"})

REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})

CHARGE_EVENTS = frozenset({"charge.refunded"})

HANDLED_EVENTS = SESSION_EVENTS | INTENT_EVENTS | REFUND_EVENTS | CHARGE_EVENTS


# Stripe's event ids ("evt_..."): what fits the column, in the characters Stripe uses.
_EVENT_ID_LENGTH = 255

_EVENT_ID = re.compile(r"[A-Za-z0-9_]+")


def _check_webhook_body(payload: bytes) -> None:
    """A webhook body is one JSON object; anything else (a list, a string) is refused before
    Stripe's library, which expects an object, trips over it."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejectedError(f"payload: {type(exc).__name__}") from exc
    if not isinstance(body, dict):
        raise WebhookRejectedError(f"payload: a JSON {type(body).__name__}, not an object")


def _check_signed_time(signature: str | None, now: datetime) -> None:
    """Stripe's library refuses a signature older than the tolerance, not one from the future:
    a clock far ahead (or a signature made for later use) is refused here."""
    tolerance = int(current_app.config.get("STRIPE_WEBHOOK_TOLERANCE") or 300)
    stamps = [
        part.split("=", 1)[1] for part in (signature or "").split(",") if part.startswith("t=")
    ]
    if not stamps or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise WebhookRejectedError("signature: no timestamp")
    if int(stamps[0]) > now.timestamp() + tolerance:
        raise WebhookRejectedError("signature: timestamp in the future")


def receive_webhook(payload: bytes, signature: str | None, *, now: datetime | None = None) -> str:
    """Verify and store one Stripe event; its processing is a job in the same transaction.

    Returns "stored", "duplicate" (this event id was stored before) or "ignored" (a type we do
    not act on, stored as such). Raises ``WebhookRejectedError`` for anything not signed by Stripe
    with our secret, or signed too long ago.
    """
    now = now or utcnow()
    _check_webhook_body(payload)
    event = stripe_gateway.gateway().verify_event(payload, signature)
    _check_signed_time(signature, now)
    if len(event.id) > _EVENT_ID_LENGTH or not _EVENT_ID.fullmatch(event.id):
        raise WebhookRejectedError(f"event id: {len(event.id)} characters, not an event id")
    if db.session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event.id)):
        db.session.rollback()
        return "duplicate"
    handled = event.type in HANDLED_EVENTS
    row = StripeEvent(
        event_id=event.id,
        type=event.type[:100],
        object_type=event.object_type,
        object_id=event.object_id,
        livemode=event.livemode,
        created=event.created,
        status=EventStatus.RECEIVED if handled else EventStatus.IGNORED,
        outcome=None if handled else "type not handled",
        received_at=now,
        processed_at=None if handled else now,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the same event at the same moment (Stripe retried quickly)
        db.session.rollback()
        return "duplicate"
    if handled:
        jobs.enqueue(
            "payments.process_stripe_event", f"stripe-event:{event.id}", event_row_id=row.id
        )
    db.session.commit()
    log.info(
        "stripe event %s id=%s type=%s", "stored" if handled else "ignored", event.id, event.type
    )
    return "stored" if handled else "ignored"


def process_event(event_row_id: int, *, now: datetime | None = None) -> str:
    """The job's work for one stored event: re-read its object from Stripe and act on that.

    Runs once per event: the row is locked and marked processed in the transaction that changes
    the payment. A Stripe that cannot be reached raises (the job is tried again later).
    """
    now = now or utcnow()
    row = db.session.scalar(
        select(StripeEvent).where(StripeEvent.id == event_row_id).with_for_update()
    )
    if row is None:
        db.session.rollback()
        return "missing"
    if row.status is not EventStatus.RECEIVED:
        db.session.rollback()
        return f"already-{row.status.value}"
    gateway = stripe_gateway.gateway()
    payment: Payment | None = None
    try:
        if row.type in SESSION_EVENTS:
            payment, outcome = _reconcile_session(
                gateway.retrieve_checkout_session(row.object_id), row.event_id, now
            )
        elif row.type in INTENT_EVENTS:
            payment, outcome = _reconcile_intent(
                gateway.retrieve_payment_intent(row.object_id), row.event_id, now
            )
        elif row.type in REFUND_EVENTS:
            payment, outcome = _reconcile_refund(
                gateway.retrieve_refund(row.object_id), row.event_id, now
            )
        elif row.type in CHARGE_EVENTS:
            payment, outcome = _reconcile_charge(row.object_id, row.event_id, now)
        else:
            outcome = "type not handled"
    except GatewayError as exc:
        if exc.temporary:
            db.session.rollback()
            raise
        # Stripe says the object does not exist (for this key): nothing we can act on.
        outcome = f"not readable at Stripe: {exc}"[:200]
    row.status = EventStatus.PROCESSED
    row.processed_at = now
    row.outcome = outcome[:200]
    row.payment_id = payment.id if payment is not None else None
    db.session.commit()
    log.info("stripe event processed id=%s type=%s: %s", row.event_id, row.type, outcome)
    return outcome


def _reconcile_session(
    session: CheckoutSession, event_id: str, now: datetime
) -> tuple[Payment | None, str]:
    payment = _payment_from_metadata(session.metadata)
    if payment is None or session.client_reference_id != str(payment.id):
        return None, "not one of our sessions"
    if payment.mode is not PaymentMode.STRIPE:
        return payment, "payment is not paid through Stripe"
    if session.status == "complete" and session.payment_status == "paid":
        return payment, _money_received(
            payment,
            cents=session.amount_total or 0,
            currency=session.currency or "",
            intent_id=session.payment_intent,
            now=now,
            event_id=event_id,
        )
    if session.status == "complete" and session.payment_intent:
        # Completed but not paid: a bank payment still on its way, or one that failed. The
        # PaymentIntent says which.
        intent = stripe_gateway.gateway().retrieve_payment_intent(session.payment_intent)
        if intent.status in ("requires_payment_method", "canceled"):
            return payment, _attempt_failed(payment, session.id, now=now, event_id=event_id)
        return payment, f"payment {intent.status}"
    return payment, f"session {session.status}, {session.payment_status}"


def _reconcile_intent(
    intent: PaymentIntent, event_id: str, now: datetime
) -> tuple[Payment | None, str]:
    payment = _payment_from_metadata(intent.metadata)
    if payment is None:
        return None, "not one of our payments"
    if payment.mode is not PaymentMode.STRIPE:
        return payment, "payment is not paid through Stripe"
    if intent.status == "succeeded":
        return payment, _money_received(
            payment,
            cents=intent.amount_received,
            currency=intent.currency,
            intent_id=intent.id,
            now=now,
            event_id=event_id,
        )
    # A card declined inside Checkout is retried there; the session's own events settle it.
    return payment, f"payment {intent.status}"


def _attempt_failed(payment: Payment, session_id: str, *, now: datetime, event_id: str) -> str:
    if payment.status is not PaymentStatus.PENDING:
        return f"already {payment.status.value}"
    if session_id != payment.checkout_session_id:
        return "an earlier attempt failed; a newer one is open"
    _move(payment, PaymentStatus.FAILED, now=now, event_id=event_id, note="payment failed")
    payment.failed_at = now
    return "failed"


def _money_received(
    payment: Payment,
    *,
    cents: int,
    currency: str,
    intent_id: str | None,
    now: datetime,
    event_id: str | None = None,
    actor: User | None = None,
) -> str:
    """Money arrived for this deposit (Stripe re-read, or staff saw the transfer): paid if it is
    what was asked, flagged for staff otherwise."""
    if payment.status in HOLDS_MONEY or payment.status is PaymentStatus.REFUNDED:
        if intent_id and payment.payment_intent_id and intent_id != payment.payment_intent_id:
            log.error(
                "second payment for deposit payment=%s intent=%s (recorded %s)",
                payment.id,
                intent_id,
                payment.payment_intent_id,
            )
            return f"a second payment ({intent_id}) for a deposit already paid: refund it in Stripe"
        return f"already {payment.status.value}"
    was_cancelled = payment.status is PaymentStatus.CANCELLED
    if intent_id:
        payment.payment_intent_id = intent_id
    payment.received_cents = cents
    payment.received_currency = currency.lower()[:3] or None
    payment.paid_at = now
    if currency.lower() != payment.currency:
        _flag(
            payment,
            FlagReason.CURRENCY_MISMATCH,
            now=now,
            actor=actor,
            event_id=event_id,
            note=f"received {cents} {currency}",
        )
        outcome = "flagged: currency"
    elif cents != payment.amount_cents:
        _flag(
            payment,
            FlagReason.AMOUNT_MISMATCH,
            now=now,
            actor=actor,
            event_id=event_id,
            note=f"received {cents}, asked {payment.amount_cents}",
        )
        outcome = "flagged: amount"
    else:
        _move(payment, PaymentStatus.PAID, now=now, actor=actor, event_id=event_id)
        jobs.enqueue(
            "payments.send_deposit_paid", f"deposit-paid:{payment.id}", payment_id=payment.id
        )
        outcome = "paid"
    if was_cancelled:
        # Paid after it was no longer due (withdrawn, or the action cancelled, a moment before).
        request_refund(None, payment, RefundReason.NOT_DUE, now=now)
        outcome += ", refunded: no longer due"
    return outcome
