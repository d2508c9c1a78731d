"""Sending email over a real SMTP server (aiosmtpd on loopback): once per key, retried when the
server says "later" (4xx) or cannot be reached, given up when it says "never" (5xx)."""

from __future__ import annotations

import smtplib
import socket
import time
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

import coop
from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services import issue_login_token, login_link
from coop.core import jobs
from coop.core import mail as mail_module
from coop.core.mail import TemporaryMailError, message_id_for, render_email, send_email
from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from tests.conftest import SMTPRecorder, free_port, smtp_config

SMTPServer = tuple[SMTPRecorder, int]


@pytest.fixture
def app_config(request: pytest.FixtureRequest, smtp_server: SMTPServer) -> dict[str, Any]:
    """The recording SMTP server; ``indirect`` parametrisation swaps in a broken one."""
    port = smtp_server[1]
    kind = getattr(request, "param", "recorder")
    if kind == "closed":
        port = free_port()  # nothing listens there
    elif kind == "silent":
        # Accepts the TCP connection (the kernel's backlog does) but never says a word.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        request.addfinalizer(listener.close)
        port = listener.getsockname()[1]
    return {**smtp_config(port), "MAIL_TIMEOUT": 1}


@pytest.fixture
def smtp(smtp_server: SMTPServer) -> SMTPRecorder:
    return smtp_server[0]


def resident(email: str = "anna@example.nl", language: str = "nl") -> User:
    user = User(email=email, name="Anna de Vries", role=Role.RESIDENT, language=language)
    db.session.add(user)
    db.session.commit()
    return user


def send_login_link_mail(user: User, key: str) -> EmailLog:
    token = issue_login_token(user, LoginPurpose.LOGIN)
    db.session.commit()
    entry = send_email(
        key=key,
        to=user.email,
        template="login_link",
        language=user.language,
        user_id=user.id,
        name=user.name,
        link=login_link(token),
        expires_at=token.expires_at,
    )
    db.session.commit()
    return entry


def enqueue_login_link(user: User) -> OutboxJob:
    """What a service does: a login token and the job that mails it, in one transaction."""
    token = issue_login_token(user, LoginPurpose.LOGIN)
    db.session.flush()
    row = jobs.enqueue("accounts.send_login_link", f"login-link:{token.id}", token_id=token.id)
    db.session.commit()
    return row


def header(message: Message, name: str) -> str:
    return str(make_header(decode_header(message[name])))


def parts(message: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def email_logs() -> list[EmailLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(EmailLog).order_by(EmailLog.id)))


def reloaded(row: OutboxJob) -> OutboxJob:
    """The job as the database has it now (the job ran in its own transaction)."""
    db.session.expire_all()
    fresh = db.session.get(OutboxJob, row.id)
    assert fresh is not None
    return fresh


def later(minutes: int = 1) -> Any:
    return utcnow() + timedelta(minutes=minutes)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_message_arrives_with_text_html_and_the_keys_message_id(
    ctx: Flask, smtp: SMTPRecorder, language: str
) -> None:
    user = resident(language=language)
    entry = send_login_link_mail(user, "login-link:test-1")

    assert len(smtp.envelopes) == 1
    assert smtp.envelopes[0].rcpt_tos == ["anna@example.nl"]
    [message] = smtp.to("anna@example.nl")
    assert header(message, "To") == "anna@example.nl"
    assert header(message, "From") == ctx.config["MAIL_DEFAULT_SENDER"]
    assert message["Message-ID"] == message_id_for("login-link:test-1") == entry.message_id
    subject = header(message, "Subject")
    assert subject.strip()
    assert subject == entry.subject
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert "/login/" in body["text/plain"]
    assert 'href="http://localhost/login/' in body["text/html"]
    # Rendered in the recipient's language, not the language of whoever triggered it.
    assert f'<html lang="{language}">' in body["text/html"]
    expected_subject, expected_text, _ = render_email(
        "login_link",
        language,
        name=user.name,
        link=_link_in(body["text/plain"]),
        expires_at=entry_expiry(user),
    )
    assert subject == expected_subject
    assert _strip(body["text/plain"]) == _strip(expected_text)
    [logged] = email_logs()
    assert logged.status is EmailStatus.SENT
    assert logged.language == language
    assert logged.attempts == 1
    assert logged.body_text is None  # bodies are only kept for the development mailbox


def _link_in(text: str) -> str:
    return next(word for word in text.split() if "/login/" in word)


def _strip(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def entry_expiry(user: User) -> Any:
    token = db.session.scalars(select(LoginToken).where(LoginToken.user_id == user.id)).one()
    return token.expires_at


def test_subject_differs_by_language_once_translated(ctx: Flask) -> None:
    catalogue = Path(coop.__file__).parent / "translations" / "nl" / "LC_MESSAGES" / "messages.mo"
    if not catalogue.exists():
        pytest.skip("no compiled Dutch catalogue yet: nl and en subjects are the same msgid")
    context: dict[str, Any] = {
        "name": "Anna",
        "link": "http://localhost/login/x",
        "expires_at": utcnow(),
    }
    assert (
        render_email("login_link", "nl", **context)[0]
        != (render_email("login_link", "en", **context)[0])
    )


def test_the_envelope_has_the_bare_addresses_with_the_size(ctx: Flask, smtp: SMTPRecorder) -> None:
    ctx.config["MAIL_DEFAULT_SENDER"] = "Energieloket <loket@bücher.example>"
    user = resident(email="anna@bücher.example")
    send_login_link_mail(user, "login-link:envelope")

    [envelope] = smtp.envelopes
    assert envelope.mail_from == "loket@xn--bcher-kva.example"
    assert envelope.rcpt_tos == ["anna@xn--bcher-kva.example"]
    assert f"SIZE={len(envelope.original_content)}" in envelope.mail_options
    # The Message-ID's domain is the sender's, in its ASCII form too (a header is ASCII).
    [message] = smtp.messages
    assert message["Message-ID"].endswith("@xn--bcher-kva.example>")


class _Commands:
    """What an SMTP client writes for MAIL FROM and RCPT TO, without a server."""

    def __init__(self, client: type[smtplib.SMTP]) -> None:
        self.host = client()
        self.host.does_esmtp = True
        self.sent: list[str] = []
        self.host.send = lambda line: self.sent.append(line)  # type: ignore[method-assign]
        self.host.getreply = lambda: (250, b"ok")  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "address",
    [
        "anna@example.nl",
        "o'brien+coop@example.nl",
        "Anna de Vries <anna@example.nl>",
        "<anna@example.nl>",
        "anna.devries@mail.example.nl",
    ],
)
def test_mail_and_rcpt_write_what_smtplib_writes(address: str) -> None:
    ours, smtplibs = _Commands(mail_module._SMTP), _Commands(smtplib.SMTP)
    for commands in (ours, smtplibs):
        commands.host.mail(address, ["SIZE=1234"])
        commands.host.rcpt(address)
    assert ours.sent == smtplibs.sent
    assert ours.sent[0].startswith("mail FROM:<")


def test_same_key_twice_delivers_one_message(ctx: Flask, smtp: SMTPRecorder) -> None:
    user = resident()
    first = send_login_link_mail(user, "login-link:twice")
    second = send_login_link_mail(user, "login-link:twice")
    assert first.id == second.id
    assert len(smtp.envelopes) == 1
    [logged] = email_logs()
    assert (logged.status, logged.attempts) == (EmailStatus.SENT, 1)


def test_server_saying_later_keeps_the_job_pending_and_the_retry_delivers_once(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    user = resident()
    smtp.reply = "451 4.3.0 try later"
    with pytest.raises(TemporaryMailError, match="451"):
        send_login_link_mail(user, "login-link:direct")
    db.session.rollback()

    row = enqueue_login_link(user)
    assert jobs.dispatcher().run_pending() == 1
    row = reloaded(row)
    assert row.status is JobStatus.PENDING
    assert row.attempts == 1
    assert (row.last_error or "").startswith("TemporaryMailError: 451")
    assert smtp.envelopes == []
    assert email_logs() == []  # the attempt rolled back with the job; nothing is marked sent

    smtp.reply = None
    assert jobs.sweep(now=later()) == 1
    row = reloaded(row)
    assert row.status is JobStatus.DONE
    assert row.attempts == 2
    [logged] = email_logs()
    assert logged.key == row.key
    assert logged.status is EmailStatus.SENT
    assert len(smtp.to("anna@example.nl")) == 1
    # Nothing left to retry: no second message.
    assert jobs.sweep(now=later(60)) == 0
    assert len(smtp.envelopes) == 1


def test_a_job_dying_after_the_servers_250_sends_again_with_the_same_message_id(
    ctx: Flask, smtp: SMTPRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one window the outbox cannot close: the SMTP server took the message (250), then
    the job's commit never happened (the database cut, the worker killed). The retry cannot
    know the message went out and sends it again, with the same Message-ID, so that mail
    systems (and people) can recognise and drop the copy. This is the README's promise."""
    from sqlalchemy.exc import OperationalError

    user = resident()
    row = enqueue_login_link(user)
    real_commit = db.session.commit
    cuts = {"left": 1}

    def commit_cut_once() -> None:
        if cuts["left"]:
            cuts["left"] -= 1
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        real_commit()

    monkeypatch.setattr(db.session, "commit", commit_cut_once)
    assert jobs.dispatcher().run_pending() == 1
    monkeypatch.undo()
    assert len(smtp.envelopes) == 1  # it went out...
    row = reloaded(row)
    assert (row.status, row.attempts) == (JobStatus.PENDING, 1)  # ...but nothing says so
    assert email_logs() == []

    assert jobs.sweep(now=later()) == 1
    assert reloaded(row).status is JobStatus.DONE
    first, second = smtp.to("anna@example.nl")
    assert first["Message-ID"] == second["Message-ID"] == message_id_for(row.key)
    [logged] = email_logs()
    assert logged.message_id == first["Message-ID"]
    # Outside that window, never a third.
    assert jobs.sweep(now=later(60)) == 0
    assert len(smtp.envelopes) == 2


def test_server_refusing_for_good_marks_the_email_failed_and_the_job_done(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    user = resident()
    smtp.reply = "550 5.1.1 mailbox unavailable"
    row = enqueue_login_link(user)
    jobs.dispatcher().run_pending()
    row = reloaded(row)
    assert row.status is JobStatus.DONE
    assert row.attempts == 1
    [logged] = email_logs()
    assert logged.status is EmailStatus.FAILED
    assert (logged.error or "").startswith("550")
    assert logged.sent_at is None

    # No endless retry: the sweep has nothing, and the same key sends nothing later either.
    smtp.reply = None
    assert jobs.sweep(now=later(60)) == 0
    token_id = row.args["token_id"]
    jobs.enqueue_once("accounts.send_login_link", row.key, token_id=token_id)
    jobs.dispatcher().run_pending()
    assert smtp.envelopes == []
    [logged] = email_logs()
    assert logged.attempts == 1


def refuse_recipients(smtp: SMTPRecorder, reply: str) -> None:
    """Make the server answer RCPT TO with ``reply`` (where "no such mailbox" and greylisting
    usually come, before DATA)."""

    async def handle_RCPT(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return reply

    smtp.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]


def test_recipient_refused_for_good_marks_the_email_failed(ctx: Flask, smtp: SMTPRecorder) -> None:
    user = resident()
    refuse_recipients(smtp, "550 5.1.1 no such mailbox")
    row = enqueue_login_link(user)
    jobs.dispatcher().run_pending()
    row = reloaded(row)
    assert (row.status, row.attempts) == (JobStatus.DONE, 1)
    [logged] = email_logs()
    assert logged.status is EmailStatus.FAILED
    assert "550" in (logged.error or "")
    assert jobs.sweep(now=later(60)) == 0
    assert smtp.envelopes == []


def test_recipient_greylisted_is_retried(ctx: Flask, smtp: SMTPRecorder) -> None:
    user = resident()
    refuse_recipients(smtp, "450 4.7.1 greylisted, try again later")
    with pytest.raises(TemporaryMailError, match="450"):
        send_login_link_mail(user, "login-link:greylisted")
    db.session.rollback()
    assert email_logs() == []
    del smtp.handle_RCPT  # type: ignore[attr-defined]
    send_login_link_mail(user, "login-link:greylisted")
    assert len(smtp.to("anna@example.nl")) == 1


@pytest.mark.parametrize("app_config", ["closed", "silent"], indirect=True)
def test_unreachable_server_is_a_temporary_error_within_the_timeout(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    user = resident()
    started = time.monotonic()
    with pytest.raises(TemporaryMailError):
        send_login_link_mail(user, "login-link:unreachable")
    # MAIL_TIMEOUT is 1 s: a silent server must not hang the job (Flask-Mail has no timeout).
    assert time.monotonic() - started < 4
    db.session.rollback()
    assert email_logs() == []
    assert smtp.envelopes == []


def test_without_mail_server_the_message_goes_to_the_development_mailbox(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    ctx.config["MAIL_SERVER"] = None
    user = resident(language="en")
    send_login_link_mail(user, "login-link:dev")
    assert smtp.envelopes == []
    [logged] = email_logs()
    assert logged.status is EmailStatus.SENT
    assert "/login/" in (logged.body_text or "")
    client = ctx.test_client()
    page = client.get("/dev/mailbox")
    assert page.status_code == 200
    assert "anna@example.nl" in page.get_data(as_text=True)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_mail_merge_gives_each_recipient_what_rendering_for_them_gives(
    ctx: Flask, language: str
) -> None:
    """An update is rendered once per language with markers for the name and the link, which
    are put in for each recipient (escaped in the HTML); the result is what rendering the
    templates for that recipient gives."""
    from coop.core.mail import MergedEmail
    from tests import factories

    action = factories.action(factories.organisation())
    db.session.commit()
    context = {
        "action": action,
        "update_subject": "Nieuws & meer",
        "paragraphs": ["Eerste <alinea>", "Tweede\nregel"],
    }
    merged = MergedEmail("segment_update", language, ("name", "unsubscribe_link"), **context)
    for name, link in [
        ("Anna de Vries", "http://localhost/unsubscribe/abc"),
        ('Jan & "Piet" <Öztürk>', "http://localhost/unsubscribe/a&b=<c>"),
    ]:
        assert merged.render(name=name, unsubscribe_link=link) == render_email(
            "segment_update", language, name=name, unsubscribe_link=link, **context
        )
