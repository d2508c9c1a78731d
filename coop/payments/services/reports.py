"""The overview of an action's deposits and the reconciliation export staff compare with the bank."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.actions.models import Action
from coop.core import audit
from coop.core.exports import Table
from coop.extensions import db
from coop.payments.models import (
    Payment,
    PaymentStatus,
)
from coop.registrations.models import Household, Registration

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
