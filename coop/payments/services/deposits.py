"""Asking the deposit, in the transaction that accepts a quote (``orders.events.quote_accepted``)."""

from __future__ import annotations

import logging
from datetime import datetime

from coop.core import jobs
from coop.extensions import db
from coop.orders import events as order_events
from coop.orders.models import Quote
from coop.payments.models import (
    Payment,
    PaymentChange,
    PaymentStatus,
)
from coop.payments.services.policy import current_mode, deposit_amount
from coop.payments.services.queries import deposit_of_quote, reference_for

log = logging.getLogger(__name__)


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
