"""Updates to a segment of residents, delivered to a real SMTP server: exactly the right
people, once each, in their language, with a working unsubscribe link; scheduled sending that
happens once; failures recorded with their reason; other organisations kept out."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from coop.accounts.models import User
from coop.actions.models import Action, Measure
from coop.core import jobs
from coop.core.audit import AuditEntry
from coop.core.mail import TemporaryMailError
from coop.core.models import EmailLog, JobStatus, OutboxJob
from coop.core.time import AMSTERDAM, utcnow
from coop.desk import updates
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.extensions import db
from coop.registrations import services as registrations
from coop.registrations.models import RegistrationStatus
from coop.residents import services as residents
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config
from tests.desk.test_dashboard import login, register, resident

S = RegistrationStatus
SMTPServer = tuple[SMTPRecorder, int]


@pytest.fixture
def app_config(smtp_server: SMTPServer) -> dict[str, Any]:
    return {**smtp_config(smtp_server[1]), "OUTBOX_MAX_ATTEMPTS": 3}


@pytest.fixture
def smtp(smtp_server: SMTPServer) -> SMTPRecorder:
    return smtp_server[0]


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def recipients(smtp: SMTPRecorder) -> list[str]:
    return sorted(address for envelope in smtp.envelopes for address in envelope.rcpt_tos)


@pytest.fixture
def segment(app: Flask) -> dict[str, Any]:
    """Org A's action with residents in and out of the segment (roof, confirmed, 3521)."""
    with app.app_context():
        org_a = factories.organisation()
        org_b = factories.organisation("Elders")
        action = factories.action(org_a)
        other = factories.action(org_b, slug="elders", pc4s="3521")
        anna = resident("anna@example.nl", name="Anna de Vries")
        register(action, S.CONFIRMED, user=anna)  # in
        register(action, S.CONFIRMED, user=anna, postcode="3521 XY")  # in: a second home
        john = resident("john@example.nl", language="en", name="John Smith")
        register(action, S.CONFIRMED, user=john)  # in, reads English
        register(action, S.CONFIRMED, email="hp@example.nl", measures=("hybrid_heat_pump",))
        register(action, S.CONFIRMED, email="zuilen@example.nl", postcode="3524 AA")
        register(action, S.WITHDRAWN, email="left@example.nl", furthest=S.CONFIRMED)
        register(action, S.QUOTED, email="quoted@example.nl")
        register(other, S.CONFIRMED, email="elders@example.nl")  # another organisation's
        db.session.commit()
        roof = db.session.scalar(select(Measure.id).where(Measure.code == "roof"))
        return {
            "action": action.id,
            "other": other.id,
            "roof": roof,
            "staff_a": factories.staff(org_a, "sanne@utrecht.example.nl").id,
            "staff_b": factories.staff(org_b, "bram@elders.example.nl").id,
            "anna": anna.id,
        }


def staff_client(app: Flask, client: FlaskClient, user_id: int) -> FlaskClient:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        login(client, user)
    client.get("/language/en")
    return client


def compose(client: FlaskClient, data: dict[str, Any], **form: Any) -> int:
    fields = {
        "action": data["action"],
        "measure": data["roof"],
        "status": "confirmed",
        "pc4": "3521",
        "subject_nl": "Informatieavond 12 maart",
        "body_nl": "Beste bewoner,\n\nKom naar de informatieavond.\nWe beginnen om 20:00.",
        "subject_en": "Information evening 12 March",
        "body_en": "Dear resident,\n\nCome to the information evening.",
    }
    fields.update(form)
    response = factories.post_form(client, "/desk/updates/new", fields)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(r"/desk/updates/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


def send_now(client: FlaskClient, update_id: int) -> Any:
    return factories.post_form(
        client,
        f"/desk/updates/{update_id}/send",
        {"when": "now"},
        token_from=f"/desk/updates/{update_id}",
    )


def test_update_reaches_exactly_the_segment_once_each_in_their_language(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)

    page = client.get(f"/desk/updates/{update_id}").get_data(as_text=True)
    assert "2 residents" in page  # Anna (two homes, one message) and John
    preview = page.split('id="preview"', 1)[1].split("</div>", 1)[0]
    assert "Informatieavond 12 maart" in preview  # Anna reads Dutch
    assert "Kom naar de informatieavond." in preview
    assert "/unsubscribe/" in preview
    assert smtp.envelopes == []  # composing and previewing send nothing

    response = send_now(client, update_id)
    assert response.status_code == 302

    assert recipients(smtp) == ["anna@example.nl", "john@example.nl"]
    [anna_mail] = smtp.to("anna@example.nl")
    [john_mail] = smtp.to("john@example.nl")
    assert subject_of(anna_mail) == "Informatieavond 12 maart"
    assert subject_of(john_mail) == "Information evening 12 March"
    assert "Kom naar de informatieavond." in message_text(anna_mail)
    assert "Come to the information evening." in message_text(john_mail)
    for mail in (anna_mail, john_mail):
        assert re.search(r"http://localhost/unsubscribe/\S+", message_text(mail))

    with app.app_context():
        deliveries = db.session.scalars(
            select(UpdateDelivery).where(UpdateDelivery.update_id == update_id)
        ).all()
        assert sorted(d.status for d in deliveries) == [DeliveryStatus.SENT] * 2
        assert {d.user_id for d in deliveries} == {
            segment["anna"],
            db.session.scalar(select(User.id).where(User.email == "john@example.nl")),
        }
        segment_update = db.session.get(SegmentUpdate, update_id)
        assert segment_update is not None
        assert segment_update.status is UpdateStatus.SENT and segment_update.sent_at
        verbs = db.session.scalars(
            select(AuditEntry.verb).where(AuditEntry.object_id == update_id).order_by(AuditEntry.id)
        ).all()
        assert verbs == ["update.compose", "update.send"]

    page = client.get(f"/desk/updates/{update_id}").get_data(as_text=True)
    assert re.search(r'id="count-sent">2<', page)
    assert re.search(r'id="count-failed">0<', page)
    assert "anna@example.nl" in page and "john@example.nl" in page

    # Pressing send again (a double click, a second tab) sends nothing more.
    again = send_now(client, update_id)
    assert again.status_code in (200, 302)
    assert recipients(smtp) == ["anna@example.nl", "john@example.nl"]


def test_no_filters_means_everyone_still_taking_part(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment, measure="", status="", pc4="")
    send_now(client, update_id)
    assert recipients(smtp) == [
        "anna@example.nl",
        "hp@example.nl",
        "john@example.nl",
        "quoted@example.nl",
        "zuilen@example.nl",
    ]  # not the one who withdrew, not org B's resident


def test_updates_carry_one_click_unsubscribe_headers_that_work(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    """RFC 8058, which large mailbox providers require of bulk mail: List-Unsubscribe with an
    https address (here the test's BASE_URL) and List-Unsubscribe-Post; the mail program's POST
    carries no cookie and no CSRF token."""
    staff_client(app, client, segment["staff_a"])
    send_now(client, compose(client, segment))
    [anna_mail] = smtp.to("anna@example.nl")
    assert anna_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # A long header may be folded onto the next line (RFC 5322); mail programs unfold it.
    unfolded = " ".join(str(anna_mail["List-Unsubscribe"]).split())
    header = re.fullmatch(r"<http://localhost(/unsubscribe/\S+/one-click)>", unfolded)
    assert header, anna_mail["List-Unsubscribe"]
    mail_program = app.test_client()  # no session, no CSRF token
    # A link checker's plain request changes nothing; a GET is not even allowed.
    assert mail_program.get(header.group(1)).status_code == 405
    assert mail_program.post(header.group(1)).status_code == 400
    with app.app_context():
        assert db.session.get(User, segment["anna"]).unsubscribed_at is None  # type: ignore[union-attr]
    response = mail_program.post(header.group(1), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(User, segment["anna"]).unsubscribed_at is not None  # type: ignore[union-attr]
    # Another resident's address, tampered with, unsubscribes nobody.
    assert (
        mail_program.post(
            header.group(1).replace("/one-click", "x/one-click"),
            data={"List-Unsubscribe": "One-Click"},
        ).status_code
        == 404
    )
    # Transactional mail carries no such header: it is not bulk mail.
    with app.app_context():
        assert all(
            "List-Unsubscribe" not in m
            for m in smtp.messages
            if m["Subject"]
            and "Informatieavond" not in m["Subject"]
            and "Information evening" not in m["Subject"]
        )


def test_unsubscribe_link_works_and_the_next_update_skips_them(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    send_now(client, compose(client, segment))
    [anna_mail] = smtp.to("anna@example.nl")
    link = re.search(r"http://localhost(/unsubscribe/\S+)", message_text(anna_mail))
    assert link

    resident_browser = app.test_client()
    page = resident_browser.get(link.group(1))
    assert page.status_code == 200 and 'id="unsubscribed"' not in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, segment["anna"]).unsubscribed_at is None  # type: ignore[union-attr]
    done = factories.post_form(resident_browser, link.group(1), {})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, segment["anna"]).unsubscribed_at is not None  # type: ignore[union-attr]
    # A tampered link does nothing.
    assert resident_browser.get(link.group(1)[:-3] + "xyz").status_code == 404

    second = compose(client, segment, subject_nl="Tweede update", subject_en="Second update")
    page = client.get(f"/desk/updates/{second}").get_data(as_text=True)
    assert "1 resident;" in page and "1 unsubscribed resident is skipped" in page
    send_now(client, second)
    assert len(smtp.to("anna@example.nl")) == 1  # still only the first update
    assert len(smtp.to("john@example.nl")) == 2
    with app.app_context():
        skipped = db.session.scalar(
            select(UpdateDelivery).where(
                UpdateDelivery.update_id == second, UpdateDelivery.user_id == segment["anna"]
            )
        )
        assert skipped is not None
        assert skipped.status is DeliveryStatus.SKIPPED and skipped.error == "unsubscribed"
    page = client.get(f"/desk/updates/{second}").get_data(as_text=True)
    assert re.search(r'id="count-skipped">1<', page) and "Unsubscribed" in page

    # Transactional mail keeps coming: withdrawing still gets its confirmation.
    with app.test_request_context():
        anna = db.session.get(User, segment["anna"])
        assert anna is not None
        registration = registrations.registrations_of(anna)[0]
        residents.withdraw(registration, "Moving house", actor=anna)
        jobs.dispatcher().run_pending()
    assert len(smtp.to("anna@example.nl")) == 2


def schedule(client: FlaskClient, update_id: int, at: datetime) -> Any:
    local = at.astimezone(AMSTERDAM)
    return factories.post_form(
        client,
        f"/desk/updates/{update_id}/send",
        {
            "when": "later",
            "send_date": local.strftime("%Y-%m-%d"),
            "send_time": local.strftime("%H:%M"),
        },
        token_from=f"/desk/updates/{update_id}",
    )


def test_scheduled_update_is_sent_once_when_due(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    at = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    assert schedule(client, update_id, at).status_code == 302
    with app.app_context():
        segment_update = db.session.get(SegmentUpdate, update_id)
        assert segment_update is not None
        assert segment_update.status is UpdateStatus.SCHEDULED
        assert segment_update.send_at == at  # Amsterdam time in the form, UTC in the database

    with app.test_request_context():
        assert updates.send_due() == 0  # not due yet
        jobs.run_periodic_tasks()
    assert smtp.envelopes == []

    with app.app_context():
        # Time passes: the moment has come.
        db.session.execute(
            update(SegmentUpdate)
            .where(SegmentUpdate.id == update_id)
            .values(send_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    with app.test_request_context():
        first = jobs.run_periodic_tasks()
        second = jobs.run_periodic_tasks()
    assert first["desk.send_scheduled_updates"] == 1
    assert second["desk.send_scheduled_updates"] == 0
    assert recipients(smtp) == ["anna@example.nl", "john@example.nl"]
    with app.app_context():
        assert db.session.get(SegmentUpdate, update_id).status is UpdateStatus.SENT  # type: ignore[union-attr]
        assert db.session.scalar(select(func.count()).select_from(UpdateDelivery)) == 2


def test_two_schedulers_at_the_same_moment_send_once(
    app: Flask, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    with app.app_context():
        staff = db.session.get(User, segment["staff_a"])
        action = db.session.get(Action, segment["action"])
        assert staff is not None and action is not None
        segment_update = updates.compose(
            staff,
            updates.UpdateInput(action, None, None, None, "Onderwerp", "", "Tekst", ""),
        )
        segment_update.status = UpdateStatus.SCHEDULED
        segment_update.send_at = utcnow() - timedelta(seconds=5)
        db.session.commit()

    barrier = threading.Barrier(2)
    started: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                started.append(updates.send_due())
                db.session.remove()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(started) == [0, 1]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UpdateDelivery)) == 5
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.name == updates.DELIVERY_JOB)
            )
            == 5
        )


def test_schedule_in_the_past_is_refused(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    response = schedule(client, update_id, utcnow() - timedelta(hours=1))
    assert response.status_code == 200
    assert "Choose a moment in the future." in response.get_data(as_text=True)
    response = factories.post_form(
        client,
        f"/desk/updates/{update_id}/send",
        {"when": "later", "send_date": "2027-02-30", "send_time": "25:00"},
        token_from=f"/desk/updates/{update_id}",
    )
    assert response.status_code == 200
    assert "Enter the date as year-month-day" in response.get_data(as_text=True)
    with app.app_context():
        segment_update = db.session.get(SegmentUpdate, update_id)
        assert segment_update is not None and segment_update.status is UpdateStatus.DRAFT
    assert smtp.envelopes == []


def test_refused_message_is_recorded_as_failed_with_the_reason(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    smtp.reply = "550 5.1.1 Mailbox unavailable"
    send_now(client, update_id)
    with app.app_context():
        deliveries = db.session.scalars(select(UpdateDelivery)).all()
        assert [d.status for d in deliveries] == [DeliveryStatus.FAILED] * 2
        assert all("550" in (d.error or "") for d in deliveries)
        assert db.session.get(SegmentUpdate, update_id).status is UpdateStatus.SENT  # type: ignore[union-attr]
    page = client.get(f"/desk/updates/{update_id}").get_data(as_text=True)
    assert re.search(r'id="count-failed">2<', page)
    assert "Mailbox unavailable" in page


def test_temporary_failure_is_retried_then_recorded(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment, status="quoted", measure="", pc4="")
    smtp.reply = "451 4.3.0 Try again later"
    send_now(client, update_id)  # first attempt, in-process after the request
    with app.app_context():
        [delivery] = db.session.scalars(select(UpdateDelivery)).all()
        assert delivery.status is DeliveryStatus.QUEUED  # waiting for the retry
        job = db.session.scalar(
            select(OutboxJob).where(OutboxJob.key == f"update-delivery:{delivery.id}")
        )
        assert job is not None and job.attempts == 1 and job.status is JobStatus.PENDING
        job_id = job.id
    with app.test_request_context(), pytest.raises(TemporaryMailError, match="451"):
        jobs.execute(job_id)  # the second attempt: still "later", tried again later
    with app.app_context():
        assert db.session.scalars(select(UpdateDelivery)).one().status is DeliveryStatus.QUEUED
    with app.test_request_context():
        # The last attempt (OUTBOX_MAX_ATTEMPTS = 3) records the failure instead of raising.
        assert jobs.execute(job_id) == "done"
    with app.app_context():
        delivery = db.session.scalars(select(UpdateDelivery)).one()
        assert delivery.status is DeliveryStatus.FAILED
        assert "451" in (delivery.error or "")
        assert db.session.get(OutboxJob, job_id).status is JobStatus.DONE  # type: ignore[union-attr]
    assert smtp.envelopes == []


def test_nothing_to_send_to_is_refused(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment, pc4="9999")
    response = send_now(client, update_id)
    assert response.status_code == 200
    assert "No resident matches this segment" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(SegmentUpdate, update_id).status is UpdateStatus.DRAFT  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pc4": "35a1"}, "Enter four digits, like 3521."),
        ({"subject_nl": ""}, "Write a subject."),
        ({"body_en": ""}, "Write both the English subject and message, or leave both empty."),
        ({"measure": "__floor__"}, "This action does not offer that measure."),
        ({"action": "999999"}, "Not a valid choice"),
        ({"status": "paid"}, "Not a valid choice"),
        ({"subject_nl": "a\x00b"}, "Remove the invisible control characters."),
    ],
)
def test_compose_form_refuses_bad_input_with_a_message(
    app: Flask,
    client: FlaskClient,
    segment: dict[str, Any],
    fields: dict[str, str],
    message: str,
) -> None:
    staff_client(app, client, segment["staff_a"])
    if fields.get("measure") == "__floor__":
        with app.app_context():
            fields = {
                "measure": str(db.session.scalar(select(Measure.id).where(Measure.code == "floor")))
            }
    data = {
        "action": segment["action"],
        "measure": segment["roof"],
        "status": "confirmed",
        "pc4": "3521",
        "subject_nl": "Onderwerp",
        "body_nl": "Tekst",
        "subject_en": "Subject",
        "body_en": "Text",
        **fields,
    }
    response = factories.post_form(client, "/desk/updates/new", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SegmentUpdate)) == 0


def test_staff_of_another_organisation_get_404(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})

    other = app.test_client()
    staff_client(app, other, segment["staff_b"])
    assert other.get(f"/desk/updates/{update_id}").status_code == 404
    assert other.get(f"/desk/updates/{update_id}/edit").status_code == 404
    token = factories.csrf_token(other, "/desk/updates/new")
    assert (
        other.post(
            f"/desk/updates/{update_id}/send", data={"csrf_token": token, "when": "now"}
        ).status_code
        == 404
    )
    assert (
        other.post(f"/desk/updates/{update_id}/cancel", data={"csrf_token": token}).status_code
        == 404
    )
    assert (
        other.post(f"/desk/updates/{update_id}/edit", data={"csrf_token": token}).status_code == 404
    )
    assert f"/desk/updates/{update_id}" not in other.get("/desk/updates").get_data(as_text=True)
    # Org A's action is not among the choices, and posting its id is refused.
    form = other.get("/desk/updates/new").get_data(as_text=True)
    action_select = form.split('id="action"', 1)[1].split("</select>", 1)[0]
    assert f'value="{segment["other"]}"' in action_select
    assert f'value="{segment["action"]}"' not in action_select
    response = factories.post_form(
        other,
        "/desk/updates/new",
        {"action": segment["action"], "subject_nl": "x", "body_nl": "y"},
    )
    assert response.status_code == 200
    assert smtp.envelopes == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SegmentUpdate)) == 1
        assert db.session.scalar(select(func.count()).select_from(UpdateDelivery)) == 0


def test_cancelling_a_scheduled_update_makes_it_a_draft(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    schedule(client, update_id, utcnow() + timedelta(hours=3))
    response = factories.post_form(
        client, f"/desk/updates/{update_id}/cancel", {}, token_from=f"/desk/updates/{update_id}"
    )
    assert response.status_code == 302
    with app.app_context():
        segment_update = db.session.get(SegmentUpdate, update_id)
        assert segment_update is not None
        assert segment_update.status is UpdateStatus.DRAFT and segment_update.send_at is None
    with app.test_request_context():
        assert updates.send_due(now=utcnow() + timedelta(days=1)) == 0
    assert smtp.envelopes == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailLog)) == 0


def test_a_measure_segment_leaves_out_residents_who_withdrew_that_measure(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    """Piet wanted a roof and a heat pump and withdrew the heat pump alone: an update about heat
    pumps is not for him any more; one about roofs still is."""
    with app.app_context():
        action = db.session.get(Action, segment["action"])
        assert action is not None
        piet = resident("piet@example.nl", name="Piet Bakker")
        both = register(action, S.CONFIRMED, user=piet, measures=("roof", "hybrid_heat_pump"))
        heat_pump = next(
            m for m in both.measures if m.action_measure.measure.code == "hybrid_heat_pump"
        )
        residents.withdraw(both, "Te duur", actor=piet, measure_ids=[heat_pump.id])
        assert both.status is S.CONFIRMED  # the roof goes on
        hybrid = heat_pump.action_measure.measure_id
    staff_client(app, client, segment["staff_a"])
    heat_pumps = compose(client, segment, measure=hybrid, status="", pc4="")
    page = client.get(f"/desk/updates/{heat_pumps}").get_data(as_text=True)
    assert "1 resident" in page
    send_now(client, heat_pumps)
    roofs = compose(
        client, segment, status="", pc4="", subject_nl="Dakisolatie", subject_en="Roofs"
    )
    send_now(client, roofs)

    def got(*subjects: str) -> list[str]:
        return sorted(
            address
            for envelope, message in zip(smtp.envelopes, smtp.messages, strict=True)
            for address in envelope.rcpt_tos
            if subject_of(message) in subjects
        )

    assert got("Informatieavond 12 maart", "Information evening 12 March") == ["hp@example.nl"]
    assert "piet@example.nl" in got("Dakisolatie", "Roofs")


def test_a_delivery_run_again_sends_nothing_its_email_log_has_sent(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    """The delivery reads what ``email_log`` holds for its message's key in the same query as
    the resident: a message sent before is not sent again, whatever its delivery row says."""
    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    assert send_now(client, update_id).status_code == 302
    assert len(smtp.envelopes) == 2
    with app.app_context():
        anna = db.session.scalar(
            select(UpdateDelivery).where(
                UpdateDelivery.update_id == update_id, UpdateDelivery.user_id == segment["anna"]
            )
        )
        assert anna is not None
        anna.status = DeliveryStatus.QUEUED
        db.session.commit()
        updates.deliver(anna.id)
        db.session.commit()
        db.session.expire_all()
        assert anna.status is DeliveryStatus.SENT
    assert len(smtp.envelopes) == 2


def test_a_delivery_is_four_statements_on_postgresql(
    app: Flask, client: FlaskClient, smtp: SMTPRecorder, segment: dict[str, Any]
) -> None:
    """Per message: lock the row, read the delivery with its resident and email log, then its
    log row, the delivery's outcome and the row done in one statement, and the commit. On
    SQLite the three writes go one by one. The rows say the same either way."""
    from sqlalchemy import event

    staff_client(app, client, segment["staff_a"])
    update_id = compose(client, segment)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert send_now(client, update_id).status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(smtp.envelopes) == 2
    logged = [s for s in statements if "INSERT INTO email_log" in s]
    assert len(logged) == 2
    if engine.dialect.name == "postgresql":
        for statement in logged:
            assert statement.startswith("WITH")
            assert "UPDATE update_deliveries" in statement and "UPDATE outbox_jobs" in statement
    else:
        assert all(s.startswith("INSERT") for s in logged)
    with app.app_context():
        deliveries = db.session.scalars(
            select(UpdateDelivery).where(UpdateDelivery.update_id == update_id)
        ).all()
        assert [(d.status, d.error) for d in deliveries] == [(DeliveryStatus.SENT, None)] * 2
        assert all(d.sent_at is not None for d in deliveries)
        logs = db.session.scalars(
            select(EmailLog).where(EmailLog.key.like(f"update:{update_id}:%"))
        ).all()
        assert sorted(log.user_id for log in logs) == sorted(d.user_id for d in deliveries)
        for log in logs:
            assert (log.status.value, log.attempts, log.template) == ("sent", 1, "segment_update")
            assert log.sent_at is not None and log.message_id and "@example.nl" in log.recipient
        rows = db.session.scalars(
            select(OutboxJob).where(OutboxJob.name == "desk.send_update_delivery")
        ).all()
        assert [(r.status, r.attempts) for r in rows] == [(JobStatus.DONE, 1)] * 2
