"""Working days in the Netherlands: weekdays that are not a national holiday.

Deadlines given "in working days" (an installer's answer to an order) end at the close of the
last working day in Amsterdam, so that an order sent on Friday evening still gets five full days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

from coop.core.time import AMSTERDAM


@lru_cache(maxsize=32)
def _dutch_holidays(year: int) -> frozenset[date]:
    # Imported on first use: only deadlines need it (an approval, its job), and its tables of
    # every country take 3.6 MiB in each web process.
    import holidays

    return frozenset(holidays.country_holidays("NL", years=year))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _dutch_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def working_days_deadline(sent_at: datetime, days: int) -> datetime:
    """The end (23:59:59 Amsterdam time) of the ``days``-th working day after ``sent_at``."""
    local_day = sent_at.astimezone(AMSTERDAM).date()
    last = add_working_days(local_day, days)
    return datetime.combine(last, time(23, 59, 59), tzinfo=AMSTERDAM)


def local_today(now: datetime) -> date:
    return now.astimezone(AMSTERDAM).date()


def end_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=AMSTERDAM)
