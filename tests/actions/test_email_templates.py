"""Staff's own wording of an action's emails: checked in the sandbox before it is stored,
previewed in both languages, reset to the standard text, and used for the real email (sent over
a real SMTP server) with the default as the fallback when stored wording cannot be rendered."""

from __future__ import annotations

import time
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.actions import email_templates as wording
from coop.actions.models import ActionEmailTemplate
from coop.core.audit import AuditEntry
from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories
from tests.conftest import SMTPRecorder, link_in, message_text, smtp_config

RESIDENT = "anna@example.nl"
OWN_BODY = (
    "Beste {{ name }},\n\n"
    "Fijn dat u meedoet met {{ action_title }} voor {{ address }}.\n"
    "Bevestig hier: {{ link }}\n\n"
    "{% if contact_email %}Vragen? Mail {{ contact_email }}.{% endif %}\n"
)


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


@pytest.fixture
def setup(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        action = factories.action(org_a)
        staff = factories.staff(org_a, "staff-a@example.nl")
        return {
            "action_id": action.id,
            "slug": action.slug,
            "staff": staff.email,
            "form": factories.registration_form(action),
        }


def login(client: FlaskClient, email: str) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    client.get("/language/en")


def stored(app: Flask) -> list[ActionEmailTemplate]:
    with app.app_context():
        rows = list(db.session.scalars(select(ActionEmailTemplate)))
        for row in rows:
            db.session.expunge(row)
        return rows


def wait_for(recorder: SMTPRecorder, address: str, n: int, timeout: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    while len(recorder.to(address)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return recorder.to(address)


def html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


def test_the_emails_page_lists_every_email_in_both_languages_with_its_placeholders(
    client: FlaskClient, setup: dict[str, Any]
) -> None:
    login(client, setup["staff"])
    action_id = setup["action_id"]
    page = client.get(f"/desk/actions/{action_id}/emails").get_data(as_text=True)
    for kind in ("confirm_registration", "confirmation_reminder", "registration_withdrawn"):
        for language in ("nl", "en"):
            assert f'href="/desk/actions/{action_id}/emails/{kind}/{language}"' in page
    assert page.count('data-own="no"') == 6

    edit = client.get(f"/desk/actions/{action_id}/emails/confirmation_reminder/en")
    text = edit.get_data(as_text=True)
    assert edit.status_code == 200
    # The standard text as the starting point, with placeholders where the values go.
    assert "{{ link }}" in text and "{{ expires_on }}" in text and "{{ action_title }}" in text
    assert "the date the registration lapses when it is not confirmed" in text  # documented
    withdrawn = client.get(f"/desk/actions/{action_id}/emails/registration_withdrawn/nl")
    assert "{{ reason }}" in withdrawn.get_data(as_text=True)
    assert "{{ link }}" not in withdrawn.get_data(as_text=True)


BAD_WORDING = {
    "syntax": ("{{ name ", "There is a mistake on line 1"),
    "unknown placeholder": ("Hallo {{ iban }} {{ link }}", "Unknown placeholder {{ iban }}."),
    "no link": ("Hallo {{ name }}, tot ziens.", "The text must contain {{ link }}"),
    "link only in an if": (
        "{% if name %}{{ link }}{% endif %}",
        "The text must contain {{ link }} (not inside {% if %})",
    ),
    "loop": (
        "{% for x in name %}{{ x }}{% endfor %}{{ link }}",
        "Only placeholders like {{ name }} and {% if name %}",
    ),
    "attribute": ("{{ name.__class__ }} {{ link }}", "Only placeholders like {{ name }}"),
    "call": ("{{ link }} {{ name() }}", "Only placeholders like {{ name }}"),
    "filter": ("{{ link }} {{ name|attr('upper') }}", "The filter “attr” cannot be used"),
}


@pytest.mark.parametrize("case", list(BAD_WORDING))
def test_bad_wording_is_refused_with_the_reason_and_never_stored(
    app: Flask, client: FlaskClient, setup: dict[str, Any], case: str
) -> None:
    body, reason = BAD_WORDING[case]
    login(client, setup["staff"])
    url = f"/desk/actions/{setup['action_id']}/emails/confirm_registration/nl"
    for do in ("preview", "save"):
        response = factories.post_form(
            client, url, {"subject": "Bevestig {{ action_title }}", "body": body, "do": do}
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 200
        assert reason in page, page
        assert 'id="body-error"' in page  # at the field
        assert 'id="preview"' not in page
    assert stored(app) == []


def test_subject_is_checked_too_and_link_is_required_in_the_text() -> None:
    # Service-level checks that need no request: what the form shows comes from here.
    errors = wording.check_wording("confirm_registration", "{{ link }} {{ oops }}", "{{ link }}")
    assert set(errors) == {"subject"} and "Unknown placeholder {{ oops }}" in errors["subject"]
    errors = wording.check_wording("confirm_registration", "Bevestig {{ link }}", "Geen link")
    assert set(errors) == {"body"}
    assert wording.check_wording("registration_withdrawn", "Ingetrokken", "Dag {{ name }}") == {}
    errors = wording.check_wording("registration_withdrawn", "Ingetrokken", "{{ link }}")
    assert "Unknown placeholder {{ link }}" in errors["body"]  # there is no link in that email


def test_preview_save_and_reset_in_both_languages(
    app: Flask, client: FlaskClient, setup: dict[str, Any]
) -> None:
    login(client, setup["staff"])
    action_id = setup["action_id"]
    url = f"/desk/actions/{action_id}/emails/confirm_registration/nl"
    data = {"subject": "Bevestig: {{ action_title|upper }}", "body": OWN_BODY}

    preview = factories.post_form(client, url, {**data, "do": "preview"}).get_data(as_text=True)
    assert 'id="preview"' in preview
    assert "Bevestig: SAMEN ISOLEREN" in preview
    assert "Beste Anna de Vries," in preview
    assert "http://localhost/login/voorbeeld" in preview
    assert stored(app) == []  # a preview stores nothing

    saved = factories.post_form(client, url, {**data, "do": "save"})
    assert saved.status_code == 302
    rows = stored(app)
    assert [(r.kind, r.language, r.subject) for r in rows] == [
        ("confirm_registration", "nl", "Bevestig: {{ action_title|upper }}")
    ]
    both = client.get(f"/desk/actions/{action_id}/emails/confirm_registration/preview")
    page = both.get_data(as_text=True)
    assert both.status_code == 200
    assert "Bevestig: SAMEN ISOLEREN" in page  # Dutch: own wording
    assert "Confirm your registration for Insulating together" in page  # English: standard
    assert "Thank you for registering Hoofdstraat 12, 3521 AB Utrecht" in page
    listing = client.get(f"/desk/actions/{action_id}/emails").get_data(as_text=True)
    assert listing.count('data-own="yes"') == 1

    reset = factories.post_form(client, f"{url}/reset", {}, token_from=url)
    assert reset.status_code == 302
    assert stored(app) == []
    with app.app_context():
        verbs = db.session.scalars(select(AuditEntry.verb).order_by(AuditEntry.id)).all()
        assert verbs == ["action.email_wording_save", "action.email_wording_reset"]
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.verb == "action.email_wording_reset")
        )
        assert entry is not None and entry.before is not None
        assert entry.before["body"] == OWN_BODY


def test_the_resident_gets_the_own_wording_and_its_link_works(
    app: Flask,
    client: FlaskClient,
    setup: dict[str, Any],
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    recorder, _ = smtp_server
    login(client, setup["staff"])
    url = f"/desk/actions/{setup['action_id']}/emails/confirm_registration/nl"
    saved = factories.post_form(
        client,
        url,
        {"subject": "Bevestig {{ action_title }} <nu>", "body": OWN_BODY, "do": "save"},
    )
    assert saved.status_code == 302
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, url)})
    client.get("/language/nl")  # the resident reads Dutch

    response = factories.post_form(client, f"/actions/{setup['slug']}/register", setup["form"])
    assert response.status_code == 302
    messages = wait_for(recorder, RESIDENT, 1)
    assert len(messages) == 1
    message = messages[0]
    assert message["Subject"] == "Bevestig Samen isoleren <nu>"
    text = message_text(message).replace("\r\n", "\n")  # SMTP carries CRLF line ends
    assert text.startswith("Beste Anna de Vries,\n\nFijn dat u meedoet met Samen isoleren voor ")
    assert "Hondsrug 12-A, 3524 BA Utrecht" in text
    assert "Vragen? Mail isoleren@example.nl." in text
    link = link_in(text)
    html = html_part(message)
    # The HTML part is the same text, escaped, in the email layout, with the link clickable.
    assert f'<a href="{link}">{link}</a>' in html
    assert "Bevestig Samen isoleren &lt;nu&gt;" in html
    assert "<br>" in html

    confirmed = client.post(
        link.removeprefix("http://localhost"),
        data={"csrf_token": factories.csrf_token(client, link.removeprefix("http://localhost"))},
    )
    assert confirmed.status_code == 302
    with app.app_context():
        registration = db.session.scalar(select(Registration))
        assert registration is not None
        assert registration.status is RegistrationStatus.CONFIRMED


def test_an_english_resident_gets_the_standard_text_when_only_dutch_was_changed(
    app: Flask,
    client: FlaskClient,
    setup: dict[str, Any],
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    recorder, _ = smtp_server
    with app.app_context():
        db.session.add(
            ActionEmailTemplate(
                action_id=setup["action_id"],
                kind="confirm_registration",
                language="nl",
                subject="Eigen onderwerp",
                body="{{ link }}",
            )
        )
        db.session.commit()
    client.get("/language/en")
    assert (
        factories.post_form(client, f"/actions/{setup['slug']}/register", setup["form"]).status_code
        == 302
    )
    messages = wait_for(recorder, RESIDENT, 1)
    assert messages[0]["Subject"] == "Confirm your registration for Insulating together"


def test_stored_wording_that_cannot_render_falls_back_to_the_standard_email(
    app: Flask,
    client: FlaskClient,
    setup: dict[str, Any],
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    """Never sent broken: wording that slipped past the checks (written to the database by hand)
    is not used; the resident gets the standard email with a working link."""
    recorder, _ = smtp_server
    with app.app_context():
        db.session.add(
            ActionEmailTemplate(
                action_id=setup["action_id"],
                kind="confirm_registration",
                language="nl",
                subject="Kapot {{ niet_bekend }}",
                body="{{ link }} {{ name.missing }}",
            )
        )
        db.session.commit()
    assert (
        factories.post_form(client, f"/actions/{setup['slug']}/register", setup["form"]).status_code
        == 302
    )
    messages = wait_for(recorder, RESIDENT, 1)
    assert len(messages) == 1
    assert "Kapot" not in messages[0]["Subject"]
    assert link_in(message_text(messages[0]))
