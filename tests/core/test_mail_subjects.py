"""A subject arrives as written: accented words after a dash keep their spaces, also when the
subject is folded over several lines. Sent through a real SMTP server (aiosmtpd) and read back
with the standard library's modern parser, as a mail client reads it."""

from __future__ import annotations

import email
import email.policy
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from coop.core.mail import send_email
from coop.extensions import db
from tests import factories
from tests.conftest import SMTPRecorder, smtp_config

SMTPServer = tuple[SMTPRecorder, int]

TITLES = [
    "Oost – één actie",
    "Utrecht-Oost – één actie voor de hele wijk, samen isoleren en overstappen",
    "Samen – één actie: wij, jij en één buurt – één keer, met € 1.234,50 korting",
    "Zuid  –  ruimte    blijft",  # the subject's spaces are normalised to one, as rendered
]


@pytest.fixture
def app_config(smtp_server: SMTPServer) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


@pytest.mark.parametrize("title", TITLES)
def test_a_subject_with_accented_words_arrives_as_written(
    ctx: Flask, smtp_server: SMTPServer, title: str
) -> None:
    smtp = smtp_server[0]
    action = factories.action()
    action.title_nl = title
    db.session.flush()
    send_email(
        key=f"subject:{title}",
        to="anna@example.nl",
        template="confirm_registration",
        language="nl",
        name="Anna",
        household=SimpleNamespace(address_line="Hondsrug 12, 3524 BA Utrecht"),
        action=action,
        link="http://localhost/confirm/x",
    )
    [envelope] = smtp.envelopes
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert received["Subject"] == "Bevestig je aanmelding voor " + " ".join(title.split())
    body = received.get_body(preferencelist=("plain",))
    assert body is not None and "Beste Anna" in body.get_content()


def test_a_long_unsubscribe_link_stays_a_plain_url() -> None:
    # The policy folds and encodes what needs it; a URL too long for one line must still go
    # out as it is, not as encoded words a mail client does not decode in that header.
    from coop.core.mail import mime_message

    link = "<http://localhost/unsubscribe/" + "x" * 120 + ">"
    raw = mime_message(
        subject="Oost – één actie",
        sender="Loket Oost – één <noreply@coop.localhost>",
        to="anna@example.nl",
        text="x",
        html="x",
        message_id="<abc@coop.localhost>",
        headers={"List-Unsubscribe": link},
    )
    assert f"List-Unsubscribe: {link}\r\n".encode() in raw
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["List-Unsubscribe"] == link
    assert received["From"] == "Loket Oost – één <noreply@coop.localhost>"
    assert received["Subject"] == "Oost – één actie"
