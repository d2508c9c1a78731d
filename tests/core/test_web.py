"""What every page shares: health check, security headers, error pages, CSRF, language switch
and safe redirects."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import User
from coop.core.models import JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.core.web import safe_next
from coop.extensions import db
from coop.registrations.models import Household, Registration
from tests import factories
from tests.conftest import free_port


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def english(client: FlaskClient) -> FlaskClient:
    assert client.get("/language/en").status_code == 302
    return client


# --- health check ------------------------------------------------------------------------


def test_healthz_reports_database_and_in_process_queue(
    app: Flask, client: FlaskClient, database_url: str
) -> None:
    with app.app_context():
        now = utcnow()
        db.session.add_all(
            [
                OutboxJob(key="a", name="x", args={}, status=JobStatus.PENDING, run_after=now),
                OutboxJob(key="b", name="x", args={}, status=JobStatus.PENDING, run_after=now),
                OutboxJob(key="c", name="x", args={}, status=JobStatus.FAILED, run_after=now),
                OutboxJob(key="d", name="x", args={}, status=JobStatus.DONE, run_after=now),
            ]
        )
        db.session.commit()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    report = response.get_json()
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert report["status"] == "ok"
    assert report["database"] == {"ok": True, "backend": backend}
    assert report["outbox"] == {"pending": 2, "failed": 1}
    assert report["queue"] == {"ok": True, "backend": "in-process"}


class TestHealthWithRedisDown:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    def test_healthz_is_degraded_while_the_queue_is_unreachable(self, client: FlaskClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 503
        report = response.get_json()
        assert report["status"] == "degraded"
        assert report["queue"]["ok"] is False
        assert report["queue"]["backend"] == "rq"
        assert report["database"]["ok"] is True  # the site itself still works


class TestHealthWithRedis:
    @pytest.fixture
    def app_config(self, redis_url: str) -> dict[str, Any]:
        return {"REDIS_URL": redis_url}

    def test_healthz_reports_the_rq_queue(self, client: FlaskClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        report = response.get_json()
        assert report["status"] == "ok"
        assert report["queue"] == {
            "ok": True,
            "backend": "rq",
            "queued": 0,
            "queued_per_lane": {"urgent": 0, "default": 0, "bulk": 0},
        }


# --- security headers --------------------------------------------------------------------


def assert_security_headers(response: Any) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {"same-origin", "strict-origin-when-cross-origin"}


def test_pages_carry_security_headers_and_no_hsts_outside_production(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        slug = factories.action().slug
    for url in ("/", f"/actions/{slug}", f"/actions/{slug}/register", "/no-such-page"):
        response = client.get(url)
        assert response.status_code in {200, 404}, url
        assert_security_headers(response)
        assert "Strict-Transport-Security" not in response.headers
        page = response.get_data(as_text=True)
        # The CSP allows no inline code or style: a page that had some would break.
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page), url
    assert_security_headers(client.get("/healthz"))


def test_production_adds_hsts(app: Flask, client: FlaskClient) -> None:
    app.config["COOP_ENV"] = "production"
    response = client.get("/")
    assert_security_headers(response)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_form_action_allows_stripe_checkout_only_with_stripe(
    app: Flask, client: FlaskClient
) -> None:
    """Chromium applies form-action to the redirect after the pay form's POST (issue 12)."""
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "form-action 'self';" in policy
    app.config.update(
        STRIPE_SECRET_KEY="sk_test_x", STRIPE_CHECKOUT_ORIGIN="https://checkout.stripe.com/c/pay"
    )
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com;" in policy
    assert "default-src 'self';" in policy and "script-src 'self';" in policy


def test_pages_and_exports_are_not_stored_by_browsers_or_proxies(
    app: Flask, client: FlaskClient
) -> None:
    for url in ("/", "/login", "/no-such-page", "/healthz"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url
    # Static files may be kept.
    static = client.get("/static/css/coop.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")


# --- error pages -------------------------------------------------------------------------


def test_unknown_page_is_404_with_a_message(client: FlaskClient) -> None:
    response = english(client).get("/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>Page not found</h1>" in page
    assert "This page does not exist" in page
    assert 'href="/"' in page  # a way back


def test_wrong_method_is_405_with_a_message(client: FlaskClient) -> None:
    response = english(client).delete("/healthz")
    assert response.status_code == 405
    page = response.get_data(as_text=True)
    assert "This page cannot be used this way." in page


def test_too_large_a_request_is_413_and_saves_nothing(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        act = factories.action()
        data = factories.registration_form(act)
    url = f"/actions/{act.slug}/register"
    token = factories.csrf_token(english(client), url)
    too_much = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(url, data={**data, "csrf_token": token, "street": too_much})
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "What you sent is too large" in page
    with app.app_context():
        assert count(Registration) == 0
        assert count(Household) == 0


def test_unexpected_error_is_500_and_nothing_half_done_is_saved(
    app: Flask, client: FlaskClient
) -> None:
    def crash() -> str:
        db.session.add(User(email="half@example.nl", name="Half", language="nl"))
        db.session.flush()
        raise RuntimeError("a bug")

    app.add_url_rule("/test-crash", "test_crash", crash)
    response = english(client).get("/test-crash")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong on our side" in page
    assert "a bug" not in page  # no internals shown
    assert_security_headers(response)
    with app.app_context():
        assert count(User) == 0


# --- the database away ---------------------------------------------------------------------


def assert_try_again_later(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    page = response.get_data(as_text=True)
    assert "<h1>Briefly unavailable</h1>" in page
    assert "Please try again in a minute." in page
    assert "Something went wrong on our side" not in page
    assert "psycopg" not in page and "OperationalError" not in page  # no internals shown
    assert_security_headers(response)


def test_database_refusing_connections_answers_503_try_again_in_a_minute() -> None:
    from coop import create_app
    from tests.conftest import base_config

    # Nothing listens on this port: every connection is refused (PostgreSQL restarting).
    away = create_app(
        base_config(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/coop_away")
    )
    client = away.test_client()
    english(client)
    for url in ("/", "/actions/samen-isoleren", "/actions/samen-isoleren/register"):
        assert_try_again_later(client.get(url))
    # Logged in: loading the user needs the database too; the page is drawn without one.
    now = int(time.time())
    with client.session_transaction() as session:
        session.update({"_user_id": "1", "_fresh": True, "_auth": {"e": 0, "t": now, "s": now}})
    assert_try_again_later(client.get("/my"))
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.is_json
    assert health.get_json()["database"] == {"ok": False, "error": "OperationalError"}
    # In Dutch too.
    client.get("/language/nl")
    dutch = client.get("/")
    assert dutch.status_code == 503
    assert "over een minuut" in dutch.get_data(as_text=True)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_connection_cut_mid_request_answers_503_and_the_next_request_works(
    app: Flask, client: FlaskClient, database_url: str
) -> None:
    """PostgreSQL ends the app's connection while a page is being made (a restart, a
    failover): that page answers 503; the pool drops the dead connection and goes on."""
    from sqlalchemy import create_engine, text

    with app.app_context():
        slug = factories.action().slug
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    cut = {"next": False}

    @app.before_request
    def _cut_the_connection() -> None:
        if cut["next"]:
            cut["next"] = False
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    try:
        english(client)
        assert client.get(f"/actions/{slug}").status_code == 200
        cut["next"] = True
        assert_try_again_later(client.get(f"/actions/{slug}"))
        assert client.get(f"/actions/{slug}").status_code == 200
        assert client.get("/healthz").status_code == 200
    finally:
        admin.dispose()


def test_post_without_csrf_token_is_refused_and_saves_nothing(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        data = factories.registration_form(act)
    url = f"/actions/{act.slug}/register"
    english(client)
    for token in (None, "not-a-real-token"):
        posted = dict(data) if token is None else {**data, "csrf_token": token}
        response = client.post(url, data=posted)
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "This form has expired" in page
        assert "Nothing was saved." in page
    with app.app_context():
        assert count(Registration) == 0
        assert count(User) == 0
        assert count(OutboxJob) == 0


# --- language ----------------------------------------------------------------------------


def test_pages_are_dutch_by_default_and_english_after_switching(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.headers["Content-Language"] == "nl"
    assert '<html lang="nl">' in response.get_data(as_text=True)
    # A browser that prefers English gets English until the visitor chooses.
    preferred = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert preferred.headers["Content-Language"] == "en"

    switched = client.get("/language/en?next=/actions/none")
    assert switched.status_code == 302
    assert switched.headers["Location"] == "/actions/none"
    response = client.get("/")
    assert response.headers["Content-Language"] == "en"
    assert '<html lang="en">' in response.get_data(as_text=True)

    # An unknown language is not a page, and leaves the choice as it was.
    assert client.get("/language/xx").status_code == 404
    assert client.get("/").headers["Content-Language"] == "en"

    client.get("/language/nl")
    assert '<html lang="nl">' in client.get("/").get_data(as_text=True)


def test_language_switch_does_not_redirect_off_site(client: FlaskClient) -> None:
    for next_url in ("//evil.example", "https://evil.example/", "/\\evil.example", "javascript:x"):
        response = client.get("/language/en", query_string={"next": next_url})
        assert response.status_code == 302
        assert response.headers["Location"] == "/", next_url


# --- safe_next ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/my",
        "https://evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "evil.example/my",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "",
        None,
    ],
)
def test_safe_next_refuses_other_sites(target: str | None) -> None:
    assert safe_next(target) == "/"
    assert safe_next(target, "/my") == "/my"


@pytest.mark.parametrize(
    "target", ["/", "/my", "/my/registrations/3", "/actions?postcode=3524+BA#list"]
)
def test_safe_next_keeps_paths_on_this_site(target: str) -> None:
    assert safe_next(target) == target
