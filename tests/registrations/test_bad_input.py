"""Bad input on the sign-up form: a clear message at the field (or on the page), nothing stored,
and never a 500.

Each case posts a complete, valid form with one thing wrong, so the error must come from that
one thing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import LoginToken, User
from coop.core.models import OutboxJob
from coop.extensions import db
from coop.registrations.models import Household, Registration, RegistrationMeasure
from tests import factories

SCRIPT = "<script>alert(1)</script>"

# (the field that must carry the error, what is changed in a valid form). "roof" and
# "heat_pump" in a name stand for that measure's field id.
FIELD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("postcode", {"postcode": "12345"}),
    ("postcode", {"postcode": "1234 A"}),
    ("postcode", {"postcode": "0123 AB"}),
    ("postcode", {"postcode": "1234 SS"}),
    ("postcode", {"postcode": ""}),
    ("house_number", {"house_number": "0"}),
    ("house_number", {"house_number": "100000"}),
    ("house_number", {"house_number": "abc"}),
    ("house_number", {"house_number": "9" * 40}),
    ("house_number_addition", {"house_number_addition": "<b>"}),
    ("name", {"name": SCRIPT}),
    ("street", {"street": SCRIPT}),
    ("city", {"city": SCRIPT}),
    ("street", {"street": "Hondsrug\x00"}),
    ("name", {"name": "A" * (1024 * 1024)}),
    ("measure_roof", {"measure_roof": "", "measure_heat_pump": ""}),
    ("quantity_roof", {"quantity_roof": "1001"}),
    ("quantity_roof", {"quantity_roof": "-4"}),
    ("quantity_roof", {"quantity_roof": ""}),
    ("quantity_heat_pump", {"measure_heat_pump": "y", "quantity_heat_pump": "3"}),
    ("consent", {"consent": None}),
    ("email", {"email": "anna@"}),
    ("email", {"email": "not an email address"}),
    ("email", {"email": "a" * 250 + "@example.nl"}),
    ("phone", {"phone": "call me"}),
    ("build_year", {"build_year": "1200"}),
    ("build_year", {"build_year": "next year"}),
    ("dwelling_type", {"dwelling_type": "castle"}),
    ("ownership", {"ownership": "squatter"}),
    ("energy_label", {"energy_label": "Z"}),
]


def stored(app: Flask) -> dict[str, int]:
    """How many rows there are of everything a sign-up writes."""
    with app.app_context():
        return {
            model.__name__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Registration, RegistrationMeasure, Household, User, LoginToken, OutboxJob)
        }


def with_measure_ids(data: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    """Turn ``measure_roof`` into ``measure_<id>`` and so on."""
    result = {}
    for key, value in data.items():
        prefix, _, measure = key.partition("_")
        if prefix in ("measure", "quantity") and measure in ids:
            key = f"{prefix}_{ids[measure]}"
        result[key] = value
    return result


@pytest.fixture
def signup(app: Flask) -> dict[str, Any]:
    """An open action and a valid form for it."""
    with app.app_context():
        act = factories.action()
        ids = {"roof": act.measures[0].id, "heat_pump": act.measures[1].id}
        return {
            "url": f"/actions/{act.slug}/register",
            "form": factories.registration_form(act),
            "ids": ids,
        }


def field_error_shown(page: str, field_id: str) -> list[str]:
    """What is missing for a well-reported error at ``field_id`` (empty when all is there)."""
    problems = []
    # A group of radio buttons is reached through its first option.
    if f'href="#{field_id}"' not in page and f'href="#{field_id}-0"' not in page:
        problems.append("no link to the field in the error summary")
    if f'id="{field_id}-error"' not in page:
        problems.append("no message at the field")
    tag = re.search(rf'<(input|select|textarea|fieldset)\b[^>]*\bid="{field_id}"[^>]*>', page)
    if tag is None:
        problems.append("the field is not on the page")
    elif tag.group(1) != "fieldset" and 'aria-invalid="true"' not in tag.group(0):
        # (A radio group's fieldset is described by the error instead.)
        problems.append("the field is not marked aria-invalid")
    return problems


def test_each_bad_field_gets_its_message_and_nothing_is_stored(
    app: Flask, client: FlaskClient, signup: dict[str, Any], subtests: Any
) -> None:
    before = stored(app)
    # One token for the session: a form page is not loaded again for every case.
    token = factories.csrf_token(client, signup["url"])
    for field, change in FIELD_CASES:
        field_id = with_measure_ids({field: ""}, signup["ids"]).popitem()[0]
        data = with_measure_ids({**signup["form"], **change}, signup["ids"])
        data = {k: v for k, v in data.items() if v is not None}
        label = f"{field}={str(change)[:60]}"
        with subtests.test(msg=label):
            response = client.post(signup["url"], data={**data, "csrf_token": token})
            assert response.status_code == 200, label
            page = response.get_data(as_text=True)
            assert 'class="error-summary"' in page
            assert field_error_shown(page, field_id) == []
            assert SCRIPT not in page  # shown back escaped, never as markup
            assert stored(app) == before


def test_a_page_level_problem_is_shown_and_nothing_is_stored(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    client.get("/language/en")
    before = stored(app)
    data = {**signup["form"], "postcode": "9999 AB"}
    response = factories.post_form(client, signup["url"], data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "This action is not for your postcode." in page
    assert 'class="error-summary"' in page
    assert stored(app) == before


def test_an_empty_form_lists_every_required_field(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    before = stored(app)
    response = factories.post_form(client, signup["url"], {})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    summary = page[
        page.index('class="error-summary"') : page.index("</ul>", page.index("error-summary"))
    ]
    linked = [link.removesuffix("-0") for link in re.findall(r'href="#([a-z_0-9-]+)"', summary)]
    roof = f"measure_{signup['ids']['roof']}"
    for field in ("name", "email", "postcode", "house_number", "street", "city"):
        assert field in linked
    for field in ("dwelling_type", "build_year", "ownership", roof, "consent"):
        assert field in linked
    # In the order of the form, so the summary reads like the page.
    assert linked.index("name") < linked.index("postcode") < linked.index("consent")
    assert stored(app) == before


def test_quantity_of_an_unticked_measure_is_ignored(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    heat_pump = signup["ids"]["heat_pump"]
    data = {**signup["form"], f"measure_{heat_pump}": "", f"quantity_{heat_pump}": "1"}
    response = factories.post_form(client, signup["url"], data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        registration = db.session.scalars(select(Registration)).one()
        assert {rm.action_measure_id: rm.quantity for rm in registration.measures} == {
            signup["ids"]["roof"]: 45
        }


def test_a_body_over_the_limit_gets_the_too_large_page(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    client.get("/language/en")
    before = stored(app)
    data = {**signup["form"], "name": "A" * (5 * 1024 * 1024)}
    response = factories.post_form(client, signup["url"], data)
    assert response.status_code == 413
    assert "Too much text" in response.get_data(as_text=True)
    assert stored(app) == before


def test_a_post_without_csrf_token_is_refused(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    client.get("/language/en")
    client.get(signup["url"])  # a session exists, but the form's token is not sent
    before = stored(app)
    response = client.post(signup["url"], data=signup["form"])
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    response = client.post(signup["url"], data={**signup["form"], "csrf_token": "forged"})
    assert response.status_code == 400
    assert stored(app) == before


def test_pages_are_dutch_by_default_and_errors_english_on_request(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    data = {**signup["form"], "postcode": "12345"}
    response = factories.post_form(client, signup["url"], data)
    assert response.headers["Content-Language"] == "nl"
    assert '<html lang="nl">' in response.get_data(as_text=True)

    client.get("/language/en")
    response = factories.post_form(client, signup["url"], data)
    page = response.get_data(as_text=True)
    assert response.headers["Content-Language"] == "en"
    assert '<html lang="en">' in page
    assert "Enter a Dutch postcode: four digits and two letters, like 1234 AB." in page
    assert "There is a problem" in page
