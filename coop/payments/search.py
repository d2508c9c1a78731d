"""Finding a deposit the way staff read it off a bank statement: by its payment reference
("COOP-000042-95", also copied without dashes or with spaces, "COOP00004295", "coop 000042 95"),
or by a part of the resident's name or address.

A reference carries two check digits (``services.reference_for``): a mistyped one is recognised
as such and said, rather than silently finding nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select

from coop.actions.models import Action
from coop.extensions import db
from coop.payments.models import Payment
from coop.payments.services import PaymentRow, payments_of_action
from coop.registrations import desk_services
from coop.registrations.desk_services import ReferenceMatch
from coop.registrations.search import fold, terms

# "COOP" and the id (zero-padded to six digits) and two check digits; without "COOP" only the
# padded form, so that a phone number or a house number is not read as a reference.
_WITH_PREFIX = re.compile(r"COOP(\d{1,12})(\d{2})")
_WITHOUT_PREFIX = re.compile(r"(\d{6})(\d{2})")


class Found(StrEnum):
    REFERENCE = "reference"  # the deposit with this reference, of this action
    OTHER_ACTION = "other_action"  # a deposit of another action of the same desk
    UNKNOWN_REFERENCE = "unknown_reference"  # a valid reference that is nobody's here
    CHECK_DIGITS = "check_digits"  # looks like a reference, but its check digits are wrong
    TEXT = "text"  # no reference: the deposits whose resident or address match the words


@dataclass
class DepositSearch:
    found: Found
    rows: list[PaymentRow] = field(default_factory=list)
    other: Payment | None = None  # for OTHER_ACTION: the deposit, to link to


def _reference_match(text: str) -> re.Match[str] | None:
    compact = re.sub(r"[\s\-./]", "", text or "").upper()
    return _WITH_PREFIX.fullmatch(compact) or _WITHOUT_PREFIX.fullmatch(compact)


def looks_like_reference(text: str) -> bool:
    return _reference_match(text) is not None


def reference_id(text: str) -> int | None:
    """The payment id in ``text`` if it is a reference whose check digits hold, else None."""
    match = _reference_match(text)
    if not match:
        return None
    payment_id, check = int(match[1]), int(match[2])
    if payment_id == 0 or (payment_id * 100 + check) % 97 != 1:
        return None
    return payment_id


def search_deposits(action: Action, query: str) -> DepositSearch:
    """The action's deposits that ``query`` finds (newest first)."""
    wanted = reference_id(query)
    if wanted is None and looks_like_reference(query):
        return DepositSearch(Found.CHECK_DIGITS)
    if wanted is not None:
        payment = db.session.get(Payment, wanted)
        if payment is None or payment.action.organisation_id != action.organisation_id:
            return DepositSearch(Found.UNKNOWN_REFERENCE)
        if payment.action_id != action.id:
            return DepositSearch(Found.OTHER_ACTION, other=payment)
        rows = [row for row in payments_of_action(action) if row.payment.id == payment.id]
        return DepositSearch(Found.REFERENCE, rows)
    words = terms(query)
    rows = [
        row
        for row in payments_of_action(action)
        if all(word in fold(f"{row.name} {row.address} {row.payment.reference}") for word in words)
    ]
    return DepositSearch(Found.TEXT, rows)


def registration_of_reference(text: str, action_ids: list[int]) -> int | None:
    """For the registrations list: the registration whose deposit has this reference, within
    the desk's actions; None if ``text`` is no (valid) reference or not theirs."""
    wanted = reference_id(text)
    if wanted is None:
        return None
    return db.session.scalar(
        select(Payment.registration_id).where(
            Payment.id == wanted, Payment.action_id.in_(action_ids)
        )
    )


@desk_services.payment_reference.provide
def registration_by_reference(text: str, action_ids: list[int]) -> ReferenceMatch | None:
    """The registrations list's search (``coop.registrations.desk_services``): a text that looks
    like a payment reference finds the registration of its deposit, or nothing."""
    if not looks_like_reference(text):
        return None
    return ReferenceMatch(registration_of_reference(text, action_ids))
