"""Meetings: staff plan them; anyone RSVPs with name and email; a full meeting has a waiting
list that moves up when someone cancels; a reminder the day before; attendance and a follow-up
email afterwards; and the RSVPs of people without an account are erased some weeks later.

Every change to who has a place locks the meeting's row first, so two RSVPs for the last place
(or a cancellation and a new RSVP at the same moment) are decided one after the other: the
meeting is never overbooked and the waiting list moves up exactly once per free place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import User
from coop.core import audit, jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation.models import (
    Meeting,
    MeetingKind,
    MeetingLanguage,
    Rsvp,
    RsvpStatus,
)
from coop.participation.services import ParticipationError

log = logging.getLogger(__name__)

# The reminder goes out this long before the start ("the day before").
REMINDER_BEFORE = timedelta(hours=24)


@dataclass
class MeetingDetails:
    kind: MeetingKind
    title_nl: str
    title_en: str
    description_nl: str
    description_en: str
    location: str
    online_url: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    language: MeetingLanguage
    neighbourhood_id: int | None


# What a change is audited with: every detail; the times and places are also what people are
# emailed about.
_AUDITED = [f.name for f in fields(MeetingDetails)]


@dataclass
class MeetingChange:
    """What ``update_meeting`` did: whether time or place changed (and so who is emailed), and
    who moved up from the waiting list into the extra places."""

    time_changed: bool
    place_changed: bool
    notified: int
    promoted: list[Rsvp]


def _check_details(details: MeetingDetails, now: datetime) -> None:
    """The rules of a meeting's details, the same when planning it and when changing it."""
    if details.ends_at <= details.starts_at:
        raise ParticipationError("ends_before_start")
    if details.starts_at <= now:
        raise ParticipationError("starts_in_past")
    if details.kind is MeetingKind.ONLINE and not details.online_url:
        raise ParticipationError("online_needs_link")
    if details.kind is not MeetingKind.ONLINE and not details.location:
        raise ParticipationError("needs_location")
    if details.capacity < 1:
        raise ParticipationError("capacity_positive")


def create_meeting(actor: User, details: MeetingDetails, now: datetime | None = None) -> Meeting:
    now = now or utcnow()
    assert actor.organisation_id is not None
    _check_details(details, now)
    meeting = Meeting(organisation_id=actor.organisation_id, **details.__dict__)
    db.session.add(meeting)
    db.session.flush()
    audit.record(
        actor,
        actor.organisation_id,
        "meeting.create",
        meeting,
        after=audit.snapshot(meeting, ["title_nl", "kind", "starts_at", "capacity"]),
    )
    db.session.commit()
    log.info("meeting created id=%s", meeting.id)
    return meeting


def _attendees(meeting: Meeting) -> list[Rsvp]:
    """Everyone who has a place or waits for one, and can still be emailed."""
    return [
        e
        for e in rsvps_of(meeting)
        if e.status in (RsvpStatus.CONFIRMED, RsvpStatus.WAITING) and e.email is not None
    ]


def change_refused(meeting: Meeting, now: datetime | None = None) -> str | None:
    """Why staff can no longer change or cancel the meeting (an error code), or None."""
    if meeting.cancelled_at is not None:
        return "meeting_cancelled"
    if meeting.starts_at <= (now or utcnow()):
        return "meeting_taken_place"
    return None


def update_meeting(
    actor: User, meeting: Meeting, details: MeetingDetails, now: datetime | None = None
) -> MeetingChange:
    """Change what ``create_meeting`` set, under the same rules. A new time or place is emailed
    to everyone with a place or on the waiting list, with a calendar file of a higher SEQUENCE;
    more places go to the waiting list in its order; fewer places than people who have one is
    refused, so that nobody loses a place without being asked."""
    now = now or utcnow()
    meeting = _lock(meeting)
    try:
        if (refused := change_refused(meeting, now)) is not None:
            raise ParticipationError(refused)
        _check_details(details, now)
        confirmed = _confirmed_count(meeting.id)
        if details.capacity < confirmed:
            raise ParticipationError("capacity_below_confirmed", confirmed=confirmed)
    except ParticipationError:
        db.session.rollback()  # let go of the lock
        raise
    before = audit.snapshot(meeting, _AUDITED)
    for name, value in details.__dict__.items():
        if isinstance(value, datetime):
            # In UTC as the database gives it back, so an unchanged moment compares equal.
            value = value.astimezone(UTC)
        setattr(meeting, name, value)
    after = audit.snapshot(meeting, _AUDITED)
    old, new = audit.changed(before, after)
    time_changed = bool({"starts_at", "ends_at"} & new.keys())
    place_changed = bool({"location", "online_url"} & new.keys())
    notified = 0
    if time_changed or place_changed:
        meeting.sequence += 1
        db.session.flush()
        work = [
            (
                f"meeting-changed:{meeting.id}:{meeting.sequence}:{entry.id}",
                {
                    "rsvp_id": entry.id,
                    "sequence": meeting.sequence,
                    # What it was, so the email can say what changed.
                    "old_starts_at": before["starts_at"] if time_changed else None,
                    "old_place": (before["location"] or before["online_url"])
                    if place_changed
                    else None,
                },
            )
            for entry in _attendees(meeting)
        ]
        if work:
            jobs.enqueue_many("participation.send_meeting_changed", work)
        notified = len(work)
    promoted: list[Rsvp] = []
    if "capacity" in new:
        while (first := _move_up(meeting, now)) is not None:
            promoted.append(first)
    if new:
        audit.record(
            actor, meeting.organisation_id, "meeting.update", meeting, before=old, after=new
        )
    db.session.commit()
    log.info(
        "meeting updated id=%s fields=%s notified=%d promoted=%d",
        meeting.id,
        sorted(new),
        notified,
        len(promoted),
    )
    return MeetingChange(time_changed, place_changed, notified, promoted)


def cancel_meeting(
    actor: User, meeting: Meeting, message: str = "", now: datetime | None = None
) -> int:
    """Call the meeting off: one email (with a cancelling calendar file) to everyone with a
    place or on the waiting list, no reminders, no new RSVPs. Returns how many are emailed.
    Cancelling again raises ``meeting_cancelled`` and sends nothing: the check is made under
    the meeting's lock, and each email's dedup key names the meeting and the person."""
    now = now or utcnow()
    meeting = _lock(meeting)
    if (refused := change_refused(meeting, now)) is not None:
        db.session.rollback()  # let go of the lock
        raise ParticipationError(refused)
    meeting.cancelled_at = now
    meeting.cancel_message = message or None
    meeting.sequence += 1
    db.session.flush()
    work = [
        (f"meeting-cancelled:{meeting.id}:{entry.id}", {"rsvp_id": entry.id})
        for entry in _attendees(meeting)
    ]
    if work:
        jobs.enqueue_many("participation.send_meeting_cancelled", work)
    audit.record(
        actor,
        meeting.organisation_id,
        "meeting.cancel",
        meeting,
        after={"message": message, "notified": len(work)},
    )
    db.session.commit()
    log.info("meeting cancelled id=%s notified=%d", meeting.id, len(work))
    return len(work)


def get_meeting(meeting_id: int) -> Meeting | None:
    return db.session.get(Meeting, meeting_id)


def meetings_of(organisation_id: int) -> list[Meeting]:
    return list(
        db.session.scalars(
            select(Meeting)
            .where(Meeting.organisation_id == organisation_id)
            .order_by(Meeting.starts_at.desc())
        )
    )


def upcoming_meetings(neighbourhood_id: int, now: datetime | None = None) -> list[Meeting]:
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Meeting)
            .where(
                Meeting.neighbourhood_id == neighbourhood_id,
                Meeting.ends_at > now,
                Meeting.cancelled_at.is_(None),
            )
            .order_by(Meeting.starts_at)
        )
    )


def counts(meeting: Meeting) -> dict[RsvpStatus, int]:
    rows = db.session.execute(
        select(Rsvp.status, func.count()).where(Rsvp.meeting_id == meeting.id).group_by(Rsvp.status)
    ).all()
    found = {status: count for status, count in rows}
    return {status: int(found.get(status, 0)) for status in RsvpStatus}


def places_left(meeting: Meeting) -> int:
    return max(meeting.capacity - counts(meeting)[RsvpStatus.CONFIRMED], 0)


def is_over(meeting: Meeting, now: datetime | None = None) -> bool:
    return meeting.ends_at <= (now or utcnow())


def _lock(meeting: Meeting) -> Meeting:
    """The meeting's row, locked until the commit (PostgreSQL; SQLite writes one at a time)."""
    locked = db.session.scalars(
        select(Meeting)
        .where(Meeting.id == meeting.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return locked


def _confirmed_count(meeting_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Rsvp)
            .where(Rsvp.meeting_id == meeting_id, Rsvp.status == RsvpStatus.CONFIRMED)
        )
        or 0
    )


def find_rsvp(meeting: Meeting, email: str) -> Rsvp | None:
    return db.session.scalar(
        select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.email == email.lower())
    )


def rsvp(
    meeting: Meeting,
    *,
    name: str,
    email: str,
    language: str,
    consent: bool,
    now: datetime | None = None,
) -> Rsvp:
    """A place if there is one, else a place on the waiting list. The same email twice for the
    same meeting raises ``already_rsvped`` (with the RSVP) and stores nothing new."""
    now = now or utcnow()
    email = email.strip().lower()
    if not consent:
        raise ParticipationError("no_consent")
    if meeting.starts_at <= now:
        raise ParticipationError("meeting_started")
    meeting = _lock(meeting)
    # Under the lock: a cancellation that committed a moment ago is seen.
    if meeting.cancelled_at is not None:
        db.session.rollback()
        raise ParticipationError("meeting_cancelled")
    existing = find_rsvp(meeting, email)
    if existing is not None and existing.status is not RsvpStatus.CANCELLED:
        db.session.rollback()
        raise ParticipationError("already_rsvped", rsvp=existing)
    status = (
        RsvpStatus.CONFIRMED
        if _confirmed_count(meeting.id) < meeting.capacity
        else RsvpStatus.WAITING
    )
    account = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        # Cancelled before and back again: the same row, at the end of the queue.
        entry = existing
        entry.round += 1
        entry.cancelled_at = None
        entry.promoted_at = None
        entry.reminder_sent_at = None
    else:
        entry = Rsvp(meeting_id=meeting.id, email=email, round=1)
        db.session.add(entry)
    entry.name = name
    entry.language = language
    entry.user_id = account.id if account is not None else None
    entry.status = status
    entry.queued_at = now
    entry.consent_at = now
    try:
        db.session.flush()
        jobs.enqueue(
            "participation.send_rsvp",
            f"meeting-rsvp:{entry.id}:{entry.round}",
            rsvp_id=entry.id,
            round=entry.round,
            # What the person was told at this moment: a place, or the waiting list.
            waiting=status is RsvpStatus.WAITING,
        )
        db.session.commit()
    except IntegrityError:
        # The same person twice at the same moment (a double click): the other request won.
        db.session.rollback()
        raise ParticipationError("already_rsvped", rsvp=find_rsvp(meeting, email)) from None
    log.info("rsvp id=%s meeting=%s status=%s", entry.id, meeting.id, status.value)
    return entry


def cancel_rsvp(entry: Rsvp, now: datetime | None = None) -> Rsvp | None:
    """Give up a place (or leave the waiting list). Returns whoever moved up into the place."""
    now = now or utcnow()
    meeting = _lock(entry.meeting)
    db.session.refresh(entry)
    if entry.status is RsvpStatus.CANCELLED:
        db.session.rollback()
        raise ParticipationError("already_cancelled")
    promoted = _cancel(meeting, entry, now)
    db.session.commit()
    log.info("rsvp cancelled id=%s promoted=%s", entry.id, promoted.id if promoted else None)
    return promoted


def _cancel(meeting: Meeting, entry: Rsvp, now: datetime) -> Rsvp | None:
    """Mark the RSVP cancelled and, if it held a place before the start, give the place to the
    first on the waiting list (the caller holds the meeting lock and commits)."""
    had_place = entry.status is RsvpStatus.CONFIRMED
    entry.status = RsvpStatus.CANCELLED
    entry.cancelled_at = now
    if had_place and meeting.starts_at > now:
        return _move_up(meeting, now)
    return None


def erase_rsvp(entry: Rsvp, now: datetime) -> Rsvp | None:
    """Part of erasing a person; the caller commits. Before the start the RSVP is cancelled as
    by the person, so the waiting list moves up; then name, email and the account link go, as
    ``erase_past_rsvps`` does, and the row stays so the meeting's figures (who came, how many
    cancelled) do not change. Returns whoever moved up into the place."""
    meeting = _lock(entry.meeting)
    # Under the lock: a cancellation or promotion that committed meanwhile is seen.
    db.session.refresh(entry)
    promoted = None
    if entry.status is not RsvpStatus.CANCELLED and meeting.starts_at > now:
        promoted = _cancel(meeting, entry, now)
    entry.name = None
    entry.email = None
    entry.user_id = None
    entry.erased_at = now
    return promoted


def _move_up(meeting: Meeting, now: datetime) -> Rsvp | None:
    """The first on the waiting list gets the free place (the caller holds the meeting lock)."""
    if meeting.cancelled_at is not None:
        return None  # a place at a meeting that does not take place is nothing to email about
    if _confirmed_count(meeting.id) >= meeting.capacity:
        return None
    first: Rsvp | None = db.session.scalar(
        select(Rsvp)
        .where(Rsvp.meeting_id == meeting.id, Rsvp.status == RsvpStatus.WAITING)
        .order_by(Rsvp.queued_at, Rsvp.id)
        .limit(1)
    )
    if first is None:
        return None
    first.status = RsvpStatus.CONFIRMED
    first.promoted_at = now
    db.session.flush()
    jobs.enqueue(
        "participation.send_rsvp_promoted",
        f"meeting-promoted:{first.id}:{first.round}",
        rsvp_id=first.id,
        round=first.round,
    )
    return first


def rsvps_of(meeting: Meeting) -> list[Rsvp]:
    return list(
        db.session.scalars(
            select(Rsvp).where(Rsvp.meeting_id == meeting.id).order_by(Rsvp.queued_at, Rsvp.id)
        )
    )


def record_attendance(
    actor: User, meeting: Meeting, attended_ids: set[int], now: datetime | None = None
) -> int:
    """Tick who came; everyone with a place who is not ticked did not come."""
    now = now or utcnow()
    if meeting.starts_at > now:
        raise ParticipationError("meeting_not_started")
    present = 0
    for entry in rsvps_of(meeting):
        if entry.status is RsvpStatus.CONFIRMED:
            entry.attended = entry.id in attended_ids
            present += int(entry.attended)
    audit.record(
        actor, meeting.organisation_id, "meeting.attendance", meeting, after={"present": present}
    )
    db.session.commit()
    return present


def send_follow_up(
    actor: User, meeting: Meeting, subject: str, body: str, now: datetime | None = None
) -> int:
    """Email everyone who came (slides, next steps); once per meeting."""
    now = now or utcnow()
    meeting = _lock(meeting)
    if meeting.starts_at > now:
        raise ParticipationError("meeting_not_started")
    if meeting.follow_up_sent_at is not None:
        raise ParticipationError("follow_up_sent")
    attendees = [
        e
        for e in rsvps_of(meeting)
        if e.status is RsvpStatus.CONFIRMED and e.attended and e.email is not None
    ]
    if not attendees:
        raise ParticipationError("no_attendees")
    meeting.follow_up_subject = subject
    meeting.follow_up_body = body
    meeting.follow_up_sent_at = now
    for entry in attendees:
        jobs.enqueue(
            "participation.send_follow_up",
            f"meeting-follow-up:{meeting.id}:{entry.id}",
            rsvp_id=entry.id,
        )
    audit.record(
        actor, meeting.organisation_id, "meeting.follow_up", meeting, after={"subject": subject}
    )
    db.session.commit()
    return len(attendees)


def send_reminders(now: datetime | None = None) -> int:
    """The day before: a reminder for everyone with a place who has not had one."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Rsvp)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(
            Rsvp.status == RsvpStatus.CONFIRMED,
            Rsvp.reminder_sent_at.is_(None),
            Rsvp.email.is_not(None),
            Meeting.starts_at > now,
            Meeting.starts_at <= now + REMINDER_BEFORE,
            Meeting.cancelled_at.is_(None),
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for entry in due:
        entry.reminder_sent_at = now
        jobs.enqueue(
            "participation.send_reminder",
            f"meeting-reminder:{entry.id}:{entry.round}",
            rsvp_id=entry.id,
        )
    db.session.commit()
    return len(due)


def erase_past_rsvps(now: datetime | None = None) -> int:
    """Name and email of people without an account, some weeks after the meeting ended."""
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["RSVP_RETENTION_DAYS"])
    old = db.session.scalars(
        select(Rsvp)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(Rsvp.user_id.is_(None), Rsvp.erased_at.is_(None), Meeting.ends_at <= cutoff)
        .limit(1000)
        .with_for_update(skip_locked=True)
    ).all()
    for entry in old:
        entry.name = None
        entry.email = None
        entry.erased_at = now
    db.session.commit()
    if old:
        log.info("erased %d past rsvps", len(old))
    return len(old)
