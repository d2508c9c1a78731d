"""Dutch addresses: postcodes (1234 AB), house numbers and additions."""

from __future__ import annotations

import re

_POSTCODE = re.compile(r"^\s*([1-9][0-9]{3})\s*([A-Za-z]{2})\s*$")
_PC4 = re.compile(r"^\s*([1-9][0-9]{3})")
# PostNL never hands out these letter pairs (they had unwanted associations).
_UNUSED_LETTERS = {"SA", "SD", "SS"}
_ADDITION = re.compile(r"^[A-Z0-9]{1,6}$")

HOUSE_NUMBER_MIN = 1
HOUSE_NUMBER_MAX = 99999


def normalise_postcode(raw: str) -> str | None:
    """``"1234ab"``, ``" 1234 AB "`` and ``"1234  aB"`` all become ``"1234 AB"``; else None."""
    match = _POSTCODE.match(raw or "")
    if not match:
        return None
    digits, letters = match.group(1), match.group(2).upper()
    if letters in _UNUSED_LETTERS:
        return None
    return f"{digits} {letters}"


def pc4_of(raw: str) -> str | None:
    """The four-digit area of a full or partial postcode ("3521", "3521 AB"), else None."""
    match = _PC4.match(raw or "")
    return match.group(1) if match else None


def normalise_addition(raw: str) -> str | None:
    """A house number addition ("a", "-2", "bis") normalised to upper case; "" when empty."""
    cleaned = (raw or "").strip().lstrip("-").strip().upper().replace(" ", "")
    if cleaned == "":
        return ""
    return cleaned if _ADDITION.match(cleaned) else None


def pc4_in_ranges(pc4: str, ranges: str) -> bool:
    """Whether ``pc4`` is in a list like ``"3500-3599,3811"``."""
    value = int(pc4)
    for part in ranges.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        if int(low) <= value <= int(high or low):
            return True
    return False
