"""Numbers as Dutch people type them: "12,5" with a decimal comma, or "12.5" with a point.

The same rule as for amounts in euros (``coop.core.formatting.parse_euros``): one separator
followed by exactly three digits groups thousands ("1.250" is 1250), by one or two digits it is
the decimal comma or point ("12,5", "12.75").
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

_PLAIN = re.compile(r"^[0-9]+(?:[.,][0-9]{1,2})?$")
_DUTCH_THOUSANDS = re.compile(r"^[1-9][0-9]{0,2}(?:\.[0-9]{3})+(?:,[0-9]{1,2})?$")
_ENGLISH_THOUSANDS = re.compile(r"^[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]{1,2})?$")


class NumberError(ValueError):
    """Not a number: ``code`` is "negative" or "unreadable"."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_decimal(text: str) -> Decimal:
    """ "12", "12,5", "12.5", "1.250" and "1.250,5" as a Decimal; spaces around are ignored."""
    cleaned = (text or "").strip()
    if cleaned.startswith("-"):
        raise NumberError("negative")
    if _DUTCH_THOUSANDS.match(cleaned):
        whole, _, fraction = cleaned.replace(".", "").partition(",")
    elif _ENGLISH_THOUSANDS.match(cleaned):
        whole, _, fraction = cleaned.replace(",", "").partition(".")
    elif _PLAIN.match(cleaned):
        whole, _, fraction = cleaned.replace(",", ".").partition(".")
    else:
        raise NumberError("unreadable")
    return Decimal(f"{whole}.{fraction or '0'}")


def whole(value: Decimal) -> int:
    """Rounded to a whole number, halves up (12,5 m² -> 13 m²), as people round."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
