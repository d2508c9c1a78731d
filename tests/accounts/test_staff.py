"""Staff and installer accounts: a desk admin invites a colleague by email, the invitation sets a
password and logs in; two-factor login with TOTP (codes from pyotp) is set up, asked for at
login, and switched off again; each step leaves an audit entry."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from email.message import Message
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from coop.accounts import services
from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services import two_factor
from coop.core import tokens
from coop.core.audit import AuditEntry
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config

NEW_PASSWORD = "lang genoeg wachtwoord 42"


@pytest.fixture
def app_config(request: pytest.FixtureRequest, smtp_server: tuple[SMTPRecorder, int]) -> Any:
    config = smtp_config(smtp_server[1])
    config.update(getattr(request, "param", {}))  # a test may switch rate limiting on
    return config


@pytest.fixture
def desk(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Zeist")
        admin = factories.staff(org_a, "admin-a@example.nl")
        admin.is_desk_admin = True
        colleague = factories.staff(org_a, "collega-a@example.nl")
        admin_b = factories.staff(org_b, "admin-b@example.nl")
        admin_b.is_desk_admin = True
        db.session.commit()
        return {
            "org_a": org_a.id,
            "org_b": org_b.id,
            "admin": admin.email,
            "colleague": colleague.email,
            "admin_b": admin_b.email,
        }


def login(client: FlaskClient, email: str, password: str = factories.PASSWORD) -> Any:
    response = factories.post_form(client, "/staff/login", {"email": email, "password": password})
    client.get("/language/en")
    return response


def wait_for(recorder: SMTPRecorder, address: str, n: int, timeout: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    while len(recorder.to(address)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return recorder.to(address)


def invite_path(text: str) -> str:
    match = re.search(r"http://localhost(/invite/\S+)", text)
    assert match, text
    return match.group(1)


def verbs(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.verb).order_by(AuditEntry.id)))


# --- invitations ------------------------------------------------------------------------------


def test_invite_set_password_and_log_in(
    app: Flask, client: FlaskClient, desk: dict[str, Any], smtp_server: tuple[SMTPRecorder, int]
) -> None:
    recorder, _ = smtp_server
    assert login(client, desk["admin"]).status_code == 302
    response = factories.post_form(
        client, "/desk/team", {"name": "Noor Nieuw", "email": " Noor@Example.nl "}
    )
    assert response.status_code == 302
    team = client.get("/desk/team").get_data(as_text=True)
    assert "noor@example.nl" in team and "Invited, no password yet" in team

    messages = wait_for(recorder, "noor@example.nl", 1)
    assert len(messages) == 1
    assert "Energieloket Utrecht" in messages[0]["Subject"]
    path = invite_path(message_text(messages[0]))
    with app.app_context():
        noor = db.session.scalar(select(User).where(User.email == "noor@example.nl"))
        assert noor is not None
        assert (noor.role, noor.organisation_id, noor.password_hash) == (
            Role.STAFF,
            desk["org_a"],
            None,
        )
        token = db.session.scalar(select(LoginToken).where(LoginToken.user_id == noor.id))
        assert token is not None and token.purpose is LoginPurpose.INVITE
        assert timedelta(days=6, hours=23) < token.expires_at - utcnow() <= timedelta(days=7)

    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/team")})
    client.get("/language/en")
    page = client.get(path)
    assert page.status_code == 200
    assert "Choose your password" in page.get_data(as_text=True)
    # Opening the page uses nothing up; bad passwords are refused at the field.
    for password, confirm, message in (
        ("te kort", "te kort", "Use at least 12 characters."),
        ("noor@example.nl", "noor@example.nl", "Do not use your email address as your password."),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "The two passwords are not the same."),
    ):
        refused = factories.post_form(client, path, {"password": password, "confirm": confirm})
        assert refused.status_code == 200
        assert message in refused.get_data(as_text=True)
    accepted = factories.post_form(
        client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert accepted.status_code == 302
    assert accepted.headers["Location"] == "/desk/"
    assert client.get("/desk/").status_code == 200  # logged in
    assert client.get(path).status_code == 400  # used up
    assert "already been used" in client.get(path).get_data(as_text=True)

    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})
    assert login(client, "noor@example.nl", NEW_PASSWORD).status_code == 302
    assert client.get("/desk/").status_code == 200
    with app.app_context():
        noor = db.session.scalar(select(User).where(User.email == "noor@example.nl"))
        assert noor is not None and noor.password_hash and noor.last_login_at is not None
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.verb, e.organisation_id, e.object_id) for e in entries] == [
            ("user.invite", desk["org_a"], noor.id),
            ("user.password_set", desk["org_a"], noor.id),
        ]
        assert entries[0].after is not None and entries[0].after["email"] == "noor@example.nl"
        assert "password_hash" not in entries[0].after


def test_an_email_in_use_is_refused_and_only_admins_of_the_desk_invite(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, desk["admin"])
    refused = factories.post_form(
        client, "/desk/team", {"name": "Dubbel", "email": desk["admin_b"]}
    )
    assert refused.status_code == 200
    assert "This email address already has an account." in refused.get_data(as_text=True)
    bad = factories.post_form(client, "/desk/team", {"name": "", "email": "geen-adres"})
    page = bad.get_data(as_text=True)
    assert "Enter the name of your colleague." in page
    assert "Enter an email address like name@example.nl." in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 3

    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/team")})
    login(client, desk["colleague"])  # staff, not a desk admin
    assert client.get("/desk/team").status_code == 404
    assert client.post("/desk/team", data={}).status_code in (400, 404)


def test_resending_an_invitation_ends_the_old_link_and_other_desks_get_404(
    app: Flask, client: FlaskClient, desk: dict[str, Any], smtp_server: tuple[SMTPRecorder, int]
) -> None:
    recorder, _ = smtp_server
    login(client, desk["admin"])
    factories.post_form(client, "/desk/team", {"name": "Noor Nieuw", "email": "noor@example.nl"})
    first = invite_path(message_text(wait_for(recorder, "noor@example.nl", 1)[0]))
    with app.app_context():
        noor_id = db.session.scalar(select(User.id).where(User.email == "noor@example.nl"))
    resend = factories.post_form(
        client, f"/desk/team/{noor_id}/resend", {}, token_from="/desk/team"
    )
    assert resend.status_code == 302
    messages = wait_for(recorder, "noor@example.nl", 2)
    assert len(messages) == 2
    second = invite_path(message_text(messages[1]))
    assert second != first

    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/team")})
    login(client, desk["admin_b"])
    foreign = factories.post_form(
        client, f"/desk/team/{noor_id}/resend", {}, token_from="/desk/team"
    )
    assert foreign.status_code == 404
    assert len(wait_for(recorder, "noor@example.nl", 3, timeout=0.3)) == 2
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/team")})

    client.get("/language/en")
    assert client.get(first).status_code == 400
    assert "expired" in client.get(first).get_data(as_text=True)
    assert client.get(second).status_code == 200


def test_invite_user_makes_installer_users_too(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == desk["admin"]))
        assert admin is not None
        installer = Installer(
            organisation_id=desk["org_a"],
            company_name="Isolatie Utrecht BV",
            kvk_number="12345678",
            email="info@isolatie.example",
            city="Utrecht",
        )
        db.session.add(installer)
        db.session.commit()
        fitter = services.invite_user(
            admin,
            "Fitter@Isolatie.example",
            "Fatima Fitter",
            Role.INSTALLER,
            installer_id=installer.id,
        )
        assert (fitter.email, fitter.role, fitter.installer_id, fitter.organisation_id) == (
            "fitter@isolatie.example",
            Role.INSTALLER,
            installer.id,
            None,
        )
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "user.invite"))
        assert entry is not None and entry.organisation_id == desk["org_a"]
        with pytest.raises(services.EmailInUseError):
            services.invite_user(
                admin, "fitter@isolatie.example", "Weer", Role.INSTALLER, installer_id=installer.id
            )
        with pytest.raises(services.AccountError):
            services.invite_user(admin, "x@example.nl", "X", Role.INSTALLER)  # no installer
        with pytest.raises(services.AccountError):
            services.invite_user(admin, "y@example.nl", "Y", Role.RESIDENT)
        assert db.session.scalar(select(func.count()).select_from(User)) == 4


def test_an_expired_or_forged_invitation_does_not_work(
    app: Flask, client: FlaskClient, desk: dict[str, Any], smtp_server: tuple[SMTPRecorder, int]
) -> None:
    recorder, _ = smtp_server
    login(client, desk["admin"])
    factories.post_form(client, "/desk/team", {"name": "Noor Nieuw", "email": "noor@example.nl"})
    path = invite_path(message_text(wait_for(recorder, "noor@example.nl", 1)[0]))
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/team")})
    with app.app_context():
        token = db.session.scalar(
            select(LoginToken).where(LoginToken.purpose == LoginPurpose.INVITE)
        )
        assert token is not None
        # The same token signed as a login link: not accepted as an invitation.
        as_login_link = tokens.sign("login", {"id": token.id, "n": token.nonce})
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    client.get("/language/en")
    assert "expired" in client.get(path).get_data(as_text=True)
    token_page = client.get("/staff/login")  # any page, for a CSRF token
    assert token_page.status_code == 200
    refused = client.post(
        path,
        data={
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": factories.csrf_token(client, "/staff/login"),
        },
    )
    assert refused.status_code == 400
    assert client.get(path[:-3] + "abc").status_code == 400  # tampered
    forged = client.get(f"/invite/{as_login_link}")
    assert forged.status_code == 400 and "not valid" in forged.get_data(as_text=True)
    with app.app_context():
        noor = db.session.scalar(select(User).where(User.email == "noor@example.nl"))
        assert noor is not None and noor.password_hash is None


# --- two-factor login -------------------------------------------------------------------------


class Clock:
    """The accounts service's clock, moved on by hand: each two-factor code works once, so a test
    that uses several moves to the next 30 seconds between them."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def next_code(self, secret: str) -> str:
        self.now += 30
        return pyotp.TOTP(secret).at(self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(two_factor, "_clock", clock)
    return clock


def two_factor_on(app: Flask, email: str) -> str:
    """Two-factor login switched on for ``email`` directly in the database; its secret."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        secret = str(pyotp.random_base32())
        user.totp_secret = secret
        user.totp_confirmed_at = utcnow()
        db.session.commit()
        return secret


def secret_on(page: str) -> str:
    match = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page)
    assert match, page
    return match.group(1)


def enable_totp(client: FlaskClient, clock: Clock) -> str:
    started = factories.post_form(
        client, "/account/security/setup", {}, token_from="/account/security"
    )
    assert started.status_code == 302
    page = client.get("/account/security").get_data(as_text=True)
    secret = secret_on(page)
    assert "otpauth://totp/coop:" in page
    wrong = factories.post_form(
        client, "/account/security/confirm", {"code": "000000"}, token_from="/account/security"
    )
    assert "The code is not correct." in wrong.get_data(as_text=True)
    confirmed = factories.post_form(
        client,
        "/account/security/confirm",
        {"code": clock.next_code(secret)},
        token_from="/account/security",
    )
    assert confirmed.status_code == 302
    return secret


def test_two_factor_login_with_a_real_code(
    app: Flask, client: FlaskClient, desk: dict[str, Any], clock: Clock
) -> None:
    login(client, desk["colleague"])
    assert 'id="totp-status"' in client.get("/account/security").get_data(as_text=True)
    secret = enable_totp(client, clock)
    assert "Two-factor login is on" in client.get("/account/security").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})

    # The right password alone is not a login any more.
    step = login(client, desk["colleague"])
    assert step.status_code == 302
    assert step.headers["Location"] == "/staff/login/code"
    assert client.get("/desk/").status_code == 302  # to the login page: not logged in
    wrong = factories.post_form(client, "/staff/login/code", {"code": "123456"})
    assert wrong.status_code == 200
    assert "The code is not correct." in wrong.get_data(as_text=True)
    assert client.get("/desk/").status_code == 302
    right = factories.post_form(client, "/staff/login/code", {"code": clock.next_code(secret)})
    assert right.status_code == 302 and right.headers["Location"] == "/desk/"
    assert client.get("/desk/").status_code == 200
    # The pending step is gone once used.
    assert client.get("/staff/login/code").status_code == 302

    # A wrong password never reaches the code step.
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})
    wrong_password = login(client, desk["colleague"], "not the password")
    assert wrong_password.status_code == 200
    assert client.get("/staff/login/code").status_code == 302

    # Switching off takes a current code too.
    login(client, desk["colleague"])
    factories.post_form(client, "/staff/login/code", {"code": clock.next_code(secret)})
    refused = factories.post_form(
        client, "/account/security/disable", {"code": "000000"}, token_from="/account/security"
    )
    assert "The code is not correct." in refused.get_data(as_text=True)
    off = factories.post_form(
        client,
        "/account/security/disable",
        {"code": clock.next_code(secret)},
        token_from="/account/security",
    )
    assert off.status_code == 302
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})
    assert login(client, desk["colleague"]).headers["Location"] == "/desk/"

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == desk["colleague"]))
        assert user is not None and user.totp_secret is None and user.totp_confirmed_at is None
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.verb, e.before, e.after) for e in entries] == [
            ("user.totp_on", {"totp": False}, {"totp": True}),
            ("user.totp_off", {"totp": True}, {"totp": False}),
        ]
        assert all(secret not in str(e.after) for e in entries)


def test_a_code_logs_in_once(
    app: Flask, client: FlaskClient, desk: dict[str, Any], clock: Clock
) -> None:
    # A code read over a shoulder, or kept in a proxy's log, is no use after the login it made,
    # not even within its own 30 seconds.
    login(client, desk["colleague"])
    secret = enable_totp(client, clock)
    code = clock.next_code(secret)
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})
    login(client, desk["colleague"])
    used = factories.post_form(client, "/staff/login/code", {"code": code})
    assert used.status_code == 302 and used.headers["Location"] == "/desk/"
    client.post("/logout", data={"csrf_token": factories.csrf_token(client, "/desk/")})

    login(client, desk["colleague"])
    again = factories.post_form(client, "/staff/login/code", {"code": code})
    assert again.status_code == 200
    assert "The code is not correct." in again.get_data(as_text=True)
    assert client.get("/desk/").status_code == 302
    # Nor an older one that is still within the window for clocks a little apart.
    older = pyotp.TOTP(secret).at(clock.now - 30)
    assert factories.post_form(client, "/staff/login/code", {"code": older}).status_code == 200
    # The next code does.
    nxt = factories.post_form(client, "/staff/login/code", {"code": clock.next_code(secret)})
    assert nxt.status_code == 302 and nxt.headers["Location"] == "/desk/"


def test_the_same_code_twice_at_the_same_moment_logs_in_once(
    app: Flask, desk: dict[str, Any]
) -> None:
    code = pyotp.TOTP(two_factor_on(app, desk["colleague"])).now()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == desk["colleague"]))
        assert user is not None
        assert services._use_code(user, code)
        db.session.commit()
        # The other request loaded the user before this one claimed the step: what it holds
        # in memory says "unused", and only the database knows better.
        set_committed_value(user, "totp_last_step", None)
        assert not services._use_code(user, code)


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "4 per minute"}], indirect=True
)
def test_the_code_step_is_rate_limited(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    secret = two_factor_on(app, desk["colleague"])
    assert login(client, desk["colleague"]).headers["Location"] == "/staff/login/code"
    statuses = [
        factories.post_form(client, "/staff/login/code", {"code": "000000"}).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    # Even the right code waits now: guessing cannot go on.
    late = factories.post_form(client, "/staff/login/code", {"code": pyotp.TOTP(secret).now()})
    assert late.status_code == 429
    assert client.get("/desk/").status_code == 302


def test_the_code_step_expires(app: Flask, client: FlaskClient, desk: dict[str, Any]) -> None:
    secret = two_factor_on(app, desk["colleague"])
    login(client, desk["colleague"])
    with client.session_transaction() as session:
        session["pending_2fa"]["at"] -= int(services.SECOND_STEP_TTL.total_seconds()) + 1
        session.modified = True
    response = client.post(
        "/staff/login/code",
        data={
            "code": pyotp.TOTP(secret).now(),
            "csrf_token": factories.csrf_token(client, "/staff/login"),
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"
    assert client.get("/desk/").status_code == 302
