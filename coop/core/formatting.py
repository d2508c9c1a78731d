"""Amounts and dates as Dutch readers expect them (€ 1.234,50; 23 november 2026, 14:05)."""

from __future__ import annotations

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


# Day, month in words, year and time without seconds or zone: "2 januari 2027, 10:16".
_DATETIME_PATTERNS = {"long": "d MMMM y, HH:mm", "medium": "d MMM y, HH:mm", "short": "d-M-y HH:mm"}


def local_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """An aware datetime in Europe/Amsterdam time, in the page's language."""
    if value is None:
        return ""
    return str(format_datetime(value, _DATETIME_PATTERNS.get(fmt, fmt)))


def local_date(value: date | datetime | None, fmt: str = "long") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(AMSTERDAM).date()
    return str(format_date(value, fmt))
