"""Meetings: RSVP without an account, a waiting list that moves up when someone cancels, the
confirmation with its calendar file, the reminder the day before, attendance, the follow-up
email, and erasing the RSVPs of people without an account some weeks later."""

from __future__ import annotations

from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.core import jobs
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.extensions import db, mail
from coop.participation import meetings
from coop.participation.models import Rsvp, RsvpStatus
from coop.participation.services import ParticipationError, link_token
from tests import factories
from tests.conftest import message_text, smtp_config


def sign_up(meeting: Any, name: str, email: str) -> Rsvp:
    return meetings.rsvp(meeting, name=name, email=email, language="nl", consent=True)


def emails_to(address: str) -> list[EmailLog]:
    return list(db.session.scalars(select(EmailLog).where(EmailLog.recipient == address)))


def test_the_waiting_list_moves_up_when_someone_cancels(ctx: Flask) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org, capacity=2)
    anna = sign_up(meeting, "Anna de Vries", "anna@example.nl")
    bram = sign_up(meeting, "Bram Bakker", "bram@example.nl")
    chantal = sign_up(meeting, "Chantal Smit", "chantal@example.nl")
    daan = sign_up(meeting, "Daan Visser", "daan@example.nl")
    assert [anna.status, bram.status] == [RsvpStatus.CONFIRMED] * 2
    assert [chantal.status, daan.status] == [RsvpStatus.WAITING] * 2

    promoted = meetings.cancel_rsvp(bram)

    assert promoted is not None and promoted.id == chantal.id  # first come, first served
    db.session.refresh(daan)
    assert daan.status is RsvpStatus.WAITING
    assert meetings.counts(meeting)[RsvpStatus.CONFIRMED] == 2
    jobs.dispatcher().run_pending()
    subjects = [e.subject for e in emails_to("chantal@example.nl")]
    assert any("wachtlijst" in s.lower() for s in subjects)
    assert any("plek vrij" in s.lower() for s in subjects), subjects

    # Leaving the waiting list frees no place: nobody moves up.
    assert meetings.cancel_rsvp(daan) is None
    with pytest.raises(ParticipationError, match="already_cancelled"):
        meetings.cancel_rsvp(daan)


def test_a_double_rsvp_is_refused_and_stores_nothing(ctx: Flask) -> None:
    meeting = factories.meeting(factories.organisation(), capacity=5)
    sign_up(meeting, "Anna de Vries", "anna@example.nl")
    with pytest.raises(ParticipationError) as refused:
        sign_up(meeting, "Anna", " ANNA@example.nl ")
    assert refused.value.code == "already_rsvped"
    assert db.session.scalar(select(func.count()).select_from(Rsvp)) == 1


def test_cancelled_and_back_again_queues_at_the_end(ctx: Flask) -> None:
    meeting = factories.meeting(factories.organisation(), capacity=1)
    anna = sign_up(meeting, "Anna de Vries", "anna@example.nl")
    bram = sign_up(meeting, "Bram Bakker", "bram@example.nl")
    meetings.cancel_rsvp(anna)  # Bram moves up
    again = sign_up(meeting, "Anna de Vries", "anna@example.nl")
    assert again.id == anna.id and again.round == 2 and again.status is RsvpStatus.WAITING
    db.session.refresh(bram)
    assert bram.status is RsvpStatus.CONFIRMED


def test_no_rsvp_without_consent_or_after_the_start(ctx: Flask) -> None:
    org = factories.organisation()
    meeting = factories.meeting(org)
    with pytest.raises(ParticipationError, match="no_consent"):
        meetings.rsvp(meeting, name="Anna", email="anna@example.nl", language="nl", consent=False)
    started = factories.meeting(org, starts_in_days=-0.01)
    with pytest.raises(ParticipationError, match="meeting_started"):
        sign_up(started, "Anna", "anna@example.nl")
    assert db.session.scalar(select(func.count()).select_from(Rsvp)) == 0


def test_confirmation_over_smtp_carries_an_ics_file_and_is_sent_once(
    app: Flask, smtp_server: Any
) -> None:
    recorder, port = smtp_server
    app.config.update(smtp_config(port))
    mail.init_app(app)  # Flask-Mail reads its settings when it is bound
    with app.test_request_context():
        meeting = factories.meeting(factories.organisation(), capacity=3)
        entry = sign_up(meeting, "Anna de Vries", "anna@example.nl")
        jobs.dispatcher().run_pending()
        # A retried job (a second hand-over of the same row) sends nothing again.
        row = db.session.scalars(select(jobs.OutboxJob)).one()
        row.status = jobs.JobStatus.PENDING
        db.session.commit()
        jobs.execute(row.id)
        entry_id = entry.id
    messages = recorder.to("anna@example.nl")
    assert len(messages) == 1
    message: Message = messages[0]
    assert "Informatieavond warmtenet" in message["Subject"]
    calendars = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendars) == 1
    payload = calendars[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    ics = payload.decode()
    assert "BEGIN:VEVENT" in ics and "SUMMARY:Informatieavond warmtenet" in ics
    assert "DTSTART:" in ics and ics.rstrip().endswith("END:VCALENDAR")
    with app.test_request_context():
        assert f"/meetings/rsvp/{link_token('rsvp', entry_id)}" in message_text(message)


def test_reminder_the_day_before_goes_once_to_those_with_a_place(ctx: Flask) -> None:
    org = factories.organisation()
    tomorrow = factories.meeting(org, capacity=1, starts_in_days=0.75)
    later = factories.meeting(org, capacity=1, starts_in_days=5)
    sign_up(tomorrow, "Anna de Vries", "anna@example.nl")
    sign_up(tomorrow, "Bram Bakker", "bram@example.nl")  # waiting list: no reminder
    sign_up(later, "Chantal Smit", "chantal@example.nl")
    jobs.dispatcher().run_pending()
    assert meetings.send_reminders() == 1
    assert meetings.send_reminders() == 0
    jobs.dispatcher().run_pending()
    assert any("Morgen" in e.subject for e in emails_to("anna@example.nl"))
    assert not any("Morgen" in e.subject for e in emails_to("bram@example.nl"))


def test_attendance_and_the_follow_up_email_to_those_who_came(ctx: Flask) -> None:
    org = factories.organisation()
    desk = factories.staff(org)
    meeting = factories.meeting(org, capacity=5)
    anna = sign_up(meeting, "Anna de Vries", "anna@example.nl")
    sign_up(meeting, "Bram Bakker", "bram@example.nl")
    with pytest.raises(ParticipationError, match="meeting_not_started"):
        meetings.record_attendance(desk, meeting, {anna.id})
    meeting.starts_at = utcnow() - timedelta(hours=3)
    meeting.ends_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    assert meetings.record_attendance(desk, meeting, {anna.id}) == 1
    assert meetings.send_follow_up(desk, meeting, "Dank voor uw komst", "De sheets: ...") == 1
    with pytest.raises(ParticipationError, match="follow_up_sent"):
        meetings.send_follow_up(desk, meeting, "Nog eens", "...")
    jobs.dispatcher().run_pending()
    assert [e.subject for e in emails_to("anna@example.nl")][-1] == "Dank voor uw komst"
    assert not any(e.subject == "Dank voor uw komst" for e in emails_to("bram@example.nl"))


def test_rsvps_without_an_account_are_erased_weeks_after_the_meeting(ctx: Flask) -> None:
    org = factories.organisation()
    resident = factories.staff(org, "jan@example.nl")  # someone with an account
    meeting = factories.meeting(org, capacity=5)
    guest = sign_up(meeting, "Anna de Vries", "anna@example.nl")
    member = sign_up(meeting, "Jan", "jan@example.nl")
    assert member.user_id == resident.id
    meeting.starts_at = utcnow() - timedelta(days=40)
    meeting.ends_at = meeting.starts_at + timedelta(hours=2)
    db.session.commit()
    assert meetings.erase_past_rsvps() == 1
    db.session.refresh(guest)
    db.session.refresh(member)
    assert guest.name is None and guest.email is None and guest.erased_at is not None
    assert member.email == "jan@example.nl"
    assert meetings.counts(meeting)[RsvpStatus.CONFIRMED] == 2  # the figures stay


def test_rsvp_through_the_page_with_bad_input_and_twice(client: Any, app: Flask) -> None:
    with app.app_context():
        meeting_id = factories.meeting(factories.organisation(), capacity=1).id
    url = f"/meetings/{meeting_id}"
    page = factories.post_form(client, url, {"name": "<b>", "email": "nope"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Er is een probleem" in text and 'aria-invalid="true"' in text
    data = {"name": "Anna de Vries", "email": "anna@example.nl", "consent": "y"}
    assert factories.post_form(client, url, data).status_code == 302
    again = factories.post_form(client, url, data)
    assert again.status_code == 200
    assert "staat al op de lijst" in again.get_data(as_text=True)
    assert "wachtlijst" in client.get(url).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Rsvp)) == 1
    calendar = client.get(f"{url}/calendar.ics")
    assert calendar.mimetype == "text/calendar" and b"BEGIN:VEVENT" in calendar.data
