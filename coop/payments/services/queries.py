"""Reading deposits: of a quote, of a registration, of an action; their payment reference; the
page that follows accepting a quote; whether a deposit's work is installed."""

from __future__ import annotations

import re
from typing import Any

from flask import url_for
from sqlalchemy import select

from coop.core.db import lock_row
from coop.extensions import db
from coop.orders import events as order_events
from coop.orders.models import LineStatus, Quote
from coop.payments.models import (
    UNPAID,
    Payment,
    PaymentChange,
    StripeEvent,
)
from coop.registrations.models import Registration

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


def _payment_from_metadata(metadata: Any) -> Payment | None:
    raw = (metadata or {}).get("payment_id", "")
    if not str(raw).isdigit():
        return None
    payment = db.session.get(Payment, int(raw))
    if payment is not None:
        lock_row(payment)
    return payment


def work_installed(payment: Payment) -> bool:
    """Whether the work this deposit is for has been installed (or confirmed)."""
    quote = payment.quote
    return quote is not None and quote.line.status in (LineStatus.INSTALLED, LineStatus.COMPLETED)
