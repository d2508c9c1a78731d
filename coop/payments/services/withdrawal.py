"""A measure withdrawn: its deposit is no longer due when unpaid, refunded in full when paid
within the cooling-off period, kept once the work is installed."""

from __future__ import annotations

import enum
from datetime import datetime

from coop.accounts.models import User
from coop.core.db import lock_row
from coop.payments.models import (
    UNPAID,
    FlagReason,
    Payment,
    PaymentStatus,
    RefundReason,
)
from coop.payments.services.policy import _cooling_off
from coop.payments.services.queries import work_installed
from coop.payments.services.refunds import request_refund
from coop.payments.services.transfers import _cancel

# --- a measure withdrawn: its deposit ---------------------------------------------------------
#
# The rule (``coop.residents.withdrawal`` applies it per measure): an accepted measure can be
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
    """Called in the withdrawal's transaction (``coop.residents.withdrawal``): the deposit of
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
