"""Street and town from the BAG through PDOK's Locatieserver, tested against a loopback
stand-in that answers in PDOK's documented shape: with the stand-in up, down (connection
refused), slow (a timeout), broken and answering nothing. A sign-up is never blocked by it, the
desk can switch it off, the browser only ever asks coop, and the endpoint is rate-limited.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.accounts.models import Organisation
from coop.core import address_lookup
from coop.extensions import db
from coop.registrations.models import Household
from tests import factories
from tests.core.pdok_standin import PdokStandIn


@pytest.fixture
def standin() -> Iterator[PdokStandIn]:
    server = PdokStandIn().start()
    address_lookup.rest_over()
    yield server
    server.stop()
    address_lookup.rest_over()


@pytest.fixture
def app_config(standin: PdokStandIn, request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "ADDRESS_LOOKUP_URL": standin.url,
        "ADDRESS_LOOKUP_TIMEOUT": 0.5,
        "ADDRESS_LOOKUP_PAUSE": 0,
        **getattr(request, "param", {}),
    }


# --- the lookup on its own -------------------------------------------------------------------


def test_street_and_town_for_a_postcode_and_house_number(ctx: Flask, standin: PdokStandIn) -> None:
    found = address_lookup.lookup("3531 cj", 12)
    assert found is not None
    assert (found.street, found.city, found.postcode, found.house_number) == (
        "Kanaalstraat",
        "Utrecht",
        "3531 CJ",
        12,
    )
    # What was asked: one address, by postcode and number, of the type "adres".
    [fq] = standin.requests[-1]["fq"]
    assert fq == "postcode:3531CJ AND huisnummer:12 AND type:adres"
    assert "straatnaam" in standin.requests[-1]["fl"][0]
    # With an addition the exact address is chosen; an unknown one still gives the street.
    assert address_lookup.lookup("3531CJ", 12, "a") is not None
    assert address_lookup.lookup("3531CJ", 12, "a").addition == "A"  # type: ignore[union-attr]
    assert address_lookup.lookup("3531CJ", 12, "2").addition == "2"  # type: ignore[union-attr]
    assert address_lookup.lookup("3531CJ", 12, "Z").street == "Kanaalstraat"  # type: ignore[union-attr]
    assert address_lookup.lookup("3521 AB", 1).street == "’t Goylaan"  # type: ignore[union-attr]


def test_nothing_found_is_none(ctx: Flask, standin: PdokStandIn) -> None:
    assert address_lookup.lookup("9999 ZZ", 1) is None
    standin.mode = "empty"
    assert address_lookup.lookup("3531 CJ", 12) is None
    # Nothing to ask for an address that cannot exist.
    asked = len(standin.requests)
    assert address_lookup.lookup("12345", 12) is None
    assert address_lookup.lookup("3531 CJ", 0) is None
    assert len(standin.requests) == asked


@pytest.mark.parametrize("mode", ["down", "slow", "broken"])
def test_a_service_down_slow_or_broken_is_logged_and_raised_quickly(
    ctx: Flask, standin: PdokStandIn, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    if mode == "down":
        standin.stop()
    else:
        standin.mode = mode
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="coop.core.address_lookup"),
        pytest.raises(address_lookup.LookupUnavailableError),
    ):
        address_lookup.lookup("3531 CJ", 12)
    assert time.monotonic() - started < 1.5  # the timeout is 0.5 s
    messages = [r.getMessage() for r in caplog.records]
    assert any("address lookup" in m for m in messages), messages
    # No address in the log: it is someone's.
    assert not any("3531" in m for m in messages)


def test_after_a_failure_the_lookup_rests(app: Flask, standin: PdokStandIn) -> None:
    app.config["ADDRESS_LOOKUP_PAUSE"] = 60
    with app.test_request_context():
        standin.mode = "slow"
        with pytest.raises(address_lookup.LookupUnavailableError):
            address_lookup.lookup("3531 CJ", 12)
        standin.mode = "up"
        asked = len(standin.requests)
        started = time.monotonic()
        with pytest.raises(address_lookup.LookupUnavailableError):
            address_lookup.lookup("3531 CJ", 12)
        assert time.monotonic() - started < 0.1 and len(standin.requests) == asked
        address_lookup.rest_over()
        assert address_lookup.lookup("3531 CJ", 12) is not None


def test_switched_off_by_an_empty_address(app: Flask, standin: PdokStandIn) -> None:
    app.config["ADDRESS_LOOKUP_URL"] = ""
    with app.test_request_context():
        assert not address_lookup.enabled()
        assert address_lookup.lookup("3531 CJ", 12) is None
    assert standin.requests == []


# --- the endpoint the script asks ------------------------------------------------------------


def test_the_endpoint_answers_found_not_found_and_unavailable(
    client: FlaskClient, standin: PdokStandIn
) -> None:
    answer = client.get("/address-lookup?postcode=3531+cj&house_number=12a")
    assert answer.status_code == 200
    assert answer.get_json() == {"found": True, "street": "Kanaalstraat", "city": "Utrecht"}
    assert standin.requests[-1]["fq"] == ["postcode:3531CJ AND huisnummer:12 AND type:adres"]
    answer = client.get("/address-lookup?postcode=3531CJ&house_number=12&house_number_addition=2")
    assert answer.get_json()["found"] is True
    assert client.get("/address-lookup?postcode=9999ZZ&house_number=1").get_json() == {
        "found": False,
        "reason": "not_found",
    }
    assert client.get("/address-lookup?postcode=3531CJ&house_number=twaalf").get_json() == {
        "found": False,
        "reason": "incomplete",
    }
    assert client.get("/address-lookup").get_json()["reason"] == "incomplete"
    standin.stop()
    assert client.get("/address-lookup?postcode=3531CJ&house_number=12").get_json() == {
        "found": False,
        "reason": "unavailable",
    }


@pytest.mark.parametrize(
    "app_config",
    [{"RATELIMIT_ENABLED": True, "RATELIMIT_ADDRESS_LOOKUP": "3 per minute"}],
    indirect=True,
)
def test_the_endpoint_is_rate_limited(app: Flask, standin: PdokStandIn) -> None:
    client = app.test_client()
    answers = [
        client.get(f"/address-lookup?postcode=3531CJ&house_number={n}").status_code
        for n in range(1, 6)
    ]
    assert answers == [200, 200, 200, 429, 429]
    assert len(standin.requests) == 3


def test_the_browser_only_ever_talks_to_coop(client: FlaskClient) -> None:
    with client.application.app_context():
        act = factories.action()
        url = f"/actions/{act.slug}/register"
    page = client.get(url)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "pdok" not in csp and "connect-src" not in csp
    html = page.get_data(as_text=True)
    assert 'data-address-lookup="/address-lookup"' in html
    assert "/static/js/address-lookup.js" in html
    assert "pdok" not in html.lower()


# --- a sign-up without JavaScript ------------------------------------------------------------


@pytest.fixture
def signup(app: Flask) -> dict[str, Any]:
    with app.app_context():
        act = factories.action(pc4s="3521,3524,3531")
        return {
            "url": f"/actions/{act.slug}/register",
            "form": factories.registration_form(
                act, postcode="3531 CJ", house_number="12a", house_number_addition=""
            ),
            "organisation_id": act.organisation_id,
        }


def households(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        return [(h.street, h.city) for h in db.session.scalars(select(Household))]


def test_without_javascript_the_form_comes_back_with_street_and_town_to_check(
    app: Flask, client: FlaskClient, signup: dict[str, Any], standin: PdokStandIn
) -> None:
    client.get("/language/en")
    data = {**signup["form"], "street": "", "city": ""}
    page = factories.post_form(client, signup["url"], data)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="address-looked-up"' in html and "Check them" in html
    assert re.search(r'id="street"[^>]*value="Kanaalstraat"', html)
    assert re.search(r'id="city"[^>]*value="Utrecht"', html)
    assert "error-summary" not in html
    assert households(app) == []  # nothing saved before the person checked
    # Sent again as it came back: saved with the register's street and town.
    checked = {**data, "street": "Kanaalstraat", "city": "Utrecht"}
    asked = len(standin.requests)
    assert factories.post_form(client, signup["url"], checked).status_code == 302
    assert households(app) == [("Kanaalstraat", "Utrecht")]
    assert len(standin.requests) == asked  # typed in: nothing more to look up


def test_other_errors_come_back_with_the_filled_in_address(
    app: Flask, client: FlaskClient, signup: dict[str, Any], standin: PdokStandIn
) -> None:
    client.get("/language/en")
    data = {**signup["form"], "street": "", "city": "", "email": "anna@"}
    html = factories.post_form(client, signup["url"], data).get_data(as_text=True)
    assert 'id="email-error"' in html and 'id="address-looked-up"' in html
    assert re.search(r'id="street"[^>]*value="Kanaalstraat"', html)


@pytest.mark.parametrize("mode", ["down", "slow", "empty", "broken"])
def test_a_sign_up_is_never_blocked_by_the_register(
    app: Flask, client: FlaskClient, signup: dict[str, Any], standin: PdokStandIn, mode: str
) -> None:
    if mode == "down":
        standin.stop()
    else:
        standin.mode = mode
    client.get("/language/en")
    # Street and town left empty: they are asked for, as without a register.
    html = factories.post_form(
        client, signup["url"], {**signup["form"], "street": "", "city": ""}
    ).get_data(as_text=True)
    assert 'id="street-error"' in html and 'id="city-error"' in html
    assert 'id="address-looked-up"' not in html
    # Typed by hand: saved.
    typed = {**signup["form"], "street": "Kanaalstraat", "city": "Utrecht"}
    started = time.monotonic()
    assert factories.post_form(client, signup["url"], typed).status_code == 302
    assert time.monotonic() - started < 5
    assert households(app) == [("Kanaalstraat", "Utrecht")]


def test_the_desk_switches_the_lookup_off_for_its_forms(
    app: Flask, client: FlaskClient, signup: dict[str, Any], standin: PdokStandIn
) -> None:
    with app.app_context():
        organisation = db.session.get(Organisation, signup["organisation_id"])
        assert organisation is not None
        organisation.address_lookup = False
        db.session.commit()
    html = client.get(signup["url"]).get_data(as_text=True)
    assert "data-address-lookup" not in html and "address-lookup.js" not in html
    html = factories.post_form(
        client, signup["url"], {**signup["form"], "street": "", "city": ""}
    ).get_data(as_text=True)
    assert 'id="street-error"' in html
    assert standin.requests == []


def test_the_interest_form_fills_in_the_street(
    app: Flask, client: FlaskClient, standin: PdokStandIn
) -> None:
    with app.test_request_context():
        campaign = factories.campaign(factories.neighbourhood(factories.organisation()))
        url = f"/interest/{campaign.id}"
    data = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "postcode": "3524ba",
        "house_number": "7",
        "street": "",
        "consent": "y",
    }
    html = factories.post_form(client, url, data).get_data(as_text=True)
    assert 'id="address-looked-up"' in html
    assert re.search(r'id="street"[^>]*value="Hondsrug"', html)
    assert factories.post_form(client, url, {**data, "street": "Hondsrug"}).status_code == 302


def test_a_desk_admin_switches_it_off_on_the_settings_page(
    app: Flask, client: FlaskClient, signup: dict[str, Any], standin: PdokStandIn
) -> None:
    from coop.core.audit import AuditEntry
    from tests.registrations.test_desk_list import login

    with app.app_context():
        organisation = db.session.get(Organisation, signup["organisation_id"])
        assert organisation is not None
        admin = factories.staff(organisation, "beheer@example.nl")
        admin.is_desk_admin = True
        factories.staff(organisation, "collega@example.nl")
        db.session.commit()
    login(client, "collega@example.nl")
    assert client.get("/desk/settings").status_code == 404  # not for every colleague
    login(client, "beheer@example.nl")
    page = client.get("/desk/settings").get_data(as_text=True)
    box = re.search(r'<input[^>]*id="address_lookup"[^>]*>', page)
    assert box is not None and "checked" in box.group(0)
    assert factories.post_form(client, "/desk/settings", {}).status_code == 302
    with app.app_context():
        organisation = db.session.get(Organisation, signup["organisation_id"])
        assert organisation is not None and organisation.address_lookup is False
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.verb == "organisation.settings")
        ).one()
        assert entry.after == {"address_lookup": False}
    assert "data-address-lookup" not in client.get(signup["url"]).get_data(as_text=True)
    response = factories.post_form(client, "/desk/settings", {"address_lookup": "y"})
    assert response.status_code == 302
    assert "data-address-lookup" in client.get(signup["url"]).get_data(as_text=True)
