"""Deposits and what happened to them: the payment record, its history, the Stripe events that
moved it, and the runs that refund every deposit of a cancelled action.

A payment is one deposit for one accepted quote. Its status only moves forward along
``TRANSITIONS``; Stripe events that arrive late or twice therefore cannot move it back. Stripe
(in "stripe" mode) and staff (in "offline" mode, where residents pay by bank transfer) change it
through the same services and the same states.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import User
from coop.actions.models import Action
from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import Quote
from coop.registrations.models import Registration


class PaymentMode(enum.StrEnum):
    STRIPE = "stripe"  # Stripe Checkout (iDEAL, card); webhooks say what happened
    OFFLINE = "offline"  # a bank transfer with our reference; staff say what arrived


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # asked; the resident has not paid (yet)
    FAILED = "failed"  # the last attempt failed; the resident can try again
    PAID = "paid"  # the asked amount arrived
    FLAGGED = "flagged"  # money arrived that we did not accept (wrong amount or currency), or a
    # refund failed: staff must look at it
    REFUNDING = "refunding"  # a refund is asked (at Stripe, or for staff to transfer)
    REFUNDED = "refunded"
    CANCELLED = "cancelled"  # no longer due (withdrawn or cancelled before it was paid)


# Where a status may go. Anything else is refused, so a repeated or late event changes nothing.
# FAILED -> PENDING is the resident starting a new attempt (not an event); CANCELLED -> PAID is
# money that arrived anyway (it is refunded at once).
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.FAILED, PaymentStatus.PAID, PaymentStatus.FLAGGED, PaymentStatus.CANCELLED}
    ),
    PaymentStatus.FAILED: frozenset(
        {PaymentStatus.PENDING, PaymentStatus.PAID, PaymentStatus.FLAGGED, PaymentStatus.CANCELLED}
    ),
    PaymentStatus.CANCELLED: frozenset({PaymentStatus.PAID, PaymentStatus.FLAGGED}),
    PaymentStatus.PAID: frozenset({PaymentStatus.REFUNDING, PaymentStatus.REFUNDED}),
    PaymentStatus.FLAGGED: frozenset({PaymentStatus.REFUNDING, PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDING: frozenset({PaymentStatus.REFUNDED, PaymentStatus.FLAGGED}),
    PaymentStatus.REFUNDED: frozenset(),
}
# The resident's money is with us.
HOLDS_MONEY = frozenset({PaymentStatus.PAID, PaymentStatus.FLAGGED, PaymentStatus.REFUNDING})
# Still to be paid.
UNPAID = frozenset({PaymentStatus.PENDING, PaymentStatus.FAILED})


class FlagReason(enum.StrEnum):
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    REFUND_FAILED = "refund_failed"


class RefundReason(enum.StrEnum):
    WITHDRAWN = "withdrawn"  # the resident withdrew within the cooling-off period
    ACTION_CANCELLED = "action_cancelled"
    STAFF = "staff"
    NOT_DUE = "not_due"  # paid after it was no longer due


class Payment(db.Model):  # type: ignore[name-defined]
    """One deposit asked for one accepted quote.

    ``registration_id`` becomes empty when the resident erases their account: the amounts,
    references and Stripe ids stay for the books, and the quote (kept with its order line in
    the installer's order, without the person) still says what the deposit was for.
    """

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("actions.id", ondelete="RESTRICT"), index=True
    )
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL"), index=True
    )
    # One deposit per quote: accepting twice (a double click) asks once.
    quote_id: Mapped[int | None] = mapped_column(
        ForeignKey("quotes.id", ondelete="SET NULL"), unique=True
    )
    mode: Mapped[PaymentMode] = mapped_column(enum_type(PaymentMode))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_type(PaymentStatus), default=PaymentStatus.PENDING, index=True
    )
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    # What the resident puts with a bank transfer (offline mode), and what staff search for.
    reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    # Stripe Checkout: the number of sessions started (the n of the idempotency key
    # checkout:<id>:<n>) and the newest session.
    checkout_attempts: Mapped[int] = mapped_column(Integer, default=0)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    received_cents: Mapped[int | None] = mapped_column(Integer)
    received_currency: Mapped[str | None] = mapped_column(String(3))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Offline mode: the day the transfer arrived on the account, as staff read it on the bank
    # statement (paid_at, which starts the cooling-off period, follows from it).
    received_on: Mapped[date | None] = mapped_column(Date)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    flag_reason: Mapped[FlagReason | None] = mapped_column(enum_type(FlagReason))
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_reason: Mapped[RefundReason | None] = mapped_column(enum_type(RefundReason))
    # Refunds asked so far: the n of the idempotency key refund:<id>:<n>. A retried job reuses
    # it; only a new request by staff (after a failed refund) makes a new one.
    refund_attempts: Mapped[int] = mapped_column(Integer, default=0)
    refund_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("refund_runs.id", ondelete="SET NULL"), index=True
    )
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    refunded_cents: Mapped[int | None] = mapped_column(Integer)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    action: Mapped[Action] = relationship()
    registration: Mapped[Registration | None] = relationship()
    quote: Mapped[Quote | None] = relationship()
    changes: Mapped[list[PaymentChange]] = relationship(
        cascade="all, delete-orphan", order_by="PaymentChange.at, PaymentChange.id"
    )

    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("received_cents IS NULL OR received_cents >= 0", name="received_positive"),
        CheckConstraint("refunded_cents IS NULL OR refunded_cents >= 0", name="refunded_positive"),
        CheckConstraint("checkout_attempts >= 0", name="checkout_attempts_positive"),
        CheckConstraint("refund_attempts >= 0", name="refund_attempts_positive"),
        Index("ix_payments_action_status", "action_id", "status"),
    )


class PaymentChange(db.Model):  # type: ignore[name-defined]
    """Every status a payment passed through, and what moved it: a Stripe event, a person, or
    coop itself (a withdrawal, a cancelled action)."""

    __tablename__ = "payment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[PaymentStatus | None] = mapped_column(
        enum_type(PaymentStatus, name="from_status")
    )
    to_status: Mapped[PaymentStatus] = mapped_column(enum_type(PaymentStatus, name="to_status"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)

    actor: Mapped[User | None] = relationship()


class EventStatus(enum.StrEnum):
    RECEIVED = "received"  # stored; the job that processes it is in the outbox
    PROCESSED = "processed"
    IGNORED = "ignored"  # a type we do not act on


class StripeEvent(db.Model):  # type: ignore[name-defined]
    """A webhook event Stripe sent, stored once by its id (unique), processed once.

    The payload is not kept: processing re-reads the object from Stripe, and the payload holds
    personal data (email addresses) we do not need.
    """

    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50), default="")
    object_id: Mapped[str] = mapped_column(String(255), default="")
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[EventStatus] = mapped_column(
        enum_type(EventStatus), default=EventStatus.RECEIVED
    )
    outcome: Mapped[str | None] = mapped_column(String(200))
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefundRunStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"  # every deposit in it is refunded, or waits for staff (bank transfers)


class RefundRun(db.Model):  # type: ignore[name-defined]
    """Refunding every deposit of a cancelled action: the payments in it point to it, and its
    progress is counted from their statuses, so a run killed half-way and run again is exact."""

    __tablename__ = "refund_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    status: Mapped[RefundRunStatus] = mapped_column(
        enum_type(RefundRunStatus), default=RefundRunStatus.RUNNING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times a worker started it
    error: Mapped[str | None] = mapped_column(Text)
