"""Logging in: single-use magic links for residents, passwords for staff and installers, rate
limits on the forms that send email or check passwords, and logout by POST only."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import LoginPurpose, LoginToken, Role, User
from coop.accounts.services import login_link
from coop.core import tokens
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.registrations.models import Registration, RegistrationStatus
from coop.residents import services as residents
from tests import factories
from tests.login import sign_in

RESIDENT = "anna@example.nl"


def resident(email: str = RESIDENT) -> User:
    user = User(email=email, name="Anna de Vries", role=Role.RESIDENT, language="en")
    db.session.add(user)
    db.session.commit()
    return user


def ask_link(client: FlaskClient, email: str, next_path: str = "") -> Any:
    url = f"/login?next={next_path}" if next_path else "/login"
    return factories.post_form(client, url, {"email": email, "next": next_path}, token_from=url)


def newest_link(app: Flask) -> str:
    with app.app_context():
        token = db.session.scalars(select(LoginToken).order_by(LoginToken.id.desc())).first()
        assert token is not None
        return login_link(token).removeprefix("http://localhost")


def logged_in(client: FlaskClient) -> bool:
    response = client.get("/my")
    return response.status_code == 200


def login_emails(app: Flask) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(EmailLog.recipient)
                .where(EmailLog.template == "login_link")
                .order_by(EmailLog.id)
            )
        )


@pytest.fixture
def english(client: FlaskClient) -> FlaskClient:
    client.get("/language/en")
    return client


# --- the login form ----------------------------------------------------------------------


def test_login_form_answers_alike_and_emails_only_known_residents(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        resident()
        factories.staff(factories.organisation())
    pages = []
    for email in ("Anna@Example.nl ", "nobody@example.nl", "staff@example.nl"):
        response = ask_link(english, email)
        assert response.status_code == 302
        assert response.headers["Location"] == "/login/sent"
        pages.append(english.get("/login/sent").get_data(as_text=True))
    assert pages[0] == pages[1] == pages[2]
    assert "If this email address is known to us" in pages[0]
    # Only the resident got a link; staff log in with their password.
    assert login_emails(app) == [RESIDENT]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginToken)) == 1
        assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_a_login_link_logs_in_once_and_goes_to_the_page_asked_for(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT, next_path="/my/export")
    path = newest_link(app)
    assert english.get(path).status_code == 200  # looking at it does not use it
    assert not logged_in(english)

    response = factories.post_form(english, path, {})
    assert response.status_code == 302
    assert response.headers["Location"] == "/my/export"
    assert logged_in(english)
    with app.app_context():
        token = db.session.scalars(select(LoginToken)).one()
        assert token.used_at is not None
        assert token.user.last_login_at is not None

    # The same link again, in this browser or another: "already used", and nobody logged in;
    # the page says so at once, and the button's POST (a page opened before) says it too.
    other = app.test_client()
    other.get("/language/en")
    for client in (english, other):
        opened = client.get(path)
        assert opened.status_code == 400
        assert "This link has already been used." in opened.get_data(as_text=True)
        assert "Welcome back" not in opened.get_data(as_text=True)
        response = factories.post_form(client, path, {}, token_from="/login")
        assert response.status_code == 400
        assert "This link has already been used." in response.get_data(as_text=True)
    assert not logged_in(other)


def test_a_working_link_greets_a_login_and_words_a_first_confirmation_as_confirming(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        form = factories.registration_form(act)
        slug = act.slug
    factories.post_form(english, f"/actions/{slug}/register", form)
    with app.app_context():
        confirm = db.session.scalars(
            select(LoginToken).where(LoginToken.purpose == LoginPurpose.CONFIRM_REGISTRATION)
        ).one()
        confirm_path = login_link(confirm).removeprefix("http://localhost")
    page = english.get(confirm_path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<h1>Confirm your registration</h1>" in text
    assert "Confirm my registration" in text and "Welcome back" not in text

    ask_link(english, form["email"])
    login = english.get(newest_link(app)).get_data(as_text=True)
    assert "<h1>Welcome back</h1>" in login and "Confirm my registration" not in login
    with app.app_context():
        assert all(t.used_at is None for t in db.session.scalars(select(LoginToken)))


def test_login_link_never_redirects_off_site(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT, next_path="https://evil.example/phish")
    response = factories.post_form(english, newest_link(app), {})
    assert response.status_code == 302
    assert response.headers["Location"] == "/my"


def test_a_tampered_link_is_not_valid(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT)
    path = newest_link(app)
    signed = path.removeprefix("/login/")
    payload, _, signature = signed.rpartition(".")
    # The first character: the last one of unpadded base64 carries padding bits, and changing
    # only those decodes to the same signature (the test then passed a valid link by chance).
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (f"{payload}.{flipped}", signed[:-3], "x" * 600, "not-a-token"):
        opened = english.get(f"/login/{bad}")
        assert opened.status_code == 400, bad
        assert "This link is not valid." in opened.get_data(as_text=True)
        assert "Ask for a new login link" in opened.get_data(as_text=True)
        response = factories.post_form(english, f"/login/{bad}", {}, token_from="/login")
        assert response.status_code == 400, bad
        assert "This link is not valid." in response.get_data(as_text=True)
    assert not logged_in(english)
    with app.app_context():
        assert db.session.scalars(select(LoginToken)).one().used_at is None


def test_a_token_signed_for_another_purpose_is_not_a_login_link(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT)
    with app.app_context(), app.test_request_context():
        token = db.session.scalars(select(LoginToken)).one()
        # The same id and nonce, signed with another salt (as a future unsubscribe link would be).
        foreign = tokens.sign("unsubscribe", {"id": token.id, "n": token.nonce})
    response = factories.post_form(english, f"/login/{foreign}", {}, token_from="/login")
    assert response.status_code == 400
    assert "This link is not valid." in response.get_data(as_text=True)
    assert not logged_in(english)


def test_a_plain_login_link_does_not_confirm_a_registration(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        form = factories.registration_form(act)
        slug = act.slug
    factories.post_form(english, f"/actions/{slug}/register", form)
    ask_link(english, form["email"])
    with app.app_context():
        login = db.session.scalars(
            select(LoginToken).where(LoginToken.purpose == LoginPurpose.LOGIN)
        ).one()
        path = login_link(login).removeprefix("http://localhost")
    response = factories.post_form(english, path, {})
    assert response.status_code == 302
    assert response.headers["Location"] == "/my"
    with app.app_context():
        registration = db.session.scalars(select(Registration)).one()
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION


def test_an_expired_link_is_refused(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    before = utcnow()
    ask_link(english, RESIDENT)
    path = newest_link(app)
    with app.app_context():
        token = db.session.scalars(select(LoginToken)).one()
        ttl = timedelta(minutes=app.config["MAGIC_LINK_TTL_MINUTES"])
        assert before + ttl <= token.expires_at <= utcnow() + ttl
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    opened = english.get(path)
    assert opened.status_code == 400
    assert "This link has expired." in opened.get_data(as_text=True)
    assert "Ask for a new login link" in opened.get_data(as_text=True)
    response = factories.post_form(english, path, {}, token_from="/login")
    assert response.status_code == 400
    assert "This link has expired." in response.get_data(as_text=True)
    assert not logged_in(english)
    with app.app_context():
        assert db.session.scalars(select(LoginToken)).one().used_at is None


def test_the_link_of_an_erased_resident_is_not_valid(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT)
    path = newest_link(app)
    with app.app_context():
        residents.erase_resident(db.session.scalars(select(User)).one())
    response = factories.post_form(english, path, {}, token_from="/login")
    assert response.status_code == 400
    assert "This link is not valid." in response.get_data(as_text=True)
    assert not logged_in(english)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_a_deactivated_account_cannot_use_its_link(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    ask_link(english, RESIDENT)
    path = newest_link(app)
    with app.app_context():
        db.session.scalars(select(User)).one().is_active_account = False
        db.session.commit()
    assert factories.post_form(english, path, {}, token_from="/login").status_code == 400
    assert not logged_in(english)


# --- staff and installers: passwords -----------------------------------------------------


def test_staff_and_installers_log_in_with_their_password(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        org = factories.organisation()
        factories.staff(org)
        installer = Installer(
            organisation_id=org.id,
            company_name="Isolatie Utrecht BV",
            kvk_number="12345678",
            email="info@isolatie.example",
            city="Utrecht",
        )
        db.session.add(installer)
        db.session.flush()
        db.session.add(
            User(
                email="fitter@isolatie.example",
                name="Fatima Fitter",
                role=Role.INSTALLER,
                installer_id=installer.id,
                password_hash=factories.password_hash(),
            )
        )
        db.session.commit()
    response = factories.post_form(
        english, "/staff/login", {"email": "Staff@Example.nl", "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/desk/"
    assert english.get("/desk/").status_code == 200

    installer_client = app.test_client()
    response = factories.post_form(
        installer_client,
        "/staff/login",
        {"email": "fitter@isolatie.example", "password": factories.PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/installer"
    assert installer_client.get("/installer").status_code == 200
    # The old address of the start page still leads there.
    assert installer_client.get("/desk/installer").headers["Location"] == "/installer"


def test_wrong_password_and_unknown_email_get_the_same_answer(
    app: Flask, english: FlaskClient
) -> None:
    with app.app_context():
        factories.staff(factories.organisation())
        resident()
    answers = []
    for email, password in (
        ("staff@example.nl", "wrong password"),
        ("nobody@example.nl", factories.PASSWORD),
        (RESIDENT, factories.PASSWORD),  # residents have no password at all
        ("staff\x00@example.nl", factories.PASSWORD),
    ):
        response = factories.post_form(
            english, "/staff/login", {"email": email, "password": password}
        )
        assert response.status_code == 200, email
        page = response.get_data(as_text=True)
        assert "The email address or password is not correct." in page
        main = page[page.index("<main") : page.index("</main>")].replace(email, "")
        # The CSRF token carries a timestamp; everything else must be the same.
        answers.append(re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", main))
    assert len(set(answers)) == 1
    assert english.get("/desk/").status_code == 302  # still not logged in


# --- logout ------------------------------------------------------------------------------


def test_logout_is_a_post_with_csrf_token(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        user_id = resident().id
    sign_in(english, user_id)
    assert logged_in(english)

    assert english.get("/logout").status_code == 405
    assert english.post("/logout").status_code == 400  # no CSRF token: a forged form
    assert logged_in(english)

    response = factories.post_form(english, "/logout", {}, token_from="/my")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert not logged_in(english)


# --- rate limits -------------------------------------------------------------------------

LIMITED = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "3 per minute",
    "RATELIMIT_SIGNUP": "2 per minute",
}


@pytest.mark.parametrize("app_config", [LIMITED])
def test_login_form_is_rate_limited(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        resident()
    # A form sent back for a typing error does not count.
    for _ in range(3):
        assert factories.post_form(english, "/login", {"email": "anna@"}).status_code == 200
    for _ in range(2):  # RATELIMIT_SIGNUP per client address
        assert ask_link(english, RESIDENT).status_code == 302
    response = ask_link(english, RESIDENT)
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    # How long: the rest of the minute, in words.
    assert re.search(
        r"Please wait (1 minute|[1-5]?\d seconds?) and try again\.", response.get_data(as_text=True)
    )
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert len(login_emails(app)) == 2
    # Looking at the form is not limited; only sending it is.
    assert english.get("/login").status_code == 200


@pytest.mark.parametrize(
    "app_config",
    [{**LIMITED, "RATELIMIT_SIGNUP": "50 per minute", "RATELIMIT_PER_EMAIL": "2 per hour"}],
)
def test_login_links_to_one_address_are_limited_whoever_asks(app: Flask) -> None:
    with app.app_context():
        resident()
    for number in range(4):  # from four addresses
        client = app.test_client()
        response = factories.post_form(
            client,
            "/login",
            {"email": RESIDENT},
            environ_base={"REMOTE_ADDR": f"192.0.2.{number + 1}"},
        )
        # The same answer over the limit: it tells nothing about the address.
        assert response.status_code == 302
    assert len(login_emails(app)) == 2


@pytest.mark.parametrize("app_config", [LIMITED])
def test_password_login_is_rate_limited(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        factories.staff(factories.organisation())
    for _ in range(3):
        response = factories.post_form(
            english, "/staff/login", {"email": "staff@example.nl", "password": "guess"}
        )
        assert response.status_code == 200
    # Even the right password waits now: guessing must not go on.
    response = factories.post_form(
        english, "/staff/login", {"email": "staff@example.nl", "password": factories.PASSWORD}
    )
    assert response.status_code == 429
    assert english.get("/desk/").status_code == 302


@pytest.mark.parametrize("app_config", [LIMITED])
def test_sign_up_is_rate_limited(app: Flask, english: FlaskClient) -> None:
    with app.app_context():
        act = factories.action()
        url = f"/actions/{act.slug}/register"
        forms = [
            factories.registration_form(act, house_number=str(n), email=f"r{n}@example.nl")
            for n in (1, 2, 3)
        ]
    # Forms sent back for a typing error do not count.
    for _ in range(3):
        typo = {**forms[0], "postcode": "35 24"}
        assert factories.post_form(english, url, typo).status_code == 200
    assert factories.post_form(english, url, forms[0]).status_code == 302
    assert factories.post_form(english, url, forms[1]).status_code == 302
    # Over the limit: the form again, with what was typed and how long to wait.
    response = factories.post_form(english, url, forms[2])
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert re.search(r"What you typed is kept: wait (1 minute|[1-5]?\d seconds?) and send", page)
    assert 'value="r3@example.nl"' in page
    assert 'value="3"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 2


@pytest.mark.parametrize("app_config", [LIMITED])
def test_opening_used_links_again_is_no_guess_but_a_tampered_one_is(
    app: Flask, english: FlaskClient
) -> None:
    """Failed uses of a link are limited per address so that guessing gets nowhere; a link we
    signed that was used or has expired is no guess: a household (or an office behind one
    address) opening last month's emails keeps seeing what each link says."""
    with app.app_context():
        resident()
    ask_link(english, RESIDENT)
    path = newest_link(app)
    assert factories.post_form(english, path, {}).status_code == 302
    for _ in range(6):  # twice RATELIMIT_LOGIN
        opened = english.get(path)
        assert opened.status_code == 400
        assert "This link has already been used." in opened.get_data(as_text=True)
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    answers = [english.get(tampered).status_code for _ in range(4)]
    assert answers == [400, 400, 400, 429]
