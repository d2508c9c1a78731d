"""Sending email once: rendered from templates in the recipient's language, deduplicated by key.

Without ``MAIL_SERVER`` a message goes to the log and the development mailbox page. With it,
Flask-Mail sends over SMTP with a socket timeout. A 4xx answer or a broken connection raises
``TemporaryMailError`` so the job is retried; a 5xx answer marks the message failed for staff.
The Message-ID is derived from the key, so the one duplicate we cannot rule out (the server said
250, then we crashed before our commit) is recognisable as the same message.

A worker calls ``keep_connections()``: its messages then go over one SMTP connection per thread,
opened when the first is sent and kept between jobs (checked with NOOP after a pause, opened again
after an error), instead of a connection per message. Web processes and commands connect per
message, as before.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import smtplib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Connection
from jinja2 import TemplateNotFound
from markupsafe import Markup, escape
from sqlalchemy import bindparam, insert, select, update

from coop.core.execution import one_line_per_row, write_with_done
from coop.core.hooks import Hook
from coop.core.mime import _envelope_sender, envelope_address, is_bare_address, mime_message
from coop.core.models import EmailLog, EmailStatus
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


class TemporaryMailError(Exception):
    """The mail server could not take the message now; try again later.

    ``unreachable``: no answer at all (no connection, or it broke), rather than a 4xx about this
    message; the next message would fare no better.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class _EnvelopeCommands:
    """MAIL FROM and RCPT TO without parsing a bare address again: smtplib quotes each address
    through ``email.utils.parseaddr``, about a twentieth of the worker's CPU per email in a mass
    mailing, while ``_transmit`` gives addresses in their envelope form already. Anything else
    (a display name, SMTPUTF8) goes to smtplib's own; its ``putcmd`` refuses a line break."""

    def mail(self: Any, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if not is_bare_address(sender) or any(o.lower() == "smtputf8" for o in options):
            return smtplib.SMTP.mail(self, sender, options)
        return self._envelope_command("mail", f"FROM:<{sender}>", options)  # type: ignore[no-any-return]

    def rcpt(self: Any, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if not is_bare_address(recip):
            return smtplib.SMTP.rcpt(self, recip, options)
        return self._envelope_command("rcpt", f"TO:<{recip}>", options)  # type: ignore[no-any-return]

    def _envelope_command(
        self: Any, command: str, argument: str, options: Sequence[str]
    ) -> tuple[int, bytes]:
        if options and self.does_esmtp:
            argument += " " + " ".join(options)
        self.putcmd(command, argument)
        return self.getreply()  # type: ignore[no-any-return]


class _SMTP(_EnvelopeCommands, smtplib.SMTP):
    pass


class _SMTPOverSSL(_EnvelopeCommands, smtplib.SMTP_SSL):
    pass


class _TimedConnection(Connection):
    """Flask-Mail's connection opens SMTP without a timeout; a hung server would hang the job."""

    def configure_host(self) -> smtplib.SMTP:
        timeout = current_app.config["MAIL_TIMEOUT"]
        host: smtplib.SMTP
        if self.mail.use_ssl:
            host = _SMTPOverSSL(self.mail.server, self.mail.port, timeout=timeout)
        else:
            host = _SMTP(self.mail.server, self.mail.port, timeout=timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


# A kept connection unused this long is checked with NOOP before the next message; unused this
# long, it is closed and opened anew (servers drop idle clients after a few minutes).
KEPT_CHECK_AFTER = 2.0
KEPT_REOPEN_AFTER = 60.0

_kept = threading.local()
_keeping = False


def keep_connections(enabled: bool = True) -> None:
    """From now on this process sends over one kept SMTP connection per thread (the worker)."""
    global _keeping
    _keeping = enabled
    if not enabled:
        close_kept_connection()


def close_kept_connection() -> None:
    connection: _TimedConnection | None = getattr(_kept, "connection", None)
    _kept.connection = None
    if connection is not None and connection.host is not None:
        host = connection.host
        try:
            host.quit()
        except (OSError, smtplib.SMTPException):
            host.close()


def _open() -> _TimedConnection:
    connection = _TimedConnection(current_app.extensions["mail"])
    try:
        connection.__enter__()
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryMailError(f"cannot connect: {exc}", unreachable=True) from exc
    return connection


def _kept_connection() -> _TimedConnection:
    connection: _TimedConnection | None = getattr(_kept, "connection", None)
    idle = time.monotonic() - getattr(_kept, "last_used", 0.0)
    if connection is not None and idle > KEPT_REOPEN_AFTER:
        close_kept_connection()
        connection = None
    elif connection is not None and idle > KEPT_CHECK_AFTER:
        try:
            assert connection.host is not None
            code, _ = connection.host.noop()
            if code != 250:
                raise smtplib.SMTPServerDisconnected(f"NOOP answered {code}")
        except (OSError, smtplib.SMTPException, AssertionError):
            close_kept_connection()
            connection = None
    if connection is None:
        connection = _open()
        _kept.connection = connection
    return connection


def _deliver(sender: str, to: str, message: bytes) -> None:
    """Hand ``message`` to the SMTP server: over the kept connection, or one of its own."""
    if not _keeping:
        connection = _open()
        with connection:
            if connection.host is not None:  # None: MAIL_SUPPRESS_SEND
                connection.host.sendmail(sender, [to], message)
        return
    connection = _kept_connection()
    try:
        if connection.host is not None:
            connection.host.sendmail(sender, [to], message)
    except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
        # The server answered about this message; smtplib reset the transaction (or closed the
        # connection on a 421, which the next message notices).
        if connection.host is None or connection.host.sock is None:
            close_kept_connection()
        raise
    except (OSError, smtplib.SMTPException):
        close_kept_connection()
        raise
    finally:
        _kept.last_used = time.monotonic()


def message_id_for(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    # The sender's domain as the envelope has it: an IDN in its ASCII form (a header is ASCII).
    domain = _envelope_sender(current_app.config["MAIL_DEFAULT_SENDER"]).rpartition("@")[2]
    return f"<{digest}@{domain or 'coop'}>"


# An action's own wording of an email, written by its staff (``coop.actions`` provides it):
# (action id, template, language, context) -> (subject, text, HTML), or None for the template's.
own_wording: Hook[Callable[[int, str, str, dict[str, Any]], tuple[str, str, str] | None]] = Hook(
    "own_wording", lambda action_id, template, language, context: None
)


def render_email(
    template: str, language: str, *, action_id: int | None = None, **context: Any
) -> tuple[str, str, str]:
    """Subject, plain text and HTML of ``templates/email/<template>.*`` in ``language``, or of
    the action's own wording of that email when its staff wrote one."""
    with force_locale(language):
        if action_id is not None:
            own = own_wording.call(action_id, template, language, context)
            if own is not None:
                return own
        subject = render_template(f"email/{template}.subject.txt", **context).strip()
        text = render_template(f"email/{template}.txt", **context)
        try:
            html = render_template(f"email/{template}.html", subject=subject, **context)
        except TemplateNotFound:
            # Most emails are a few paragraphs: their HTML is the text, with working links.
            html = render_template(
                "email/_from_text.html",
                subject=subject,
                paragraphs=html_paragraphs(text),
                footer=context.get("footer", "resident"),
            )
    return " ".join(subject.split()), text, html


_URL = re.compile(r"https?://[^\s<>\"]+")


def html_paragraphs(text: str) -> list[Markup]:
    """Plain text as HTML paragraphs: escaped, line breaks kept, addresses made links."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block.strip()))
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append(Markup(linked.replace("\n", "<br>\n")))  # noqa: S704 (escaped above)
    return paragraphs


def send_email(
    *,
    key: str,
    to: str,
    template: str,
    language: str,
    user_id: int | None = None,
    action_id: int | None = None,
    attachments: Sequence[tuple[str, str, bytes]] | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> EmailLog:
    """Send the message for ``key`` unless it was sent (or failed for good) before.

    Runs inside a job's transaction: the log row commits with the job. ``attachments`` are
    (file name, MIME type, content), such as a calendar invitation; ``headers`` are extra
    header fields, such as List-Unsubscribe on bulk mail.
    """
    entry: EmailLog | None = db.session.scalar(select(EmailLog).where(EmailLog.key == key))
    if entry is not None and entry.status in (EmailStatus.SENT, EmailStatus.FAILED):
        log.info("email already %s key=%s", entry.status.value, key)
        return entry
    subject, text, html = render_email(template, language, action_id=action_id, **context)
    if entry is None:
        entry = EmailLog(
            key=key,
            user_id=user_id,
            recipient=to,
            subject=subject[:300],
            template=template,
            language=language,
            message_id=message_id_for(key),
            attempts=0,
        )
        db.session.add(entry)
    entry.attempts += 1

    entry.status, entry.error, entry.body_text = _send(
        key, to, subject, text, html, entry.message_id, attachments=attachments, headers=headers
    )
    if entry.status is EmailStatus.SENT:
        entry.sent_at = utcnow()
    return entry


def _send(
    key: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    *,
    attachments: Sequence[tuple[str, str, bytes]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[EmailStatus, str | None, str | None]:
    """The message to the SMTP server (``_transmit``), or without ``MAIL_SERVER`` to the log and
    the development mailbox: (status, error, the text kept for that mailbox)."""
    if not current_app.config.get("MAIL_SERVER"):
        log.info(
            "email (not sent, no MAIL_SERVER) key=%s to=%s subject=%s\n%s", key, to, subject, text
        )
        return EmailStatus.SENT, None, text
    message = mime_message(
        subject=subject,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
        to=to,
        text=text,
        html=html,
        message_id=message_id,
        attachments=attachments,
        headers=headers,
    )
    status, error = _transmit(key, to, message, message_id)
    return status, error, None


def _transmit(key: str, to: str, message: bytes, message_id: str) -> tuple[EmailStatus, str | None]:
    """Hand ``message`` to the SMTP server: (SENT, None), or (FAILED, the server's answer) when
    it refused the message for good (5xx). A temporary refusal (4xx) or no connection raises
    ``TemporaryMailError``, so the job is tried again."""
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    try:
        _deliver(_envelope_sender(sender), envelope_address(to), message)
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            error = f"{exc.smtp_code} {exc.smtp_error!r}"[:2000]
            log.error("email refused key=%s: %s", key, error)
            return EmailStatus.FAILED, error
        raise TemporaryMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        # Refused at RCPT TO, where "no such mailbox" (5xx) and greylisting (4xx) usually come;
        # this is no SMTPResponseException, so judge it by the recipients' codes here.
        refusals = " ".join(f"{code} {reply!r}" for code, reply in exc.recipients.values())
        if exc.recipients and all(500 <= code < 600 for code, _ in exc.recipients.values()):
            log.error("email refused key=%s: %s", key, refusals[:2000])
            return EmailStatus.FAILED, refusals[:2000]
        raise TemporaryMailError(refusals) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryMailError(str(exc), unreachable=True) from exc
    log.log(
        logging.INFO if one_line_per_row() else logging.DEBUG,
        "email sent key=%s message_id=%s",
        key,
        message_id,
    )
    return EmailStatus.SENT, None


@dataclass(frozen=True)
class Outcome:
    """How a message fared (what ``send_rendered`` wrote to its ``email_log`` row)."""

    status: EmailStatus
    sent_at: datetime | None
    error: str | None


# Built once: the statements of the mass mailing's path (see ``send_rendered``).
_EMAIL_LOG = EmailLog.__table__
_LOG_OF_KEY = select(_EMAIL_LOG.c.status, _EMAIL_LOG.c.sent_at, _EMAIL_LOG.c.error).where(
    _EMAIL_LOG.c.key == bindparam("log_key")
)


def _log_param(column: str) -> Any:
    # Named apart from other tables' columns: the log row is written in one statement with the
    # job's other writes (``write_with_done``).
    return bindparam(f"log_{column}", type_=_EMAIL_LOG.c[column].type)


_OUTCOME_COLUMNS = ("status", "error", "sent_at", "body_text")
_NEW_LOG = insert(_EMAIL_LOG).values(
    {
        column: _log_param(column)
        for column in (
            "key",
            "user_id",
            "recipient",
            "subject",
            "template",
            "language",
            "message_id",
            "attempts",
            "created_at",
            *_OUTCOME_COLUMNS,
        )
    }
)
_LOG_AGAIN = (
    update(_EMAIL_LOG)
    .where(_EMAIL_LOG.c.key == _log_param("key"))
    .values(
        attempts=_EMAIL_LOG.c.attempts + 1,
        **{column: _log_param(column) for column in _OUTCOME_COLUMNS},
    )
)


def send_rendered(
    *,
    key: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    template: str,
    language: str,
    user_id: int | None = None,
    headers: Mapping[str, str] | None = None,
    logged: Outcome | None,
) -> Outcome:
    """``send_email`` for a message rendered already (a mass mailing renders once per language,
    see ``MergedEmail``), with the same guarantees: sent once per key, the Message-ID from the
    key, the outcome in ``email_log`` in the job's transaction. Its rows are read and written
    with plain SQL: at thousands of messages the ORM's unit of work per message was a third of
    a message's time.

    ``logged``: what ``email_log`` says of ``key`` so far (``logged_outcome``), read by the
    caller in the job's transaction, often together with what the message is made of.
    """
    found = logged
    if found is not None and found.status in (EmailStatus.SENT, EmailStatus.FAILED):
        log.info("email already %s key=%s", found.status.value, key)
        return Outcome(found.status, found.sent_at, found.error)
    message_id = message_id_for(key)
    subject = " ".join(subject.split())
    status, error, body_text = _send(key, to, subject, text, html, message_id, headers=headers)
    sent_at = utcnow() if status is EmailStatus.SENT else None
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "sent_at": sent_at,
        "body_text": body_text,
    }
    if found is None:
        values |= {"key": key, "user_id": user_id, "recipient": to, "subject": subject[:300]}
        values |= {"template": template, "language": language, "message_id": message_id}
        values |= {"attempts": 1, "created_at": utcnow()}
    else:
        values["key"] = key
    write_with_done(
        _NEW_LOG if found is None else _LOG_AGAIN,
        {f"log_{column}": value for column, value in values.items()},
    )
    return Outcome(status, sent_at, error)


def logged_outcome(key: str) -> Outcome | None:
    """What ``email_log`` says of ``key`` (None: no message was tried), for ``send_rendered``."""
    found = db.session.execute(_LOG_OF_KEY, {"log_key": key}).first()
    return None if found is None else Outcome(found.status, found.sent_at, found.error)


class MergedEmail:
    """One template rendered once for many recipients, as a mail merge: the values that differ
    per recipient (``fields``) are rendered as markers and put in afterwards, escaped for the
    HTML. Rendering an update's three templates took a fifth of each message's time; putting
    two values in takes a few microseconds.

    A field a template changes on the way (a filter such as ``|upper``) would leave its marker
    unreplaced: then that recipient's message is rendered in full, as ``render_email`` does.
    """

    def __init__(self, template: str, language: str, fields: Sequence[str], **context: Any):
        self.template, self.language, self.context = template, language, context
        tag = secrets.token_hex(8)
        # Letters and digits only: escaping for HTML leaves them as they are.
        self.markers = {field: f"coopmerge{tag}{field.replace('_', '')}x" for field in fields}
        self._prefix = f"coopmerge{tag}"
        with_markers: dict[str, Any] = {**context, **self.markers}
        self.subject, self.text, self.html = render_email(template, language, **with_markers)

    def render(self, **values: str) -> tuple[str, str, str]:
        """Subject, plain text and HTML for one recipient (``values``: one per field)."""
        subject, text, html = self.subject, self.text, self.html
        for field, marker in self.markers.items():
            value = values[field]
            subject = subject.replace(marker, value)
            text = text.replace(marker, value)
            html = html.replace(marker, str(escape(value)))
        if self._prefix in subject or self._prefix in text or self._prefix in html:
            with_values: dict[str, Any] = {**self.context, **values}
            return render_email(self.template, self.language, **with_values)
        return subject, text, html
