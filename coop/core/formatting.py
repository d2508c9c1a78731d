"""Amounts and dates as Dutch readers expect them (€ 1.234,50; 23 november 2026, 14:05)."""

from __future__ import annotations

import re
from datetime import date, datetime

from flask_babel import format_date, format_datetime, get_locale

from coop.core.time import AMSTERDAM


def money(cents: int | None) -> str:
    """``123450`` -> ``€ 1.234,50`` in Dutch, ``€1,234.50`` in English."""
    if cents is None:
        return ""
    negative = cents < 0
    euros, rest = divmod(abs(cents), 100)
    locale = str(get_locale() or "nl")
    if locale.startswith("en"):
        text = f"€{euros:,}.{rest:02d}"
    else:
        text = "€ " + f"{euros:,}".replace(",", ".") + f",{rest:02d}"
    return ("-" if negative else "") + text


# One format per language, everywhere (pages, emails, calendar texts): the day first, the month
# in words, then the year, and the time without seconds or zone. Dutch "13 januari 2027, 10:16",
# English "13 January 2027, 10:16". Babel's named formats ("long", "medium") would put the
# month first in English ("January 13, 2027"), so the names map to these explicit patterns.
_DATE_PATTERNS = {"long": "d MMMM y", "medium": "d MMM y", "short": "d-M-y", "day-month": "d MMM"}
_DATETIME_PATTERNS = {"long": "d MMMM y, HH:mm", "medium": "d MMM y, HH:mm", "short": "d-M-y HH:mm"}


def local_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """An aware datetime in Europe/Amsterdam time, in the page's language."""
    if value is None:
        return ""
    return str(format_datetime(value, _DATETIME_PATTERNS.get(fmt, fmt)))


def local_date(value: date | datetime | None, fmt: str = "long") -> str:
    """A day in the page's language: "13 januari 2027", "13 January 2027" (a datetime is read
    as its day in Europe/Amsterdam)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(AMSTERDAM).date()
    return str(format_date(value, _DATE_PATTERNS.get(fmt, fmt)))


def sortable_date(value: date | datetime) -> str:
    """Dates in spreadsheet exports: "2027-01-13" and "2027-01-13 10:05" (Europe/Amsterdam),
    the one form every spreadsheet reads as a date and sorts, whatever its language. Pages,
    emails and readable documents use ``local_date``/``local_datetime``."""
    if isinstance(value, datetime):
        local = value.astimezone(AMSTERDAM) if value.tzinfo else value
        return local.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


# The most an amount could sensibly be; above it is a typing error (and it keeps cents in range).
MAX_AMOUNT_CENTS = 100_000_000  # € 1.000.000,00
_PLAIN_AMOUNT = re.compile(r"^\d+(?:[.,]\d{1,2})?$")
_DUTCH_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?$")
_ENGLISH_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?$")


class AmountError(ValueError):
    """Not an amount in euros; the message is "negative" or "unreadable"."""


def parse_euros(text: str) -> int:
    """An amount in euros as people type it -> cents.

    "12,50", "12.50", "€ 12,50", "1.234,50" and "1,234.50" are read; one separator followed by
    exactly three digits is a thousands separator ("1.234" is € 1.234,00), by one or two digits a
    decimal comma or point. Negative amounts and anything else raise ``AmountError``.
    """
    cleaned = (text or "").strip().replace("€", "").replace("\u00a0", "").replace(" ", "")
    if cleaned.startswith("-"):
        raise AmountError("negative")
    if _DUTCH_THOUSANDS.match(cleaned):
        whole, _, fraction = cleaned.replace(".", "").partition(",")
    elif _ENGLISH_THOUSANDS.match(cleaned):
        whole, _, fraction = cleaned.replace(",", "").partition(".")
    elif _PLAIN_AMOUNT.match(cleaned):
        whole, _, fraction = cleaned.replace(",", ".").partition(".")
    else:
        raise AmountError("unreadable")
    return int(whole) * 100 + int((fraction + "00")[:2])


def format_euros(cents: int | None) -> str:
    """Cents as the edit form shows them: ``1250`` -> ``"12,50"``."""
    if cents is None:
        return ""
    return f"{cents // 100},{cents % 100:02d}"
