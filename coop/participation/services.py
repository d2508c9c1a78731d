"""What the participation services share: the error they raise, a household's address, the
links in their emails, and the small-numbers rule of published figures.

The operations themselves live per subject, so a newcomer finds them by name:
``meetings.py`` (RSVPs and the waiting list), ``surveys.py``, ``interest.py`` (heat-network
interest campaigns), ``ambassadors.py`` and ``neighbourhoods.py`` (the public page). Each
function that changes state commits its own transaction, with the outbox jobs it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from coop.core import tokens
from coop.core.errors import DomainError

# Recorded with every consent: the wording the person agreed to (see the forms).
CONSENT_VERSION = "2026-12"
# Figures about fewer households than this are never shown (survey cells, response rates).
SMALL_CELL = 5


class ParticipationError(DomainError):
    """A rule stopped the operation; ``code`` names it, the view shows the message."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code, **details)
        self.details = details


@dataclass(frozen=True)
class HouseholdAddress:
    """A Dutch address as the forms normalise it: the key of "one per household"."""

    postcode: str  # "1234 AB"
    house_number: int
    addition: str  # "" for none, upper case
    street: str

    @property
    def pc4(self) -> str:
        return self.postcode[:4]

    @property
    def line(self) -> str:
        number = f"{self.house_number}{'-' + self.addition if self.addition else ''}"
        return f"{self.street} {number}, {self.postcode}"


def street_key(street: str) -> str:
    """Streets compare without case and extra spaces: "Hondsrug" is "hondsrug  "."""
    return " ".join(street.split()).casefold()


def address_line(obj: Any) -> str:
    """The address of a response, pledge or contact row, as people write it."""
    addition = obj.house_number_addition
    number = f"{obj.house_number}{'-' + addition if addition else ''}"
    street = getattr(obj, "street", "")
    return f"{street} {number}, {obj.postcode}".strip()


def link_token(purpose: str, row_id: int) -> str:
    return tokens.sign(f"participation.{purpose}", {"id": row_id})


def id_from_token(purpose: str, token: str) -> int | None:
    payload = tokens.unsign(f"participation.{purpose}", token)
    value = payload.get("id") if payload else None
    return value if isinstance(value, int) else None


def external_url(path: str) -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/") + path


def is_small(count: int) -> bool:
    """A count of 1 to 4 households: shown as "fewer than 5", never as the number."""
    return 0 < count < SMALL_CELL
