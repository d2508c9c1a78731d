"""The life of a login (ASVS chapter 3) and the account's own password (chapter 2).

A session cookie copied before logout, a password change, two-factor login switched or the
account deactivated no longer opens anything; a session ends after a while without activity and
after its lifetime; new passwords on lists of leaked and common ones are refused with the reason;
failed passwords and codes are limited per account (a growing delay), failed logins per client
address, and successful logins never count.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pyotp
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from werkzeug.serving import make_server

from coop.accounts import sessions, throttle
from coop.accounts.models import LoginLinkRequest, User
from coop.core import jobs
from coop.core.audit import AuditEntry
from coop.core.models import EmailLog
from coop.extensions import db
from tests import factories

NEW_PASSWORD = "fiets tulp kanaal 1987 regen"
STAFF = "staff@example.nl"


def log_in(client: FlaskClient, email: str = STAFF, password: str = factories.PASSWORD) -> Any:
    client.get("/language/en")
    return factories.post_form(client, "/staff/login", {"email": email, "password": password})


def copy_of(client: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser holding the same session cookie: a copied cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    other.set_cookie("session", cookie.value)
    return other


def opens_the_desk(client: FlaskClient) -> bool:
    return client.get("/desk/").status_code == 200


@pytest.fixture
def staff(app: Flask) -> int:
    with app.app_context():
        org = factories.organisation()
        member = factories.staff(org, STAFF)
        admin = factories.staff(org, "admin@example.nl")
        admin.is_desk_admin = True
        db.session.commit()
        return member.id


def user(app: Flask, user_id: int) -> User:
    with app.app_context():
        found = db.session.get(User, user_id)
        assert found is not None
        db.session.expunge(found)
        return found


# --- sessions that end -------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_opens_the_desk(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    assert log_in(client).status_code == 302
    copied = copy_of(client, app)
    assert opens_the_desk(copied)
    token = factories.csrf_token(client, "/desk/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not opens_the_desk(client)
    response = copied.get("/desk/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # Logging in again works, and the old copy stays dead.
    assert log_in(client).status_code == 302
    assert opens_the_desk(client)
    assert not opens_the_desk(copied)


def test_a_residents_copied_cookie_is_refused_after_logout(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        resident = factories.confirmed_registration(
            factories.action(), email="anna@example.nl"
        ).user
        resident_id = resident.id
    from tests.login import sign_in

    sign_in(client, resident_id)
    assert client.get("/my").status_code == 200
    copied = copy_of(client, app)
    token = factories.csrf_token(client, "/my")
    client.post("/logout", data={"csrf_token": token})
    assert copied.get("/my").status_code == 302


def test_a_new_password_ends_every_other_session_and_keeps_this_one(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    assert log_in(client).status_code == 302
    elsewhere = app.test_client()
    assert log_in(elsewhere).status_code == 302
    copied = copy_of(client, app)
    response = factories.post_form(
        client,
        "/account/password",
        {"current": factories.PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert opens_the_desk(client)  # the person who changed it goes on
    assert not opens_the_desk(copied)  # a copy of their cookie from before does not
    assert not opens_the_desk(elsewhere)  # nor another device
    assert log_in(elsewhere).status_code == 200  # the old password is gone
    assert log_in(elsewhere, password=NEW_PASSWORD).status_code == 302
    with app.app_context():
        verbs = list(db.session.scalars(select(AuditEntry.verb)))
        assert "user.password_change" in verbs


def test_the_current_password_is_needed_and_a_common_new_one_is_refused_with_the_reason(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    log_in(client)
    wrong = factories.post_form(
        client,
        "/account/password",
        {"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert "This is not your current password." in wrong.get_data(as_text=True)
    for common in ("password1234", "Welkom123456", "wachtwoord2026", "qwertyuiop12"):
        response = factories.post_form(
            client,
            "/account/password",
            {"current": factories.PASSWORD, "password": common, "confirm": common},
        )
        assert response.status_code == 200, common
        page = response.get_data(as_text=True)
        assert "on lists of passwords that leaked or are used a lot" in page, common
    guessable = "Zz9!Zz9!Zz9!"
    response = factories.post_form(
        client,
        "/account/password",
        {"current": factories.PASSWORD, "password": guessable, "confirm": guessable},
    )
    assert "too easy to guess" in response.get_data(as_text=True)
    # Nothing changed: the old password still logs in.
    assert log_in(app.test_client()).status_code == 302


def test_the_invitation_refuses_a_common_password_too(app: Flask, client: FlaskClient) -> None:
    from coop.accounts import services
    from coop.accounts.models import LoginPurpose

    with app.test_request_context():
        admin = factories.staff(factories.organisation(), "admin@example.nl")
        invited = services.invite_user(admin, "nieuw@example.nl", "Nina Nieuw", admin.role)
        token = services.issue_login_token(invited, LoginPurpose.INVITE)
        db.session.commit()
        path = services.invitation_link(token).removeprefix("http://localhost")
    client.get("/language/en")
    response = factories.post_form(
        client, path, {"password": "Welkom123456", "confirm": "Welkom123456"}
    )
    assert response.status_code == 200
    assert "on lists of passwords that leaked" in response.get_data(as_text=True)


def test_two_factor_on_and_off_end_the_other_sessions(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    log_in(client)
    copied = copy_of(client, app)
    factories.post_form(client, "/account/security/setup", {}, token_from="/account/security")
    secret = user(app, staff).totp_secret
    assert secret
    code = pyotp.TOTP(secret).now()
    response = factories.post_form(
        client, "/account/security/confirm", {"code": code}, token_from="/account/security"
    )
    assert response.status_code == 302
    assert opens_the_desk(client)
    assert not opens_the_desk(copied)

    copied = copy_of(client, app)
    # The next code (a code works once), from the app's next 30 seconds.
    from coop.accounts.services import two_factor as services

    later = pyotp.TOTP(secret).at(time.time() + 30)
    original = services._clock
    services._clock = lambda: time.time() + 30  # type: ignore[assignment]
    try:
        response = factories.post_form(
            client, "/account/security/disable", {"code": later}, token_from="/account/security"
        )
    finally:
        services._clock = original  # type: ignore[assignment]
    assert response.status_code == 302
    assert opens_the_desk(client)
    assert not opens_the_desk(copied)


def test_idle_and_old_sessions_end(
    app: Flask, client: FlaskClient, staff: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    monkeypatch.setattr(sessions, "_clock", lambda: now[0])
    log_in(client)
    # Active every 29 minutes: the session goes on...
    for _ in range(5):
        now[0] += 29 * 60
        assert opens_the_desk(client)
    # ...until 31 minutes pass without a request.
    now[0] += 31 * 60
    response = client.get("/desk/")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were logged out after a while without activity." in page

    # However active, after 12 hours the login ends.
    log_in(client)
    started = now[0]
    while opens_the_desk(client):
        now[0] += 29 * 60
        assert now[0] - started < 13 * 3600, "the session outlived its lifetime"
    assert now[0] - started > 12 * 3600


def test_a_resident_session_lasts_longer(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.login import sign_in

    now = [time.time()]
    monkeypatch.setattr(sessions, "_clock", lambda: now[0])
    with app.app_context():
        resident_id = factories.confirmed_registration(
            factories.action(), email="anna@example.nl"
        ).user.id
    sign_in(client, resident_id)
    now[0] += 3 * 3600  # an afternoon away: still logged in
    assert client.get("/my").status_code == 200
    now[0] += 5 * 3600
    assert client.get("/my").status_code == 302


# --- deactivation (issue 12, defect 8) -----------------------------------------------------------


def test_a_desk_admin_deactivates_a_colleague_who_is_logged_out_at_once(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    colleague = app.test_client()
    assert log_in(colleague).status_code == 302
    copied = copy_of(colleague, app)
    log_in(client, "admin@example.nl")
    team = client.get("/desk/team").get_data(as_text=True)
    assert "Deactivate Sanne Staff" in team
    response = factories.post_form(
        client, f"/desk/users/{staff}/deactivate", {}, token_from="/desk/team"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/desk/team"
    assert not opens_the_desk(colleague)
    assert not opens_the_desk(copied)
    assert log_in(app.test_client()).status_code == 200  # cannot log in
    page = client.get("/desk/team").get_data(as_text=True)
    assert "Deactivated" in page and "Reactivate" in page
    with app.app_context():
        entries = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert entries[-1].verb == "user.deactivate"
        assert entries[-1].after == {"active": False}
    # And back: the colleague logs in again.
    factories.post_form(client, f"/desk/users/{staff}/reactivate", {}, token_from="/desk/team")
    assert log_in(colleague).status_code == 302
    with app.app_context():
        assert db.session.scalars(select(AuditEntry.verb)).all()[-1] == "user.reactivate"


def test_only_a_desk_admin_of_the_desk_deactivates_and_never_their_own_account(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    with app.app_context():
        admin_id = db.session.scalar(select(User.id).where(User.email == "admin@example.nl"))
        other = factories.staff(factories.organisation("Elders"), "elders@example.nl")
        other.is_desk_admin = True
        db.session.commit()
    log_in(client)  # not an admin
    token = factories.csrf_token(client, "/desk/")
    assert (
        client.post(f"/desk/users/{admin_id}/deactivate", data={"csrf_token": token}).status_code
        == 404
    )
    elders = app.test_client()
    log_in(elders, "elders@example.nl")
    token = factories.csrf_token(elders, "/desk/")
    assert (
        elders.post(f"/desk/users/{staff}/deactivate", data={"csrf_token": token}).status_code
        == 404
    )
    admin = app.test_client()
    log_in(admin, "admin@example.nl")
    token = factories.csrf_token(admin, "/desk/team")
    assert (
        admin.post(f"/desk/users/{admin_id}/deactivate", data={"csrf_token": token}).status_code
        == 404
    )
    assert user(app, staff).is_active_account and user(app, admin_id).is_active_account


def test_an_installers_user_is_deactivated_from_the_installer_page(
    app: Flask, client: FlaskClient, staff: int
) -> None:
    with app.app_context():
        org = db.session.scalar(select(User).where(User.email == STAFF)).organisation  # type: ignore[union-attr]
        company = factories.installer(org)
        fitter = factories.installer_user(company, "fitter@example.nl")
        company_id, fitter_id = company.id, fitter.id
    portal = app.test_client()
    assert log_in(portal, "fitter@example.nl").status_code == 302
    assert portal.get("/installer").status_code == 200
    log_in(client, "admin@example.nl")
    page = client.get(f"/desk/installers/{company_id}").get_data(as_text=True)
    assert "Deactivate" in page
    response = factories.post_form(
        client,
        f"/desk/users/{fitter_id}/deactivate",
        {},
        token_from=f"/desk/installers/{company_id}",
    )
    assert response.headers["Location"] == f"/desk/installers/{company_id}"
    assert portal.get("/installer").status_code == 302
    assert log_in(app.test_client(), "fitter@example.nl").status_code == 200


# --- limits: failures, per account and per address -------------------------------------------

LIMITED = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "5 per minute",
    "LOGIN_ACCOUNT_FREE_FAILURES": 10,
    "LOGIN_ACCOUNT_MAX_DELAY": 60,
}


def from_address(app: Flask, number: int) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
    return client


@pytest.mark.parametrize("app_config", [LIMITED])
@pytest.mark.parametrize("email", [STAFF, "nobody@example.nl"])
def test_the_eleventh_failure_on_one_account_from_another_address_waits(
    app: Flask, staff: int, email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sprayer with an address per attempt: ten tries, then a delay that grows; the same for
    an address without an account (the answer tells nothing)."""
    for number in range(10):
        response = log_in(from_address(app, number + 1), email, f"guess-number-{number}")
        assert response.status_code == 200
        assert "is not correct" in response.get_data(as_text=True)
    response = log_in(from_address(app, 99), email, factories.PASSWORD)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert re.search(r"Too many attempts for this account\. Wait [12] seconds? and try again", page)
    with app.app_context():
        assert throttle.delay_after(10) == 2 and throttle.delay_after(11) == 4
        assert throttle.delay_after(30) == 60  # never more than LOGIN_ACCOUNT_MAX_DELAY
    time.sleep(2.1)
    # The wait is over: one attempt. With the right password the staff member is in.
    response = log_in(from_address(app, 98), email, factories.PASSWORD)
    assert response.status_code == (302 if email == STAFF else 200)


@pytest.mark.parametrize("app_config", [LIMITED])
def test_logging_in_all_day_from_one_office_is_never_limited(app: Flask, staff: int) -> None:
    """Successful logins do not count: three colleagues behind one address, again and again."""
    with app.app_context():
        org = db.session.scalar(select(User).where(User.email == STAFF)).organisation  # type: ignore[union-attr]
        company = factories.installer(org)
        factories.installer_user(company, "fitter1@example.nl")
        factories.installer_user(company, "fitter2@example.nl")
    for _ in range(4):
        for email in (STAFF, "fitter1@example.nl", "fitter2@example.nl"):
            client = from_address(app, 7)
            assert log_in(client, email).status_code == 302
    # Failures from that address do count: after five, even the right password waits.
    for _ in range(5):
        assert log_in(from_address(app, 7), STAFF, "wrong").status_code == 200
    response = log_in(from_address(app, 7), STAFF)
    assert response.status_code == 429
    assert "Please wait" in response.get_data(as_text=True)
    assert log_in(from_address(app, 8), STAFF).status_code == 302  # another address


@pytest.mark.parametrize("app_config", [LIMITED])
def test_failed_codes_are_limited_per_account(app: Flask, staff: int) -> None:
    with app.app_context():
        member = db.session.get(User, staff)
        assert member is not None
        member.totp_secret = pyotp.random_base32()
        from coop.core.time import utcnow

        member.totp_confirmed_at = utcnow()
        db.session.commit()
    for number in range(10):
        client = from_address(app, number + 1)
        assert log_in(client).status_code == 302  # the password step
        response = factories.post_form(client, "/staff/login/code", {"code": "000000"})
        assert response.status_code == 200
    client = from_address(app, 50)
    log_in(client)
    response = factories.post_form(client, "/staff/login/code", {"code": "123456"})
    assert response.status_code == 429
    assert "Too many attempts for this account" in response.get_data(as_text=True)


# --- no account enumeration by timing on /login --------------------------------------------------


@pytest.fixture
def statements(app: Flask) -> list[str]:
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen  # type: ignore[misc]
    event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("app_config", [{"REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_the_login_form_does_the_same_work_for_known_and_unknown_addresses(
    app: Flask, statements: list[str]
) -> None:
    """With a queue, the request itself is all the time an outsider can measure: the same
    statements for an address of a resident and one nobody has (the job tells them apart)."""
    with app.app_context():
        factories.confirmed_registration(factories.action(), email="anna@example.nl")
    work = {}
    for email in ("anna@example.nl", "nobody@example.nl"):
        client = app.test_client()
        token = factories.csrf_token(client, "/login")
        statements.clear()
        response = client.post("/login", data={"email": email, "csrf_token": token})
        assert response.status_code == 302
        work[email] = list(statements)
    assert work["anna@example.nl"] == work["nobody@example.nl"]
    assert any("login_link_requests" in s for s in work["nobody@example.nl"])
    assert not any("login_tokens" in s for s in work["anna@example.nl"])


def test_login_requests_keep_no_address_after_their_job(app: Flask) -> None:
    """The job deletes the request (the address typed is not kept); a request whose job never
    ran is forgotten after a day by the scheduler's task."""
    from datetime import timedelta

    from coop.accounts.models import LoginLinkRequest
    from coop.accounts.services import forget_login_requests
    from coop.core.time import utcnow

    client = app.test_client()
    factories.post_form(client, "/login", {"email": "nobody@example.nl"})
    with app.app_context():
        assert db.session.scalars(select(LoginLinkRequest)).all() == []
        db.session.add(
            LoginLinkRequest(email="old@example.nl", created_at=utcnow() - timedelta(days=2))
        )
        db.session.add(LoginLinkRequest(email="new@example.nl"))
        db.session.commit()
        assert forget_login_requests() == 1
        assert [r.email for r in db.session.scalars(select(LoginLinkRequest))] == ["new@example.nl"]


def test_on_the_embedded_default_the_login_form_answers_before_its_job_runs(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a queue the jobs run in the web process, after the response has gone out: the
    answer to /login never waits for the job that finds out whether a resident has the address
    (and emails the link), so its time says nothing about who is registered. The job is held
    here until the browser has its answer; before, the answer waited for the job."""
    with app.app_context():
        factories.confirmed_registration(factories.action(), email="anna@example.nl")
    release = threading.Event()
    deliver = jobs._handlers["accounts.deliver_login_link"]

    def held(**args: Any) -> None:
        assert release.wait(15), "the test never let the job go"
        deliver(**args)

    monkeypatch.setitem(jobs._handlers, "accounts.deliver_login_link", held)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="login-server", daemon=True)
    thread.start()
    try:
        browser = requests.Session()
        base = f"http://127.0.0.1:{server.server_port}"
        form = browser.get(f"{base}/login", timeout=5).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
        assert token
        try:
            answer = browser.post(
                f"{base}/login",
                data={"email": "anna@example.nl", "csrf_token": token.group(1)},
                allow_redirects=False,
                timeout=3,
            )
        except requests.Timeout:
            pytest.fail("/login answered only after its job had run")
        assert answer.status_code == 302
        with app.app_context():
            assert len(db.session.scalars(select(LoginLinkRequest)).all()) == 1  # not run yet
            db.session.remove()
        release.set()
        deadline = time.monotonic() + 10
        sent = None
        while sent is None and time.monotonic() < deadline:
            with app.app_context():
                sent = db.session.scalar(
                    select(EmailLog).where(EmailLog.recipient == "anna@example.nl")
                )
                db.session.remove()
            time.sleep(0.05)
        assert sent is not None and sent.template == "login_link"
    finally:
        release.set()
        server.shutdown()
        thread.join(timeout=10)
