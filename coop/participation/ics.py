"""A meeting as an iCalendar file (RFC 5545), for the confirmation email and the meeting page."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from coop.core.time import utcnow

ICS_MIMETYPE = "text/calendar"


def meeting_calendar(
    *,
    uid: str,
    title: str,
    description: str,
    starts_at: datetime,
    ends_at: datetime,
    location: str,
    url: str,
    stamp: datetime | None = None,
    sequence: int = 0,
    cancelled: bool = False,
) -> bytes:
    """One VEVENT in UTC. The UID stays the same for a meeting, so calendars that import the
    file twice (confirmation, then the place from the waiting list) keep one event.

    After a change of time or place the caller passes a higher ``sequence``: a calendar
    replaces its copy of the event only with one of a higher SEQUENCE (RFC 5545 3.8.7.4).
    ``cancelled`` makes it a cancellation (METHOD:CANCEL, STATUS:CANCELLED, RFC 5546 3.2.5),
    which removes the event or marks it cancelled."""
    # Imported here: only the jobs that attach a file and the meeting's .ics page need it.
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//coop//participation//NL")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    domain = str(current_app.config["MAIL_DEFAULT_SENDER"]).rpartition("@")[2].rstrip(">")
    event.add("uid", f"{uid}@{domain or 'coop'}")
    event.add("dtstamp", stamp or utcnow())
    event.add("sequence", sequence)
    if cancelled:
        event.add("status", "CANCELLED")
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", title)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    if url:
        event.add("url", url)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
