"""The resident's whole journey over HTTP, with the emails delivered to a real SMTP server.

Find the action by postcode, register, confirm by the emailed link, follow the timeline, change
the details, withdraw, download the data and erase it all: the issue's "done when".
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import LoginToken, User
from coop.core.models import EmailLog
from coop.extensions import db
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)
from tests import factories
from tests.conftest import SMTPRecorder, link_in, message_text, smtp_config

EMAIL = "anna@example.nl"


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


def wait_for_mail(
    recorder: SMTPRecorder, address: str, count: int, timeout: float = 5.0
) -> list[Message]:
    """The messages to ``address`` once there are ``count`` (jobs run after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        messages = recorder.to(address)
        if len(messages) >= count or time.monotonic() > deadline:
            return messages
        time.sleep(0.02)


def path_of(link: str) -> str:
    assert link.startswith("http://localhost/"), link
    return link.removeprefix("http://localhost")


def count(model: type[Any]) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_resident_journey_from_postcode_to_erasure(
    app: Flask, client: FlaskClient, smtp_server: tuple[SMTPRecorder, int]
) -> None:
    recorder, _port = smtp_server
    with app.app_context():
        act = factories.action()
        slug = act.slug
        roof_id, heat_pump_id = act.measures[0].id, act.measures[1].id
        form = factories.registration_form(act)
    client.get("/language/en")

    # Find the action by postcode on the home page, then open its page.
    home = client.get("/?postcode=3524+BA").get_data(as_text=True)
    assert f'href="/actions/{slug}"' in home
    elsewhere = client.get("/?postcode=9999+AB").get_data(as_text=True)
    assert f'href="/actions/{slug}"' not in elsewhere
    page = client.get(f"/actions/{slug}").get_data(as_text=True)
    assert f'href="/actions/{slug}/register"' in page
    assert "0 households take part" in page

    # Register: a pending registration and a confirmation email on the SMTP server.
    response = factories.post_form(client, f"/actions/{slug}/register", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/actions/{slug}/registered"
    assert EMAIL in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        registration = db.session.scalars(select(Registration)).one()
        registration_id = registration.id
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION
    [confirmation] = wait_for_mail(recorder, EMAIL, 1)
    assert "Confirm your registration" in confirmation["Subject"]
    link_path = path_of(link_in(message_text(confirmation)))

    # Opening the link (a mail scanner does this too) shows a button and uses nothing up.
    opened = client.get(link_path)
    assert opened.status_code == 200
    opened_page = opened.get_data(as_text=True)
    assert f'action="{link_path}"' in opened_page and 'type="submit"' in opened_page
    assert client.get(link_path).status_code == 200  # a second look is still harmless
    with app.app_context():
        assert db.session.scalars(select(LoginToken)).one().used_at is None
        assert db.session.get(Registration, registration_id).status is (
            RegistrationStatus.PENDING_CONFIRMATION
        )
    assert client.get("/my").status_code == 302  # not logged in by merely opening it

    # Pressing the button confirms and logs in.
    confirmed = factories.post_form(client, link_path, {})
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == f"/my/registrations/{registration_id}"
    with app.app_context():
        assert db.session.get(Registration, registration_id).status is RegistrationStatus.CONFIRMED
        assert db.session.scalars(select(LoginToken)).one().used_at is not None

    # The timeline: confirmed with a date, the usual steps ahead without one.
    detail = client.get(f"/my/registrations/{registration_id}").get_data(as_text=True)
    assert "Thank you: your registration is confirmed." in detail
    assert "1 household takes part" in client.get(f"/actions/{slug}").get_data(as_text=True)
    steps = re.findall(
        r'<li class="(step-[a-z]+)">\s*<span[^>]*></span>\s*<span class="step-label">([^<]+)</span>(.*?)</li>',
        detail,
        re.S,
    )
    by_label = {label: (cls, rest) for cls, label, rest in steps}
    assert len(by_label) == len(steps) >= 8
    assert by_label["Registration confirmed"][0] == "step-current"
    assert 'class="step-date"' in by_label["Registration confirmed"][1]
    assert by_label["Registered, waiting for your confirmation"][0] == "step-done"
    for ahead in ("Installer assigned", "Site survey planned", "Quote received", "Completed"):
        assert by_label[ahead][0] == "step-todo"
        assert "step-date" not in by_label[ahead][1]
    assert f'href="/my/registrations/{registration_id}/edit"' in detail
    assert f'href="/my/registrations/{registration_id}/withdraw"' in detail

    # Change the details while the action is open: more roof, and a hybrid heat pump too.
    edit_url = f"/my/registrations/{registration_id}/edit"
    changed = {
        "name": "Anna de Vries-Jansen",
        "phone": "06 87654321",
        "dwelling_type": "corner",
        "build_year": "1981",
        "ownership": "owner",
        "energy_label": "C",
        f"measure_{roof_id}": "y",
        f"quantity_{roof_id}": "60",
        f"measure_{heat_pump_id}": "y",
        f"quantity_{heat_pump_id}": "1",
    }
    response = factories.post_form(client, edit_url, changed)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        registration = db.session.get(Registration, registration_id)
        assert {rm.action_measure_id: rm.quantity for rm in registration.measures} == {
            roof_id: 60,
            heat_pump_id: 1,
        }
        assert registration.user.name == "Anna de Vries-Jansen"
        assert registration.household.build_year == 1981
        assert registration.household.energy_label == "C"

    # Withdraw with a reason: with two measures the resident ticks which (here both); without
    # a choice nothing happens. The status changes and a confirmation email arrives.
    withdraw_url = f"/my/registrations/{registration_id}/withdraw"
    unchosen = factories.post_form(client, withdraw_url, {"reason": "We are moving house."})
    assert unchosen.status_code == 200
    assert "Choose at least one measure to withdraw." in unchosen.get_data(as_text=True)
    with app.app_context():
        measure_ids = [rm.id for rm in db.session.get(Registration, registration_id).measures]
    response = factories.post_form(
        client, withdraw_url, {"reason": "We are moving house.", "measures": measure_ids}
    )
    assert response.status_code == 302
    with app.app_context():
        registration = db.session.get(Registration, registration_id)
        assert registration.status is RegistrationStatus.WITHDRAWN
        assert registration.withdrawal_reason == "We are moving house."
    messages = wait_for_mail(recorder, EMAIL, 2)
    assert len(messages) == 2
    assert "withdrawn" in messages[1]["Subject"]
    assert "We are moving house." in message_text(messages[1])

    # Download everything held about the resident.
    exported = client.get("/my/export")
    assert exported.status_code == 200
    assert exported.mimetype == "application/zip"
    assert "attachment" in exported.headers["Content-Disposition"]
    # The machine-readable JSON, next to a readable document (tests/registrations/test_export).
    archive = zipfile.ZipFile(io.BytesIO(exported.get_data()))
    data = json.loads(archive.read("coop-my-data.json"))
    assert "coop-my-data.html" in archive.namelist()
    assert data["account"]["email"] == EMAIL
    [exported_registration] = data["registrations"]
    assert exported_registration["id"] == registration_id
    assert exported_registration["status"] == "withdrawn"
    assert exported_registration["address"]["postcode"] == "3524 BA"
    assert [step["to"] for step in exported_registration["history"]] == [
        "pending_confirmation",
        "confirmed",
        "withdrawn",
    ]
    assert len(data["emails"]) == 2

    # Erase: account, registration and household gone, the email log without the address.
    response = factories.post_form(client, "/my/erase", {"confirm": "y"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    with app.app_context():
        assert count(User) == 0
        assert count(Registration) == 0
        assert count(RegistrationMeasure) == 0
        assert count(Household) == 0
        assert count(LoginToken) == 0
        logged = db.session.scalars(select(EmailLog)).all()
        assert len(logged) == 2
        assert all(e.user_id is None and e.recipient == "erased" for e in logged)
        assert all(e.body_text is None for e in logged)

    # Logged out: neither export nor erase can be done again.
    for response in (
        client.get("/my/export"),
        client.get("/my/erase"),
        factories.post_form(client, "/my/erase", {"confirm": "y"}, token_from="/login"),
    ):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    # The old confirmation link leads nowhere either.
    assert client.get(link_path).status_code == 400
    assert factories.post_form(client, link_path, {}, token_from="/login").status_code == 400
