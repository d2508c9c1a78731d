"""Background work of participation: the emails (each under its own dedup key, so a retried
job sends nothing twice) and the periodic rounds: meeting reminders and erasing old RSVPs.

Jobs take ids, read the current state and return quietly when there is nothing to do any more
(the RSVP was cancelled or erased meanwhile, the pledge withdrawn).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import force_locale

from coop.accounts.mail import email_user
from coop.accounts.models import User
from coop.core.jobs import job, periodic
from coop.core.mail import send_email
from coop.core.web import localized
from coop.extensions import db
from coop.participation import meetings
from coop.participation.ics import ICS_MIMETYPE, meeting_calendar
from coop.participation.models import (
    Ambassador,
    InterestCampaign,
    InterestPledge,
    Meeting,
    Rsvp,
    RsvpStatus,
    SurveyResponse,
)
from coop.participation.services import external_url, link_token


def _rsvp_link(entry: Rsvp) -> str:
    return external_url(f"/meetings/rsvp/{link_token('rsvp', entry.id)}")


def _meeting_link(meeting: Meeting) -> str:
    return external_url(f"/meetings/{meeting.id}")


def meeting_ics(meeting: Meeting, language: str) -> tuple[str, str, bytes]:
    """The meeting as an .ics attachment, in the reader's language."""
    with force_locale(language):
        title = localized(meeting, "title")
        description = localized(meeting, "description")
    location = meeting.location or meeting.online_url
    data = meeting_calendar(
        uid=f"coop-meeting-{meeting.id}",
        title=title,
        description=description,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        location=location,
        url=meeting.online_url or _meeting_link(meeting),
        sequence=meeting.sequence,
        cancelled=meeting.is_cancelled,
    )
    return ("meeting.ics", ICS_MIMETYPE, data)


def _send_to_rsvp(entry: Rsvp, template: str, key: str, *, ics: bool, **context: Any) -> None:
    if entry.email is None:  # erased meanwhile
        return
    send_email(
        key=key,
        to=entry.email,
        template=template,
        language=entry.language,
        user_id=entry.user_id,
        attachments=[meeting_ics(entry.meeting, entry.language)] if ics else None,
        name=entry.name,
        meeting=entry.meeting,
        rsvp=entry,
        rsvp_link=_rsvp_link(entry),
        meeting_link=_meeting_link(entry.meeting),
        **context,
    )


def _still_on(entry: Rsvp | None) -> bool:
    """The person still has a place or waits for one, at a meeting that still takes place
    (once it is cancelled, only the cancellation is sent)."""
    return (
        entry is not None
        and entry.status is not RsvpStatus.CANCELLED
        and not entry.meeting.is_cancelled
    )


@job("participation.send_rsvp")
def send_rsvp(rsvp_id: int, round: int, waiting: bool = False) -> None:
    entry = db.session.get(Rsvp, rsvp_id)
    if entry is None or entry.round != round or not _still_on(entry):
        return
    # Sent as it was at the RSVP: on the waiting list stays so even if the place came since
    # (the "a place became free" email follows).
    _send_to_rsvp(
        entry, "meeting_rsvp", f"meeting-rsvp:{rsvp_id}:{round}", ics=not waiting, waiting=waiting
    )


@job("participation.send_rsvp_promoted")
def send_rsvp_promoted(rsvp_id: int, round: int) -> None:
    entry = db.session.get(Rsvp, rsvp_id)
    if entry is None or entry.round != round or entry.status is not RsvpStatus.CONFIRMED:
        return
    if not _still_on(entry):
        return
    _send_to_rsvp(entry, "meeting_promoted", f"meeting-promoted:{rsvp_id}:{round}", ics=True)


@job("participation.send_reminder")
def send_reminder(rsvp_id: int) -> None:
    entry = db.session.get(Rsvp, rsvp_id)
    if entry is None or entry.status is not RsvpStatus.CONFIRMED or not _still_on(entry):
        return
    _send_to_rsvp(entry, "meeting_reminder", f"meeting-reminder:{rsvp_id}:{entry.round}", ics=False)


@job("participation.send_meeting_changed")
def send_meeting_changed(
    rsvp_id: int, sequence: int, old_starts_at: str | None, old_place: str | None
) -> None:
    """The new time or place, with the calendar file as the meeting is now. An older change
    whose email goes late still goes: it says what changed then, the file is the latest."""
    entry = db.session.get(Rsvp, rsvp_id)
    if entry is None or not _still_on(entry):
        return
    _send_to_rsvp(
        entry,
        "meeting_changed",
        f"meeting-changed:{entry.meeting_id}:{sequence}:{rsvp_id}",
        ics=True,
        waiting=entry.status is RsvpStatus.WAITING,
        old_starts_at=datetime.fromisoformat(old_starts_at) if old_starts_at else None,
        old_place=old_place,
    )


@job("participation.send_meeting_cancelled")
def send_meeting_cancelled(rsvp_id: int) -> None:
    entry = db.session.get(Rsvp, rsvp_id)
    # Whoever had a place or waited when it was cancelled, unless they cancelled since.
    if entry is None or entry.status is RsvpStatus.CANCELLED or not entry.meeting.is_cancelled:
        return
    _send_to_rsvp(
        entry,
        "meeting_cancelled",
        f"meeting-cancelled:{entry.meeting_id}:{rsvp_id}",
        ics=True,
        cancel_message=entry.meeting.cancel_message or "",
    )


@job("participation.send_follow_up")
def send_follow_up(rsvp_id: int) -> None:
    entry = db.session.get(Rsvp, rsvp_id)
    if entry is None or not entry.attended:
        return
    meeting = entry.meeting
    _send_to_rsvp(
        entry,
        "meeting_follow_up",
        f"meeting-follow-up:{meeting.id}:{rsvp_id}",
        ics=False,
        subject_line=meeting.follow_up_subject or "",
        body=meeting.follow_up_body or "",
    )


@job("participation.send_survey_link")
def send_survey_link(response_id: int) -> None:
    response = db.session.get(SurveyResponse, response_id)
    if response is None:
        return
    link = external_url(f"/surveys/response/{link_token('response', response.id)}")
    send_email(
        key=f"survey-response:{response.id}",
        to=response.email,
        template="survey_response",
        language=response.language,
        survey=response.survey,
        response=response,
        link=link,
    )


def _pledge_link(entry: InterestPledge) -> str:
    return external_url(f"/interest/pledge/{link_token('pledge', entry.id)}")


def _campaign_link(campaign: InterestCampaign) -> str:
    return external_url(f"/interest/{campaign.id}")


@job("participation.send_pledge")
def send_pledge(pledge_id: int, round: int) -> None:
    entry = db.session.get(InterestPledge, pledge_id)
    if entry is None or entry.round != round or entry.withdrawn_at is not None:
        return
    send_email(
        key=f"interest-pledge:{pledge_id}:{round}",
        to=entry.email,
        template="interest_pledged",
        language=entry.language,
        name=entry.name,
        campaign=entry.campaign,
        link=_pledge_link(entry),
        campaign_link=_campaign_link(entry.campaign),
    )


@job("participation.send_threshold_reached")
def send_threshold_reached(campaign_id: int, pledge_id: int) -> None:
    entry = db.session.get(InterestPledge, pledge_id)
    campaign = db.session.get(InterestCampaign, campaign_id)
    if entry is None or campaign is None or entry.withdrawn_at is not None:
        return
    send_email(
        key=f"interest-threshold:{campaign_id}:pledge:{pledge_id}",
        to=entry.email,
        template="interest_threshold",
        language=entry.language,
        for_staff=False,
        name=entry.name,
        campaign=campaign,
        link=_pledge_link(entry),
        campaign_link=_campaign_link(campaign),
    )


@job("participation.send_threshold_reached_staff")
def send_threshold_reached_staff(campaign_id: int, user_id: int) -> None:
    user = db.session.get(User, user_id)
    campaign = db.session.get(InterestCampaign, campaign_id)
    if user is None or campaign is None:
        return
    email_user(
        user,
        "interest_threshold",
        key=f"interest-threshold:{campaign_id}:staff:{user_id}",
        for_staff=True,
        campaign=campaign,
        link=external_url(f"/desk/participation/interest/{campaign.id}"),
        campaign_link=_campaign_link(campaign),
    )


@job("participation.send_ambassador_volunteered")
def send_ambassador_volunteered(ambassador_id: int) -> None:
    ambassador = db.session.get(Ambassador, ambassador_id)
    if ambassador is None:  # the resident erased their account meanwhile
        return
    user = ambassador.user
    send_email(
        key=f"ambassador-volunteered:{ambassador.id}",
        to=user.email,
        template="ambassador_volunteered",
        language=user.language,
        user_id=user.id,
        name=user.name,
        ambassador=ambassador,
        link=external_url("/my/ambassador"),
    )


@periodic("participation.meeting_reminders")
def meeting_reminders() -> int:
    return meetings.send_reminders()


@periodic("participation.erase_past_rsvps")
def erase_past_rsvps() -> int:
    return meetings.erase_past_rsvps()
