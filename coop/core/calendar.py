"""Calendar files (iCalendar, RFC 5545): an invitation attached to an email, and a feed that a
calendar app subscribes to. Built with the ``icalendar`` library, times in UTC."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a file is made: web processes that make none skip 3 MiB
    from icalendar import Event

PRODID = "-//coop//collectieve inkoop//NL"


@dataclass(frozen=True)
class CalendarEvent:
    """One visit. ``uid`` stays the same when the visit moves, and ``sequence`` goes up, so a
    calendar app updates the entry instead of adding a second one."""

    uid: str
    summary: str
    starts: datetime | date  # a date: an all-day event
    ends: datetime | date
    description: str = ""
    location: str = ""
    sequence: int = 0
    cancelled: bool = False


def _event(item: CalendarEvent, stamp: datetime) -> Event:
    from icalendar import Event

    event = Event()
    event.add("uid", item.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", item.sequence)
    event.add("summary", item.summary)
    if isinstance(item.starts, datetime):
        event.add("dtstart", item.starts.astimezone(UTC))
        event.add("dtend", item.ends.astimezone(UTC))  # type: ignore[union-attr]
    else:
        event.add("dtstart", item.starts)
        event.add("dtend", item.ends)
    if item.description:
        event.add("description", item.description)
    if item.location:
        event.add("location", item.location)
    event.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
    return event


def calendar_bytes(
    events: Iterable[CalendarEvent], *, name: str | None = None, publish: bool = True
) -> bytes:
    """An .ics file: ``publish`` for a feed or a file to import (METHOD:PUBLISH)."""
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH" if publish else "REQUEST")
    if name:
        calendar.add("x-wr-calname", name)
    stamp = datetime.now(UTC).replace(microsecond=0)
    for item in events:
        calendar.add_component(_event(item, stamp))
    data: bytes = calendar.to_ical()
    return data
