"""The rules of deposits: what an action asks, asking it when a quote is accepted, paying through
Stripe Checkout or by bank transfer, the webhooks that say what happened, refunds, and the
overview and export staff reconcile with.

A Stripe event is a trigger, never the truth: processing it re-reads the object from Stripe and
moves the payment forward only (see ``models.TRANSITIONS``), so events that come twice or in
another order end in the same state. "Paid" comes only from Stripe (a verified webhook, then the
re-read object) or, in offline mode, from staff who saw the transfer arrive.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale, get_locale, gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop.accounts.models import Role, User
from coop.actions import events as action_events
from coop.actions.models import Action, ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row
from coop.core.exports import Table
from coop.core.formatting import MAX_AMOUNT_CENTS
from coop.core.time import AMSTERDAM, utcnow
from coop.core.web import localized
from coop.extensions import db
from coop.orders import events as order_events
from coop.orders.models import LineStatus, Quote
from coop.payments import stripe_gateway
from coop.payments.models import (
    HOLDS_MONEY,
    TRANSITIONS,
    UNPAID,
    EventStatus,
    FlagReason,
    Payment,
    PaymentChange,
    PaymentMode,
    PaymentStatus,
    RefundReason,
    RefundRun,
    RefundRunStatus,
    StripeEvent,
)
from coop.payments.stripe_gateway import (
    CheckoutSession,
    GatewayError,
    PaymentIntent,
    Refund,
    WebhookRejectedError,
)
from coop.registrations.models import Household, Registration

log = logging.getLogger(__name__)

# Stripe keeps an idempotency key at least 24 hours; a refund job retried later than this first
# looks for the refund it may have made, instead of trusting the key.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
MAX_DEPOSIT_PERCENT = 50  # article 7:26 BW: a consumer pays at most half in advance

__all__ = ["GatewayError", "PaymentError", "WebhookRejectedError"]


class PaymentError(Exception):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def current_mode() -> PaymentMode:
    return PaymentMode.STRIPE if stripe_gateway.configured() else PaymentMode.OFFLINE


def _cooling_off() -> timedelta:
    return timedelta(days=int(current_app.config.get("COOLING_OFF_DAYS", 14)))


# --- what an action asks ----------------------------------------------------------------------


@dataclass(frozen=True)
class DepositPolicy:
    """``kind`` is "none", "fixed" (``amount_cents``) or "percent" (of the quote, incl. VAT)."""

    kind: str
    amount_cents: int | None = None
    percent: int | None = None
    iban: str | None = None
    account_name: str | None = None


def policy_of(action: Action) -> DepositPolicy:
    if action.deposit_percent:
        kind = "percent"
    elif action.deposit_cents:
        kind = "fixed"
    else:
        kind = "none"
    return DepositPolicy(
        kind=kind,
        amount_cents=action.deposit_cents or None,
        percent=action.deposit_percent,
        iban=action.deposit_iban,
        account_name=action.deposit_account_name,
    )


def deposit_amount(action: Action, quote_total_cents: int) -> int | None:
    """The deposit for a quote of this total, or None when the action asks none.

    Never more than half the quote (a consumer cannot be held to more in advance); a percentage
    is rounded half up to the cent.
    """
    if action.deposit_percent:
        amount = (quote_total_cents * action.deposit_percent + 50) // 100
    elif action.deposit_cents:
        amount = action.deposit_cents
    else:
        return None
    amount = min(amount, quote_total_cents // 2)
    return amount if amount > 0 else None


_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")


def normalise_iban(text: str) -> str | None:
    """ "nl91 abna 0417 1643 00" -> "NL91ABNA0417164300", or None if it is no valid IBAN
    (the two check digits are an ISO 7064 mod-97 check over the whole number)."""
    iban = re.sub(r"[\s.\-]", "", text or "").upper()
    if not _IBAN.match(iban):
        return None
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return iban if int(digits) % 97 == 1 else None


def format_iban(iban: str | None) -> str:
    """In groups of four, as banks print it."""
    if not iban:
        return ""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def set_deposit_policy(actor: User, action: Action, policy: DepositPolicy) -> None:
    """Change what the action asks from the next accepted quote on; deposits already asked keep
    their amount."""
    if action.status is ActionStatus.CANCELLED:
        raise PaymentError("action_cancelled")
    amount = percent = None
    if policy.kind == "fixed":
        if not policy.amount_cents or policy.amount_cents <= 0:
            raise PaymentError("amount_required")
        if policy.amount_cents > MAX_AMOUNT_CENTS:
            raise PaymentError("amount_too_large")
        amount = policy.amount_cents
    elif policy.kind == "percent":
        if policy.percent is None:
            raise PaymentError("percent_required")
        if not 1 <= policy.percent <= MAX_DEPOSIT_PERCENT:
            raise PaymentError("percent_range")
        percent = policy.percent
    elif policy.kind != "none":
        raise PaymentError("kind_unknown")
    iban = None
    if policy.iban:
        iban = normalise_iban(policy.iban)
        if iban is None:
            raise PaymentError("iban_invalid")
    account_name = (policy.account_name or "").strip() or None
    if policy.kind != "none" and current_mode() is PaymentMode.OFFLINE:
        # Without Stripe residents transfer the money: they must know where to.
        if iban is None:
            raise PaymentError("iban_required")
        if account_name is None:
            raise PaymentError("account_name_required")
    fields = ["deposit_cents", "deposit_percent", "deposit_iban", "deposit_account_name"]
    before = audit.snapshot(action, fields)
    action.deposit_cents = amount
    action.deposit_percent = percent
    action.deposit_iban = iban
    action.deposit_account_name = account_name
    old, new = audit.changed(before, audit.snapshot(action, fields))
    if new:
        audit.record(
            actor, action.organisation_id, "action.deposit_update", action, before=old, after=new
        )
    db.session.commit()


# --- reading ----------------------------------------------------------------------------------


def get_payment(payment_id: int) -> Payment | None:
    return db.session.get(Payment, payment_id)


def deposit_of_quote(quote: Quote) -> Payment | None:
    return db.session.scalar(select(Payment).where(Payment.quote_id == quote.id))


def due_deposit(quote: Quote) -> Payment | None:
    """The deposit still to be paid for this quote, if any: where accepting it leads."""
    payment = deposit_of_quote(quote)
    return payment if payment is not None and payment.status in UNPAID else None


@order_events.page_after_accepting.provide
def deposit_page(quote: Quote) -> str | None:
    """After accepting a quote: the deposit page while its deposit is to be paid."""
    deposit = due_deposit(quote)
    return url_for("payments.deposit", payment_id=deposit.id) if deposit is not None else None


def deposits_of(registration: Registration) -> list[Payment]:
    return list(
        db.session.scalars(
            select(Payment).where(Payment.registration_id == registration.id).order_by(Payment.id)
        )
    )


def changes_of(payment: Payment) -> list[PaymentChange]:
    return list(payment.changes)


def events_of(payment: Payment) -> list[StripeEvent]:
    return list(
        db.session.scalars(
            select(StripeEvent)
            .where(StripeEvent.payment_id == payment.id)
            .order_by(StripeEvent.received_at, StripeEvent.id)
        )
    )


def measure_of(payment: Payment) -> Any:
    """The measure the deposit is for (None once the quote is gone)."""
    quote = payment.quote
    if quote is None:
        return None
    return quote.line.measure


def reference_for(payment_id: int) -> str:
    """ "COOP-000042-95": the id with two check digits (ISO 7064 mod 97, as in an IBAN), so a
    mistyped reference on a bank transfer is recognised as such."""
    check = 98 - (payment_id * 100) % 97
    return f"COOP-{payment_id:06d}-{check:02d}"


def parse_reference(text: str) -> int | None:
    match = re.fullmatch(r"\s*COOP[\s-]*(\d{1,12})[\s-]*(\d{2})\s*", text or "", re.IGNORECASE)
    if not match:
        return None
    payment_id, check = int(match[1]), int(match[2])
    return payment_id if (payment_id * 100 + check) % 97 == 1 else None


# --- the history and the only way a status changes ------------------------------------------


def _move(
    payment: Payment,
    to: PaymentStatus,
    *,
    now: datetime,
    actor: User | None = None,
    event_id: str | None = None,
    note: str | None = None,
) -> None:
    if to not in TRANSITIONS[payment.status]:
        # A caller that gets here has a bug: the rules below only ask for allowed moves.
        raise PaymentError("transition", status=payment.status.value, to=to.value)
    payment.changes.append(
        PaymentChange(
            at=now,
            from_status=payment.status,
            to_status=to,
            actor_id=actor.id if actor else None,
            stripe_event_id=event_id,
            note=note,
        )
    )
    log.info(
        "payment id=%s %s -> %s%s",
        payment.id,
        payment.status.value,
        to.value,
        f" event={event_id}" if event_id else "",
    )
    payment.status = to
    payment.updated_at = now


def _flag(
    payment: Payment,
    reason: FlagReason,
    *,
    now: datetime,
    actor: User | None = None,
    event_id: str | None = None,
    note: str | None = None,
) -> None:
    _move(payment, PaymentStatus.FLAGGED, now=now, actor=actor, event_id=event_id, note=note)
    payment.flag_reason = reason
    payment.flagged_at = now
    for user_id in _staff_ids(payment.action.organisation_id):
        jobs.enqueue(
            "payments.send_deposit_flagged",
            f"deposit-flagged:{payment.id}:{reason.value}:{payment.refund_attempts}:{user_id}",
            payment_id=payment.id,
            user_id=user_id,
        )


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


# --- asking the deposit -----------------------------------------------------------------------


@order_events.quote_accepted.connect
def request_deposit(quote: Quote, *, now: datetime) -> Payment | None:
    """Called in the transaction that accepts ``quote``: the deposit the action asks, once per
    quote, and the email telling the resident how to pay. The caller commits."""
    line = quote.line
    registration = line.household_registration
    action = registration.action
    amount = deposit_amount(action, quote.total_cents)
    if amount is None:
        return None
    existing = deposit_of_quote(quote)
    if existing is not None:
        return existing
    payment = Payment(
        action_id=action.id,
        registration_id=registration.id,
        quote_id=quote.id,
        mode=current_mode(),
        status=PaymentStatus.PENDING,
        amount_cents=amount,
        currency="eur",
        created_at=now,
        updated_at=now,
    )
    db.session.add(payment)
    db.session.flush()
    payment.reference = reference_for(payment.id)
    payment.changes.append(
        PaymentChange(at=now, from_status=None, to_status=PaymentStatus.PENDING, note="asked")
    )
    jobs.enqueue(
        "payments.send_deposit_requested", f"deposit-requested:{payment.id}", payment_id=payment.id
    )
    log.info("deposit asked payment=%s quote=%s amount=%s", payment.id, quote.id, amount)
    return payment


# --- paying through Stripe Checkout -----------------------------------------------------------


def _resident_of(actor: User, payment: Payment) -> None:
    registration = payment.registration
    if actor.role is not Role.RESIDENT or registration is None or registration.user_id != actor.id:
        raise PaymentError("not_yours")


def _base_url() -> str:
    return str(current_app.config["BASE_URL"])


def checkout_locale(user: User) -> str:
    """Stripe's page in the language the resident reads coop in (Dutch or English)."""
    page = str(get_locale() or "")
    if page in ("nl", "en"):
        return page
    return user.language if user.language in ("nl", "en") else "nl"


def start_checkout(actor: User, payment: Payment, *, now: datetime | None = None) -> str:
    """The address of the Stripe Checkout page for this deposit.

    An open session is reused (a second tab cannot pay twice); a new one is made only when the
    last expired or its payment failed. Its idempotency key ``checkout:<id>:<n>`` is counted
    from our record, so a retry after a crash gets the same session from Stripe.
    """
    now = now or utcnow()
    _resident_of(actor, payment)
    lock_row(payment)
    if payment.mode is not PaymentMode.STRIPE:
        raise PaymentError("offline")
    if payment.status not in UNPAID:
        raise PaymentError("not_payable", status=payment.status.value)
    gateway = stripe_gateway.gateway()
    try:
        if payment.checkout_session_id:
            session = gateway.retrieve_checkout_session(payment.checkout_session_id)
            if session.status == "open" and session.url:
                db.session.rollback()
                return session.url
            if session.status == "complete" and payment.status is PaymentStatus.PENDING:
                # Paid or being paid: the webhook will tell. Never a second session now.
                raise PaymentError("processing")
        attempt = payment.checkout_attempts + 1
        registration = payment.registration
        assert registration is not None
        with force_locale(checkout_locale(actor)):
            description = gettext(
                "Deposit for %(measure)s, %(action)s",
                measure=localized(measure_of(payment), "name") if measure_of(payment) else "",
                action=localized(payment.action, "title"),
            )
        session = gateway.create_checkout_session(
            idempotency_key=f"checkout:{payment.id}:{attempt}",
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            description=description[:250],
            locale=checkout_locale(actor),
            customer_email=actor.email,
            success_url=f"{_base_url()}/my/payments/{payment.id}?from=checkout",
            cancel_url=f"{_base_url()}/my/payments/{payment.id}?from=cancelled",
            client_reference_id=str(payment.id),
            metadata={
                "payment_id": str(payment.id),
                "attempt": str(attempt),
                "action_id": str(payment.action_id),
                "reference": payment.reference or "",
            },
        )
    except GatewayError as exc:
        db.session.rollback()
        log.warning("checkout not started payment=%s: %s", payment.id, exc)
        raise PaymentError("gateway") from exc
    if not session.url:
        db.session.rollback()
        raise PaymentError("gateway")
    payment.checkout_attempts = attempt
    payment.checkout_session_id = session.id
    if payment.status is PaymentStatus.FAILED:
        _move(payment, PaymentStatus.PENDING, now=now, actor=actor, note=f"attempt {attempt}")
    payment.updated_at = now
    db.session.commit()
    log.info("checkout started payment=%s attempt=%s session=%s", payment.id, attempt, session.id)
    return session.url


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


def _payment_from_metadata(metadata: Any) -> Payment | None:
    raw = (metadata or {}).get("payment_id", "")
    if not str(raw).isdigit():
        return None
    payment = db.session.get(Payment, int(raw))
    if payment is not None:
        lock_row(payment)
    return payment


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


# --- a measure withdrawn: its deposit ---------------------------------------------------------
#
# The rule (``coop.registrations.withdrawal`` applies it per measure): an accepted measure can be
# withdrawn within COOLING_OFF_DAYS after its quote was accepted, the moment the contract is
# made (Dutch law counts the cooling-off period of a service from the day the contract is
# concluded, art. 6:230o BW). Paying the deposit later does not move that moment. Withdrawn
# within it, a deposit not yet paid is no longer due and one paid is refunded in full. Installed
# work is never withdrawn, and its deposit is never refunded on a withdrawal.


class WithdrawalEffect(enum.StrEnum):
    """What withdrawing a measure does with its deposit (said on the page before it is done)."""

    NONE = "none"  # nothing to pay or to get back (no deposit, or already settled)
    CANCELLED = "cancelled"  # not paid yet: no longer due
    REFUNDED = "refunded"  # paid: refunded in full
    KEPT = "kept"  # paid, and kept: the work was installed, or the cooling-off period is over
    DUE = "due"  # not paid, and still due: the work stays (installed, or past the cooling-off)


def cooling_off_until(accepted_at: datetime | None) -> datetime | None:
    """The last moment an accepted measure can be withdrawn with its deposit back."""
    return None if accepted_at is None else accepted_at + _cooling_off()


def accepted_at(payment: Payment) -> datetime | None:
    """When the quote of this deposit was accepted (None once the quote is gone)."""
    quote = payment.quote
    return quote.decided_at if quote is not None else None


def work_installed(payment: Payment) -> bool:
    """Whether the work this deposit is for has been installed (or confirmed)."""
    quote = payment.quote
    return quote is not None and quote.line.status in (LineStatus.INSTALLED, LineStatus.COMPLETED)


def deposit_cooling_off_until(payment: Payment) -> datetime | None:
    """For the resident's deposit page and email: until when withdrawing the measure gives this
    deposit back; None once the work is installed (or the quote is gone). The caller compares
    it with the time."""
    if work_installed(payment):
        return None
    return cooling_off_until(accepted_at(payment))


def withdrawal_effect(payment: Payment | None, *, refund_allowed: bool) -> WithdrawalEffect:
    """What withdrawing (or, for an erasure, ending) the measure of ``payment`` does with it.

    ``refund_allowed``: the measure is withdrawn within its cooling-off period, and nothing is
    installed. A refund that failed before (flagged) or one under way is left to staff."""
    if payment is None:
        return WithdrawalEffect.NONE
    if payment.status in UNPAID:
        return WithdrawalEffect.CANCELLED
    holds = payment.status is PaymentStatus.PAID or (
        payment.status is PaymentStatus.FLAGGED
        and payment.flag_reason is not FlagReason.REFUND_FAILED
    )
    if not holds:
        return WithdrawalEffect.NONE
    return WithdrawalEffect.REFUNDED if refund_allowed else WithdrawalEffect.KEPT


def measure_withdrawn(
    payment: Payment, *, refund_allowed: bool, actor: User | None, now: datetime
) -> WithdrawalEffect:
    """Called in the withdrawal's transaction (``coop.registrations.withdrawal``): the deposit of
    the withdrawn measure is cancelled when unpaid, refunded when paid and ``refund_allowed``,
    kept otherwise. Decided again under the payment's lock, so money that arrived a moment ago
    is refunded rather than cancelled."""
    lock_row(payment)
    effect = withdrawal_effect(payment, refund_allowed=refund_allowed)
    if effect is WithdrawalEffect.CANCELLED:
        _cancel(payment, actor=actor, now=now, note="withdrawn")
    elif effect is WithdrawalEffect.REFUNDED:
        request_refund(actor, payment, RefundReason.WITHDRAWN, now=now)
    return effect


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


# --- the overview and the reconciliation export -----------------------------------------------


@dataclass(frozen=True)
class Figure:
    count: int
    cents: int


@dataclass(frozen=True)
class Overview:
    by_status: dict[PaymentStatus, Figure]
    asked: Figure  # every deposit asked and still due or paid (not cancelled)
    received_cents: int  # what arrived, whatever became of it
    refunded_cents: int

    def of(self, status: PaymentStatus) -> Figure:
        return self.by_status.get(status, Figure(0, 0))


def overview(action: Action) -> Overview:
    rows = db.session.execute(
        select(
            Payment.status,
            func.count(),
            func.coalesce(func.sum(Payment.amount_cents), 0),
            func.coalesce(func.sum(Payment.received_cents), 0),
            func.coalesce(func.sum(Payment.refunded_cents), 0),
        )
        .where(Payment.action_id == action.id)
        .group_by(Payment.status)
    ).all()
    by_status: dict[PaymentStatus, Figure] = {}
    received = refunded = 0
    for status, count, asked_cents, received_cents, refunded_cents in rows:
        by_status[status] = Figure(int(count), int(asked_cents))
        received += int(received_cents or 0)
        refunded += int(refunded_cents or 0)
    asked = [f for s, f in by_status.items() if s is not PaymentStatus.CANCELLED]
    return Overview(
        by_status=by_status,
        asked=Figure(sum(f.count for f in asked), sum(f.cents for f in asked)),
        received_cents=received,
        refunded_cents=refunded,
    )


@dataclass(frozen=True)
class PaymentRow:
    payment: Payment
    name: str
    address: str


def payments_of_action(action: Action, status: PaymentStatus | None = None) -> list[PaymentRow]:
    query = (
        select(Payment)
        .where(Payment.action_id == action.id)
        .options(
            selectinload(Payment.registration).selectinload(Registration.household),
            selectinload(Payment.registration).selectinload(Registration.user),
        )
        .order_by(Payment.id.desc())
    )
    if status is not None:
        query = query.where(Payment.status == status)
    return [row_of(p) for p in db.session.scalars(query)]


def row_of(payment: Payment) -> PaymentRow:
    registration = payment.registration
    if registration is None:
        return PaymentRow(payment, gettext("(erased)"), "")
    household: Household = registration.household
    return PaymentRow(payment, registration.user.name, household.address_line)


def _euros(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


def export_table(action: Action) -> Table:
    """Every deposit of the action with the ids Stripe and the bank know it by."""
    headers = [
        gettext("Payment"),
        gettext("Reference"),
        gettext("Status"),
        gettext("Way of paying"),
        gettext("Resident"),
        gettext("Address"),
        gettext("Quote"),
        gettext("Asked (EUR)"),
        gettext("Received"),
        gettext("Currency received"),
        gettext("Received at"),
        gettext("Flag"),
        gettext("Stripe Checkout Session"),
        gettext("Stripe PaymentIntent"),
        gettext("Refund reason"),
        gettext("Refund asked at"),
        gettext("Stripe refund"),
        gettext("Refunded"),
        gettext("Refunded at"),
        gettext("Created at"),
    ]

    def rows() -> Iterator[list[Any]]:
        for row in payments_of_action(action):
            p = row.payment
            yield [
                p.id,
                p.reference,
                p.status.value,
                p.mode.value,
                row.name,
                row.address,
                p.quote_id,
                _euros(p.amount_cents),
                _euros(p.received_cents),
                p.received_currency,
                p.paid_at,
                p.flag_reason.value if p.flag_reason else None,
                p.checkout_session_id,
                p.payment_intent_id,
                p.refund_reason.value if p.refund_reason else None,
                p.refund_requested_at,
                p.stripe_refund_id,
                _euros(p.refunded_cents),
                p.refunded_at,
                p.created_at,
            ]

    return Table(title=gettext("Deposits"), headers=headers, rows=rows())


def record_export(actor: User, action: Action) -> None:
    audit.record(actor, action.organisation_id, "payment.export", action)
    db.session.commit()
