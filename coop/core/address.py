"""Dutch addresses: postcodes (1234 AB), house numbers and additions."""

from __future__ import annotations

import re

_POSTCODE = re.compile(r"^\s*([1-9][0-9]{3})\s*([A-Za-z]{2})\s*$")
_PC4 = re.compile(r"^\s*([1-9][0-9]{3})")
# PostNL never hands out these letter pairs (they had unwanted associations).
_UNUSED_LETTERS = {"SA", "SD", "SS"}
_ADDITION = re.compile(r"^[A-Z0-9]{1,6}$")
# A house number as people write it, with its letter or addition: "12", "12a", "12 A", "12-3",
# "12 bis", "12-II", "12 1 hoog". The addition starts after the digits, with or without a
# space or hyphen.
_HOUSE_NUMBER = re.compile(r"^\s*([0-9]+)\s*(?:[-/]\s*)?([^\s].*?)?\s*$")

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
    """A house number addition ("a", "-2", "bis", "A 2", "1-hoog") in upper case without spaces
    or hyphens, as it is stored and compared; "" when empty, None when it is no addition."""
    cleaned = re.sub(r"[\s-]", "", (raw or "").strip().lstrip("-/")).upper()
    if cleaned == "":
        return ""
    return cleaned if _ADDITION.match(cleaned) else None


class HouseNumberError(ValueError):
    """Why a typed house number cannot be read: ``"format"``, ``"range"`` or ``"addition"``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def split_house_number(raw: str) -> tuple[int, str]:
    """``"12a"`` -> ``(12, "A")``, ``"12-3"`` -> ``(12, "3")``, ``"12 bis"`` -> ``(12, "BIS")``,
    ``"12"`` -> ``(12, "")``: the number and its normalised addition (see ``normalise_addition``).
    Raises ``HouseNumberError`` for what is no house number."""
    match = _HOUSE_NUMBER.match(raw or "")
    if not match:
        raise HouseNumberError("format")
    digits = match.group(1).lstrip("0") or "0"
    number = int(digits) if len(digits) <= len(str(HOUSE_NUMBER_MAX)) else HOUSE_NUMBER_MAX + 1
    if not HOUSE_NUMBER_MIN <= number <= HOUSE_NUMBER_MAX:
        raise HouseNumberError("range")
    addition = normalise_addition(match.group(2) or "")
    if addition is None:
        raise HouseNumberError("addition")
    return number, addition


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
