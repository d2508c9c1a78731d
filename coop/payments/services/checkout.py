"""Paying a deposit through Stripe Checkout: a session per attempt, re-used while it is open."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from flask_babel import force_locale, get_locale, gettext

from coop.accounts.models import Role, User
from coop.core.db import lock_row, unit_of_work
from coop.core.time import utcnow
from coop.core.web import localized
from coop.extensions import db
from coop.payments import stripe_gateway
from coop.payments.models import (
    UNPAID,
    Payment,
    PaymentMode,
    PaymentStatus,
)
from coop.payments.services.lifecycle import _move
from coop.payments.services.policy import PaymentError
from coop.payments.services.queries import measure_of
from coop.payments.stripe_gateway import (
    GatewayError,
)

log = logging.getLogger(__name__)


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


@unit_of_work
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
