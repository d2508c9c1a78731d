"""Protections checked on every route, generated from ``app.url_map`` so that a new route is
covered without anyone remembering to (ASVS 4.0 chapters 4, 5, 11 and 13):

- every id of 2^31 or more in an address answers 404 (PostgreSQL's integers are 32 bits; SQLite
  refuses numbers above 64 bits): on both databases, as visitor and as staff;
- every POST refuses a request without a CSRF token, except the few routes whose callers cannot
  have one (each named below with its reason);
- every route with a token or key in its address (a link from an email, a feed) limits failed
  uses per client address, and every login route of ``accounts`` limits failures;
- the redirect after language switch and login link stays on the site for the known bypasses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from coop.accounts.models import User
from coop.core.time import utcnow
from coop.core.web import MAX_ID, IdConverter, is_link_route, safe_next
from coop.extensions import csrf, db
from tests import factories
from tests.login import sign_in
from tests.test_authorization import TARGETS, build_world, value_of

BIG_IDS = (2**31, 10**20)


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """The authorisation matrix's world: two desks and their objects, every role."""
    return build_world(app)


def int_arguments(rule: Rule) -> list[str]:
    return [
        name for name, converter in rule._converters.items() if isinstance(converter, IdConverter)
    ]


def url_with(rule: Rule, world: dict[str, Any], number: int, *, bogus: bool = False) -> str:
    """``rule``'s address with ``number`` for every id and the world's first objects for the
    rest (``bogus``: a token or key nobody has)."""
    parameters = tuple(sorted(rule.arguments, key=rule.rule.index))
    combinations = TARGETS[parameters]
    if bogus:
        combinations = tuple(c for c in combinations if any("bogus" in o for o in c))
    combination = combinations[0]
    values = {p: value_of(p, o, world) for p, o in zip(parameters, combination, strict=True)}
    values.update(dict.fromkeys(int_arguments(rule), number))
    return str(rule.build(values, append_unknown=False)[1])  # type: ignore[index]


def routes(app: Flask, keep: Callable[[Rule], bool]) -> list[Rule]:
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static" and keep(r)),
        key=lambda r: (r.rule, r.endpoint),
    )


# --- ids out of range ---------------------------------------------------------------------------


def test_every_route_with_an_id_of_2_31_or_more_answers_404(
    app: Flask, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coop.core.web")
    with_ids = routes(app, lambda r: bool(int_arguments(r)))
    assert len(with_ids) > 60  # the URL map, not a list kept by hand
    wrong: list[str] = []
    for role in ("anonymous", "staff_a", "resident_a", "installer"):
        client = app.test_client()
        token = factories.csrf_token(client, "/login")
        sign_in(client, world["users"].get(role))
        for rule in with_ids:
            for number in BIG_IDS:
                url = url_with(rule, world, number)
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    data = {"csrf_token": token} if method == "POST" else None
                    response = client.open(url, method=method, data=data)
                    if response.status_code != 404:
                        wrong.append(f"{role} {method} {url}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert "id out of range" in caplog.text  # logged, for whoever watches for probing
    # The largest id that can exist still reaches the page (and its usual answer).
    client = app.test_client()
    assert client.get(f"/meetings/{MAX_ID}").status_code == 404
    assert client.get(f"/meetings/{world['objects']['meet_a']}").status_code == 200


# --- CSRF on every POST -------------------------------------------------------------------------

# Routes whose callers cannot hold a CSRF token, and why.
CSRF_EXEMPT = {
    # Stripe's servers; the Stripe-Signature header is verified instead.
    "payments.stripe_webhook",
    # RFC 8058: a mail program posts without cookies; the signed token in the address is the
    # permission, and the body must say "List-Unsubscribe=One-Click".
    "unsubscribe.one_click_unsubscribe",
}


def test_every_post_route_refuses_a_request_without_a_csrf_token(
    app: Flask, world: dict[str, Any]
) -> None:
    posts = routes(app, lambda r: "POST" in (r.methods or ()))
    assert len(posts) > 80
    wrong: list[str] = []
    for role in ("anonymous", "staff_a", "resident_a", "installer"):
        client = app.test_client()
        client.get("/language/en")
        sign_in(client, world["users"].get(role))
        for rule in posts:
            if rule.endpoint in CSRF_EXEMPT:
                continue
            url = url_with(rule, world, 1)
            for data in ({}, {"csrf_token": "forged"}):
                response = client.post(url, data=data)
                page = response.get_data(as_text=True)
                if response.status_code != 400 or "This form has expired" not in page:
                    wrong.append(f"{role} POST {url} {data}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    # The exempt ones are exempt on purpose, and only they are.
    exempt = {
        e
        for e, view in app.view_functions.items()
        if f"{view.__module__}.{view.__name__}" in csrf._exempt_views
    }
    assert exempt == CSRF_EXEMPT


# --- rate limits on links and logins ------------------------------------------------------------

LIMITED = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "3 per minute",
    "RATELIMIT_SIGNUP": "3 per minute",
}

# The POST routes of ``accounts`` that do not check a password, code or link, and why they are
# not login routes; every other one must limit failures.
NOT_LOGIN = {
    "accounts.logout": "ends a session",
    "accounts.team": "a desk admin invites a colleague",
    "accounts.resend_invitation": "a desk admin sends an invitation again",
    "accounts.security_setup": "starts setting up two-factor login (no code yet)",
    "accounts.deactivate": "a desk admin ends access",
    "accounts.reactivate": "a desk admin gives access back",
}


def failing_link_request(client: FlaskClient, rule: Rule, url: str, token: str) -> Any:
    """A use of ``url`` with a token or key nobody has."""
    if rule.endpoint == "accounts.use_link":  # looking is free; pressing the button checks
        return client.post(url, data={"csrf_token": token})
    if "GET" in (rule.methods or ()):
        return client.get(url)
    return client.post(url, data={"List-Unsubscribe": "One-Click"})


@pytest.mark.parametrize("app_config", [LIMITED])
def test_every_link_route_limits_failed_uses_per_address(app: Flask, world: dict[str, Any]) -> None:
    links = routes(app, is_link_route)
    assert {r.endpoint for r in links} >= {
        "accounts.use_link",
        "accounts.accept_invitation",
        "unsubscribe.unsubscribe",
        "unsubscribe.one_click_unsubscribe",
        "portal.calendar_feed",
        "participation.my_rsvp",
        "participation.my_response",
        "participation.my_pledge",
    }
    for number, rule in enumerate(links, start=1):
        url = url_with(rule, world, 1, bogus=True)
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{number}"
        client.get("/language/en")
        token = factories.csrf_token(client, "/login")
        answers = [failing_link_request(client, rule, url, token).status_code for _ in range(3)]
        assert all(code in (400, 404) for code in answers), (rule.endpoint, answers)
        response = failing_link_request(client, rule, url, token)
        assert response.status_code == 429, rule.endpoint
        page = response.get_data(as_text=True)
        assert re.search(r"Please wait (1 minute|[1-5]?\d seconds?) and try again\.", page)
        assert int(response.headers["Retry-After"]) <= 60
        # Another address is not affected.
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = f"203.0.113.{100 + number}"
        token = factories.csrf_token(other, "/login")
        assert failing_link_request(other, rule, url, token).status_code in (400, 404)


def _staff_with_codes(world: dict[str, Any], client: FlaskClient) -> None:
    """staff_a, logged in, with two-factor login switched on."""
    with client.application.app_context():
        user = db.session.get(User, world["users"]["staff_a"])
        assert user is not None
        user.password_hash = factories.password_hash()
        user.totp_secret = pyotp.random_base32()
        user.totp_confirmed_at = utcnow()
        db.session.commit()


def failing_login_request(client: FlaskClient, endpoint: str, world: dict[str, Any]) -> Any:
    """One failed attempt at ``endpoint``: a wrong password, code or email."""
    if endpoint == "accounts.login":  # link requests: limited per address as they are sent
        return factories.post_form(client, "/login", {"email": "someone@example.nl"})
    if endpoint == "accounts.staff_login":
        return factories.post_form(
            client, "/staff/login", {"email": "staff-a@example.nl", "password": "wrong"}
        )
    if endpoint == "accounts.staff_login_code":
        factories.post_form(
            client,
            "/staff/login",
            {"email": "staff-a@example.nl", "password": factories.PASSWORD},
        )
        return factories.post_form(client, "/staff/login/code", {"code": "000000"})
    sign_in(client, world["users"]["staff_a"])
    if endpoint == "accounts.change_password":
        return factories.post_form(
            client, "/account/password", {"current": "wrong", "password": "x", "confirm": "x"}
        )
    if endpoint in ("accounts.security_confirm", "accounts.security_disable"):
        path = "/account/security/" + endpoint.rsplit("_", 1)[1]
        return factories.post_form(client, path, {"code": "000000"}, token_from="/account/security")
    raise AssertionError(f"{endpoint}: say how a login attempt fails here, or add it to NOT_LOGIN")


@pytest.mark.parametrize("app_config", [LIMITED])
def test_every_login_route_limits_failures_per_address(app: Flask, world: dict[str, Any]) -> None:
    _staff_with_codes(world, app.test_client())
    logins = [
        r
        for r in routes(app, lambda r: r.endpoint.startswith("accounts."))
        if "POST" in (r.methods or ()) and not is_link_route(r) and r.endpoint not in NOT_LOGIN
    ]
    assert {r.endpoint for r in logins} >= {"accounts.login", "accounts.staff_login"}
    for number, rule in enumerate(logins, start=1):
        endpoint = rule.endpoint
        if endpoint == "accounts.security_confirm":
            # Only while setting up: a secret, not yet confirmed.
            with app.app_context():
                user = db.session.get(User, world["users"]["staff_a"])
                assert user is not None
                user.totp_confirmed_at = None
                db.session.commit()
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{number}"
        for _ in range(3):
            response = failing_login_request(client, endpoint, world)
            assert response.status_code in (200, 302), (endpoint, response.status_code)
        response = failing_login_request(client, endpoint, world)
        assert response.status_code == 429, endpoint
        if endpoint == "accounts.security_confirm":
            with app.app_context():
                user = db.session.get(User, world["users"]["staff_a"])
                assert user is not None
                user.totp_confirmed_at = utcnow()
                db.session.commit()


# --- redirects stay on the site -----------------------------------------------------------------

BYPASSES = (
    "//evil.example",
    "///evil.example",
    "////evil.example/my",
    "/\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%255C%255Cevil.example",
    "/%252F%252Fevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    " //evil.example",
    "evil.example",
    "@evil.example",
)


def off_site(location: str) -> bool:
    return bool(
        re.match(r"^\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2}|/[\\])", location, re.IGNORECASE)
    ) or ("evil.example" in location)


@pytest.mark.parametrize("target", BYPASSES)
def test_the_redirect_guard_refuses_the_known_bypasses(target: str) -> None:
    assert safe_next(target, "/my") == "/my"


def test_language_switch_and_login_link_stay_on_the_site(app: Flask, world: dict[str, Any]) -> None:
    from sqlalchemy import select

    from coop.accounts.models import LoginToken
    from coop.accounts.services import login_link

    for target in BYPASSES:
        client = app.test_client()
        response = client.get("/language/en", query_string={"next": target})
        assert response.status_code == 302
        assert not off_site(response.headers["Location"]), target
    with app.app_context():
        email = db.session.get(User, world["users"]["resident_a"]).email  # type: ignore[union-attr]
    for target in BYPASSES:
        client = app.test_client()
        factories.post_form(client, "/login", {"email": email, "next": target}, token_from="/login")
        with app.app_context():
            token = db.session.scalars(select(LoginToken).order_by(LoginToken.id.desc())).first()
            assert token is not None
            path = login_link(token).removeprefix("http://localhost")
        response = factories.post_form(client, path, {})
        assert response.status_code == 302
        assert response.headers["Location"] == "/my", target
