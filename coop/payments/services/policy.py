"""What an action asks: the deposit (a share of the quote, at most half by law), the cooling-off
period, and whether deposits go through Stripe or by bank transfer; the error of every rule."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from coop.accounts.models import User
from coop.actions.models import Action, ActionStatus
from coop.core import audit
from coop.core.db import unit_of_work
from coop.core.errors import DomainError
from coop.core.formatting import MAX_AMOUNT_CENTS
from coop.extensions import db
from coop.payments import stripe_gateway
from coop.payments.models import (
    PaymentMode,
)

log = logging.getLogger(__name__)

# Stripe keeps an idempotency key at least 24 hours; a refund job retried later than this first
# looks for the refund it may have made, instead of trusting the key.
IDEMPOTENCY_WINDOW = timedelta(hours=23)

MAX_DEPOSIT_PERCENT = 50  # article 7:26 BW: a consumer pays at most half in advance


class PaymentError(DomainError):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""


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


@unit_of_work
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
