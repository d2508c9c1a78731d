"""Staff change and cancel a meeting: a new time or place is emailed once to everyone with a
place or on the waiting list, with a calendar file that replaces the event (same UID, higher
SEQUENCE); more places move the waiting list up; fewer places than people with one is refused;
a cancellation is emailed once (METHOD:CANCEL), stops the reminders and refuses new RSVPs.

Every email goes through a real SMTP server, so "once" is what a resident would see."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time, timedelta
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.core import jobs
from coop.core.audit import AuditEntry
from coop.core.models import OutboxJob
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.participation import meetings
from coop.participation.models import Meeting, Rsvp, RsvpStatus
from coop.participation.services import ParticipationError
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config
from tests.login import sign_in


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


@pytest.fixture
def recorder(smtp_server: tuple[SMTPRecorder, int]) -> SMTPRecorder:
    return smtp_server[0]


def sign_up(meeting: Meeting, name: str, email: str) -> Rsvp:
    return meetings.rsvp(meeting, name=name, email=email, language="nl", consent=True)


def details_of(meeting: Meeting, **changes: Any) -> meetings.MeetingDetails:
    """The meeting's details as they are, with ``changes``: what the edit form sends."""
    current = meetings.MeetingDetails(
        **{name: getattr(meeting, name) for name in meetings.MeetingDetails.__dataclass_fields__}
    )
    return replace(current, **changes)


def calendar_of(message: Message) -> str:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one calendar file"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def uid_of(ics: str) -> str:
    match = re.search(r"^UID:(.+)$", ics, re.MULTILINE)
    assert match, ics
    return match.group(1).strip()


def subjects(recorder: SMTPRecorder, address: str) -> list[str]:
    return [str(m["Subject"]) for m in recorder.to(address)]


def run_jobs_again() -> None:
    """A retried hand-over of every job: what was sent is not sent again."""
    for row in db.session.scalars(select(OutboxJob)).all():
        row.status = jobs.JobStatus.PENDING
    db.session.commit()
    for job_id in db.session.scalars(select(OutboxJob.id)).all():
        jobs.execute(job_id)


def act_as(client: FlaskClient, user_id: int) -> None:
    sign_in(client, user_id)


def test_a_new_time_is_emailed_once_to_each_with_a_place_or_waiting_with_an_updated_ics(
    ctx: Flask, recorder: SMTPRecorder
) -> None:
    org = factories.organisation()
    desk = factories.staff(org)
    meeting = factories.meeting(org, capacity=1)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    sign_up(meeting, "Bram Bakker", "bram@example.nl")  # waiting list
    chantal = sign_up(meeting, "Chantal Smit", "chantal@example.nl")
    meetings.cancel_rsvp(chantal)  # left the waiting list: not told
    jobs.dispatcher().run_pending()
    first_ics = calendar_of(recorder.to("anna@example.nl")[0])
    before = len(recorder.messages)

    later = meeting.starts_at + timedelta(days=1, hours=1)
    change = meetings.update_meeting(
        desk, meeting, details_of(meeting, starts_at=later, ends_at=later + timedelta(hours=2))
    )
    assert change.time_changed and not change.place_changed and change.notified == 2
    jobs.dispatcher().run_pending()
    run_jobs_again()

    new = recorder.messages[before:]
    assert sorted(to for m in new for to in [m["To"]]) == ["anna@example.nl", "bram@example.nl"]
    for address in ("anna@example.nl", "bram@example.nl"):
        (message,) = [m for m in new if m["To"] == address]
        assert "Gewijzigd" in message["Subject"]
        text = message_text(message)
        assert "Nieuwe tijd" in text
        assert later.astimezone(AMSTERDAM).strftime("%H:%M") in text
        ics = calendar_of(message)
        assert uid_of(ics) == uid_of(first_ics)  # the calendar updates its event
        assert "SEQUENCE:1" in ics and "SEQUENCE:0" in first_ics
        assert f"DTSTART:{later.strftime('%Y%m%dT%H%M%SZ')}" in ics
        assert "METHOD:PUBLISH" in ics
    assert "Je staat nog op de wachtlijst" in message_text(
        next(m for m in new if m["To"] == "bram@example.nl")
    )
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.verb == "meeting.update")).one()
    assert entry.after is not None and set(entry.after) == {"starts_at", "ends_at"}

    # A change of title only is not a change of time or place: nobody is emailed.
    meetings.update_meeting(desk, meeting, details_of(meeting, title_nl="Nieuwe titel"))
    jobs.dispatcher().run_pending()
    assert len(recorder.messages) == before + 2
    db.session.refresh(meeting)
    assert meeting.sequence == 1 and meeting.title_nl == "Nieuwe titel"


def test_a_new_place_is_emailed_with_the_old_and_the_new_place(
    ctx: Flask, recorder: SMTPRecorder
) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org, capacity=3)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    jobs.dispatcher().run_pending()
    meetings.update_meeting(
        factories.staff(org), meeting, details_of(meeting, location="Wijkcentrum Lunetten")
    )
    jobs.dispatcher().run_pending()
    message = recorder.to("anna@example.nl")[-1]
    text = message_text(message)
    assert "Nieuwe plek: Wijkcentrum Lunetten (was Buurthuis De Leeuw, Utrecht)" in text
    assert "LOCATION:Wijkcentrum Lunetten" in calendar_of(message)


def test_more_places_move_the_waiting_list_up_in_order(ctx: Flask, recorder: SMTPRecorder) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org, capacity=1)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    bram = sign_up(meeting, "Bram Bakker", "bram@example.nl")
    chantal = sign_up(meeting, "Chantal Smit", "chantal@example.nl")
    daan = sign_up(meeting, "Daan Visser", "daan@example.nl")

    change = meetings.update_meeting(factories.staff(org), meeting, details_of(meeting, capacity=3))

    assert [e.id for e in change.promoted] == [bram.id, chantal.id]  # first come, first served
    assert change.notified == 0  # no new time or place
    for entry in (bram, chantal, daan):
        db.session.refresh(entry)
    assert [bram.status, chantal.status] == [RsvpStatus.CONFIRMED] * 2
    assert daan.status is RsvpStatus.WAITING
    jobs.dispatcher().run_pending()
    assert any("plek vrij" in s.lower() for s in subjects(recorder, "chantal@example.nl"))
    assert not any("plek vrij" in s.lower() for s in subjects(recorder, "daan@example.nl"))


def test_fewer_places_than_people_with_one_is_refused_and_nothing_changes(ctx: Flask) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org, capacity=3)
    for number in range(3):
        sign_up(meeting, f"Buur {number}", f"buur{number}@example.nl")
    jobs_before = db.session.scalar(select(func.count()).select_from(OutboxJob))

    with pytest.raises(ParticipationError) as refused:
        meetings.update_meeting(
            factories.staff(org),
            meeting,
            details_of(meeting, capacity=2, title_nl="Andere titel", location="Elders"),
        )

    assert refused.value.code == "capacity_below_confirmed"
    assert refused.value.details == {"confirmed": 3}
    db.session.expire_all()
    meeting = db.session.get(Meeting, meeting.id)
    assert meeting is not None
    assert (meeting.capacity, meeting.title_nl, meeting.sequence) == (
        3,
        "Informatieavond warmtenet",
        0,
    )
    assert meetings.counts(meeting)[RsvpStatus.CONFIRMED] == 3
    assert db.session.scalar(select(func.count()).select_from(OutboxJob)) == jobs_before
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_a_meeting_that_has_started_cannot_be_changed_or_cancelled(ctx: Flask) -> None:
    org = factories.organisation()
    desk = factories.staff(org)
    started = factories.meeting(org, starts_in_days=-0.01)
    with pytest.raises(ParticipationError, match="meeting_taken_place"):
        meetings.update_meeting(desk, started, details_of(started, title_nl="Anders"))
    with pytest.raises(ParticipationError, match="meeting_taken_place"):
        meetings.cancel_meeting(desk, started)
    db.session.refresh(started)
    assert started.title_nl == "Informatieavond warmtenet" and started.cancelled_at is None


def test_cancelling_emails_each_once_then_no_reminder_and_no_rsvp(
    ctx: Flask, recorder: SMTPRecorder
) -> None:
    org = factories.organisation()
    desk = factories.staff(org)
    nb = factories.neighbourhood(org)
    meeting = factories.meeting(org, capacity=1, starts_in_days=0.75, neighbourhood_id=nb.id)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    sign_up(meeting, "Bram Bakker", "bram@example.nl")  # waiting list
    jobs.dispatcher().run_pending()
    confirmation = calendar_of(recorder.to("anna@example.nl")[0])
    assert meetings.upcoming_meetings(nb.id) == [meeting]

    assert meetings.cancel_meeting(desk, meeting, "De zaal is niet beschikbaar.") == 2
    with pytest.raises(ParticipationError, match="meeting_cancelled"):
        meetings.cancel_meeting(desk, meeting, "Nog een keer")
    jobs.dispatcher().run_pending()
    run_jobs_again()

    for address in ("anna@example.nl", "bram@example.nl"):
        cancelled = [m for m in recorder.to(address) if "Afgezegd" in m["Subject"]]
        assert len(cancelled) == 1, address
        assert "De zaal is niet beschikbaar." in message_text(cancelled[0])
        ics = calendar_of(cancelled[0])
        assert "METHOD:CANCEL" in ics and "STATUS:CANCELLED" in ics
        assert uid_of(ics) == uid_of(confirmation) and "SEQUENCE:1" in ics
    db.session.refresh(meeting)
    assert meeting.cancel_message == "De zaal is niet beschikbaar."  # not the second one
    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.verb == "meeting.cancel")
        )
        == 1
    )

    # Starts within a day, so a reminder would be due: it is not sent.
    assert meetings.send_reminders() == 0
    with pytest.raises(ParticipationError, match="meeting_cancelled"):
        sign_up(meeting, "Chantal Smit", "chantal@example.nl")
    assert meetings.upcoming_meetings(nb.id) == []
    # A place given up now frees nothing to move up into (and emails nobody).
    anna = meetings.find_rsvp(meeting, "anna@example.nl")
    assert anna is not None and meetings.cancel_rsvp(anna) is None
    jobs.dispatcher().run_pending()
    assert not any("Morgen" in s for s in subjects(recorder, "anna@example.nl"))
    assert not any("plek vrij" in s.lower() for s in subjects(recorder, "bram@example.nl"))
    assert recorder.to("chantal@example.nl") == []


def test_a_reminder_queued_before_the_cancellation_is_not_sent(
    ctx: Flask, recorder: SMTPRecorder
) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org, capacity=2, starts_in_days=0.75)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    assert meetings.send_reminders() == 1  # queued, not yet run
    meetings.cancel_meeting(factories.staff(org), meeting)
    jobs.dispatcher().run_pending()
    assert [s for s in subjects(recorder, "anna@example.nl") if "Morgen" in s] == []
    assert len([s for s in subjects(recorder, "anna@example.nl") if "Afgezegd" in s]) == 1


def _form(meeting_id: int, app: Flask, **changes: str) -> dict[str, str]:
    with app.app_context():
        meeting = db.session.get(Meeting, meeting_id)
        assert meeting is not None
        starts = meeting.starts_at.astimezone(AMSTERDAM)
        ends = meeting.ends_at.astimezone(AMSTERDAM)
        data = {
            "kind": meeting.kind.value,
            "title_nl": meeting.title_nl,
            "title_en": meeting.title_en,
            "location": meeting.location,
            "starts_on": starts.date().isoformat(),
            "starts_at": starts.strftime("%H:%M"),
            "ends_at": ends.strftime("%H:%M"),
            "capacity": str(meeting.capacity),
            "language": meeting.language.value,
            "neighbourhood": "",
        }
    return {**data, **changes}


def test_editing_through_the_desk_page_refuses_bad_input_and_changes_nothing(
    client: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        org = factories.organisation()
        staff_id = factories.staff(org).id
        meeting = factories.meeting(org, capacity=2)
        # An evening a week from now, whatever the time of day the test runs (a meeting made
        # at 23:00 would end after midnight, which the form reads as ending before it starts).
        evening = datetime.combine(
            (utcnow() + timedelta(days=7)).astimezone(AMSTERDAM).date(), time(19, 30), AMSTERDAM
        )
        meeting.starts_at, meeting.ends_at = evening, evening + timedelta(hours=2)
        db.session.commit()
        sign_up(meeting, "Anna de Vries", "anna@example.nl")
        sign_up(meeting, "Bram Bakker", "bram@example.nl")
        meeting_id = meeting.id
    act_as(client, staff_id)
    url = f"/desk/participation/meetings/{meeting_id}/edit"
    page = client.get(url)
    assert page.status_code == 200
    assert 'value="Informatieavond warmtenet"' in page.get_data(as_text=True)

    yesterday = (utcnow() - timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()
    refused = {
        "past": _form(meeting_id, app, starts_on=yesterday, title_nl="Anders"),
        "negative": _form(meeting_id, app, capacity="-3", title_nl="Anders"),
        "below": _form(meeting_id, app, capacity="1", title_nl="Anders"),
    }
    expected = {
        "past": "Kies een moment in de toekomst.",
        "negative": "Vul een getal van 1 tot 10000 in.",
        "below": "2 personen hebben al een plek",
    }
    for case, data in refused.items():
        response = factories.post_form(client, url, data)
        assert response.status_code == 200, case
        text = response.get_data(as_text=True)
        assert "Er is een probleem" in text and 'aria-invalid="true"' in text, case
        assert expected[case] in text, case
    with app.app_context():
        unchanged = db.session.get(Meeting, meeting_id)
        assert unchanged is not None
        assert (unchanged.title_nl, unchanged.capacity) == ("Informatieavond warmtenet", 2)
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0

    saved = factories.post_form(client, url, _form(meeting_id, app, capacity="5"))
    assert saved.status_code == 302
    assert client.get(saved.headers["Location"]).status_code == 200
    with app.app_context():
        changed = db.session.get(Meeting, meeting_id)
        assert changed is not None and changed.capacity == 5


def test_cancelling_through_the_desk_page_twice_emails_once(
    client: FlaskClient, app: Flask, recorder: SMTPRecorder
) -> None:
    with app.app_context():
        org = factories.organisation()
        staff_id = factories.staff(org).id
        meeting = factories.meeting(org, capacity=1)
        sign_up(meeting, "Anna de Vries", "anna@example.nl")
        sign_up(meeting, "Bram Bakker", "bram@example.nl")
        jobs.dispatcher().run_pending()
        meeting_id = meeting.id
    act_as(client, staff_id)
    url = f"/desk/participation/meetings/{meeting_id}/cancel"
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "2 personen met een plek of op de wachtlijst" in confirm.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Meeting, meeting_id).cancelled_at is None  # type: ignore[union-attr]

    token = factories.csrf_token(client, url)
    for _ in range(2):  # a double click, or the back button and again
        response = client.post(url, data={"csrf_token": token, "message": "Sorry!"})
        assert response.status_code == 302
    desk_page = client.get(f"/desk/participation/meetings/{meeting_id}").get_data(as_text=True)
    assert "Afgezegd op" in desk_page
    for address in ("anna@example.nl", "bram@example.nl"):
        assert len([s for s in subjects(recorder, address) if "Afgezegd" in s]) == 1
    # The edit page now says why it cannot be changed.
    assert "is afgezegd" in client.get(url.replace("/cancel", "/edit")).get_data(as_text=True)

    # The public page shows it as cancelled and refuses a new RSVP with the reason.
    public = f"/meetings/{meeting_id}"
    assert "Deze bijeenkomst is afgezegd" in client.get(public).get_data(as_text=True)
    data = {"name": "Chantal Smit", "email": "chantal@example.nl", "consent": "y"}
    refused = factories.post_form(client, public, data)
    assert refused.status_code == 200
    assert "Je kunt je niet meer aanmelden" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Rsvp)) == 2
