"""Addresses and quantities as Dutch people write them: "12a", "12-3", "12 bis" in the house
number, "12,5" square metres; a clear message at the field for what still cannot be read, in
Dutch and English; and the form staff fill in for a resident speaks of "the resident".
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from coop.accounts.models import LoginPurpose, User
from coop.accounts.services import issue_login_token, login_link
from coop.core.address import HouseNumberError, normalise_addition, split_house_number
from coop.core.numbers import NumberError, parse_decimal, whole
from coop.extensions import db
from coop.registrations.models import Household, Registration, RegistrationMeasure
from tests import factories
from tests.registrations.test_desk_list import login

# What WTForms says to "12a" in an IntegerField, in English and in its Dutch translation.
WTFORMS_MESSAGES = ("Not a valid integer value", "Ongeldig getal", "Not a valid")


# --- the parsing on its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "number", "addition"),
    [
        ("12", 12, ""),
        ("12a", 12, "A"),
        ("12A", 12, "A"),
        ("12 A", 12, "A"),
        ("12-3", 12, "3"),
        ("12 - 3", 12, "3"),
        ("12/3", 12, "3"),
        ("12 bis", 12, "BIS"),
        ("12-II", 12, "II"),
        ("12 hs", 12, "HS"),
        ("12 1 hoog", 12, "1HOOG"),
        ("12a-2", 12, "A2"),
        (" 7 ", 7, ""),
        ("007", 7, ""),
        ("99999", 99999, ""),
    ],
)
def test_a_house_number_is_split_into_number_and_addition(
    typed: str, number: int, addition: str
) -> None:
    assert split_house_number(typed) == (number, addition)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "format"),
        ("abc", "format"),
        ("a12", "format"),
        ("twaalf", "format"),
        ("0", "range"),
        ("100000", "range"),
        ("9" * 40, "range"),
        ("12 <b>", "addition"),
        ("12 abcdefg", "addition"),
    ],
)
def test_what_is_no_house_number_says_why(typed: str, code: str) -> None:
    with pytest.raises(HouseNumberError) as raised:
        split_house_number(typed)
    assert raised.value.code == code


def test_the_separate_addition_field_is_normalised_the_same_way() -> None:
    assert normalise_addition("a") == normalise_addition(" A ") == "A"
    assert normalise_addition("-2") == "2"
    assert normalise_addition("1 hoog") == normalise_addition("1-hoog") == "1HOOG"
    assert normalise_addition("") == ""
    assert normalise_addition("<b>") is None


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("12", Decimal("12")),
        ("12,5", Decimal("12.5")),
        ("12.5", Decimal("12.5")),
        (" 12,75 ", Decimal("12.75")),
        ("1.250", Decimal("1250")),
        ("1,250", Decimal("1250")),
        ("1.250,5", Decimal("1250.5")),
    ],
)
def test_decimal_comma_and_point(typed: str, value: Decimal) -> None:
    assert parse_decimal(typed) == value


@pytest.mark.parametrize("typed", ["", "abc", "12 5", "12,", ",5", "1.2.3", "12,555,5"])
def test_what_is_no_number_is_refused(typed: str) -> None:
    with pytest.raises(NumberError):
        parse_decimal(typed)


def test_fractions_round_half_up() -> None:
    assert [whole(Decimal(v)) for v in ("12.5", "12.49", "0.5", "13.5", "0.4")] == [
        13,
        12,
        1,
        14,
        0,
    ]


# --- the sign-up form ------------------------------------------------------------------------


@pytest.fixture
def signup(app: Flask) -> dict[str, Any]:
    with app.app_context():
        act = factories.action()
        return {
            "url": f"/actions/{act.slug}/register",
            "form": factories.registration_form(act, house_number_addition=""),
            "roof": act.measures[0].id,
            "heat_pump": act.measures[1].id,
        }


def stored_household(app: Flask) -> tuple[int, str, list[int]]:
    with app.app_context():
        household = db.session.scalars(select(Household)).one()
        quantities = list(db.session.scalars(select(RegistrationMeasure.quantity)))
        return household.house_number, household.house_number_addition, quantities


@pytest.mark.parametrize(
    ("house_number", "addition", "stored"),
    [
        ("12a", "", (12, "A")),
        ("12-3", "", (12, "3")),
        ("12 bis", "", (12, "BIS")),
        ("12 A", "", (12, "A")),
        ("12-II", "", (12, "II")),
        # The separate addition field still works, and the same addition twice is no conflict.
        ("12", "b", (12, "B")),
        ("12b", "B", (12, "B")),
    ],
)
def test_sign_up_with_the_house_number_as_people_write_it(
    app: Flask,
    client: FlaskClient,
    signup: dict[str, Any],
    house_number: str,
    addition: str,
    stored: tuple[int, str],
) -> None:
    data = {**signup["form"], "house_number": house_number, "house_number_addition": addition}
    response = factories.post_form(client, signup["url"], data)
    assert response.status_code == 302, response.get_data(as_text=True)
    number, stored_addition, _ = stored_household(app)
    assert (number, stored_addition) == stored


@pytest.mark.parametrize(("typed", "stored"), [("12,5", 13), ("12.5", 13), ("12,4", 12), ("7", 7)])
def test_square_metres_with_a_decimal_comma_are_rounded(
    app: Flask, client: FlaskClient, signup: dict[str, Any], typed: str, stored: int
) -> None:
    data = {**signup["form"], f"quantity_{signup['roof']}": typed}
    response = factories.post_form(client, signup["url"], data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored_household(app)[2] == [stored]


def field_error(page: str, field_id: str) -> str:
    match = re.search(
        rf'<p class="field-error" id="{field_id}-error"><span class="visually-hidden">[^<]*</span>'
        r"\s*([^<]*)</p>",
        page,
    )
    assert match, f"no error at {field_id}"
    return html.unescape(match.group(1)).strip()


@pytest.mark.parametrize(
    ("field", "typed", "english", "dutch"),
    [
        (
            "house_number",
            "twaalf",
            "Enter the house number with its letter or addition, like 12, 12a or 12-3.",
            "Vul het huisnummer in met de letter of toevoeging, zoals 12, 12a of 12-3.",
        ),
        (
            "house_number",
            "12 <b>",
            "After the number, an addition is at most 6 letters or digits, like 12a or 12-3.",
            "Na het nummer heeft een toevoeging maximaal 6 letters of cijfers, zoals 12a of 12-3.",
        ),
        (
            "house_number",
            "123456",
            "Enter a house number from 1 to 99999.",
            "Vul een huisnummer in van 1 tot en met 99999.",
        ),
        (
            "roof",
            "twaalf",
            "Enter a number, like 12 or 12,5.",
            "Vul een getal in, zoals 12 of 12,5.",
        ),
        ("roof", "-4", "Enter a number above 0.", "Vul een getal boven de 0 in."),
        (
            "roof",
            "1.250",
            "Enter a number from 1 to 1000.",
            "Vul een getal in van 1 tot en met 1000.",
        ),
        ("heat_pump", "1,5", "Enter a whole number, like 2.", "Vul een heel getal in, zoals 2."),
        (
            "build_year",
            "1975a",
            "Enter the year in digits, for example 1975.",
            "Vul het jaar in cijfers in, bijvoorbeeld 1975.",
        ),
    ],
)
def test_what_cannot_be_read_gets_a_clear_message_at_the_field(
    app: Flask,
    client: FlaskClient,
    signup: dict[str, Any],
    field: str,
    typed: str,
    english: str,
    dutch: str,
) -> None:
    if field in ("roof", "heat_pump"):
        field_id = f"quantity_{signup[field]}"
        change = {field_id: typed, f"measure_{signup[field]}": "y"}
    else:
        field_id = field
        change = {field: typed}
    data = {**signup["form"], **change}
    for language, message in (("en", english), ("nl", dutch)):
        client.get(f"/language/{language}")
        response = factories.post_form(client, signup["url"], data)
        page = response.get_data(as_text=True)
        assert response.status_code == 200
        assert field_error(page, field_id) == message
        for wtforms_message in WTFORMS_MESSAGES:
            assert wtforms_message not in page
        # What was typed comes back as typed, to be corrected.
        tag = re.search(rf'<input[^>]*\bid="{field_id}"[^>]*>', page)
        assert tag is not None and f'value="{escape(typed)}"' in tag.group(0)
    with app.app_context():
        assert db.session.scalars(select(Registration)).first() is None


def test_an_addition_in_both_fields_that_differ_is_refused_at_the_addition(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    client.get("/language/en")
    data = {**signup["form"], "house_number": "12a", "house_number_addition": "b"}
    page = factories.post_form(client, signup["url"], data).get_data(as_text=True)
    assert field_error(page, "house_number_addition") == (
        "The house number already has the addition A. Leave this field empty, or correct the "
        "house number."
    )
    with app.app_context():
        assert db.session.scalars(select(Household)).first() is None


def test_the_resident_changes_a_quantity_with_a_decimal_comma(
    app: Flask, client: FlaskClient, signup: dict[str, Any]
) -> None:
    factories.post_form(client, signup["url"], signup["form"])
    with app.test_request_context():
        registration = db.session.scalars(select(Registration)).one()
        user = db.session.get(User, registration.user_id)
        assert user is not None
        link = login_link(issue_login_token(user, LoginPurpose.LOGIN))
        db.session.commit()
        registration_id = registration.id
    factories.post_form(client, link.removeprefix("http://localhost"), {})
    url = f"/my/registrations/{registration_id}/edit"
    data = {
        k: v
        for k, v in signup["form"].items()
        if k in ("name", "phone", "dwelling_type", "build_year", "ownership", "energy_label")
    }
    data.update({f"measure_{signup['roof']}": "y", f"quantity_{signup['roof']}": "30,5"})
    response = factories.post_form(client, url, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored_household(app)[2] == [31]
    data[f"quantity_{signup['roof']}"] = "dertig"
    client.get("/language/nl")
    page = factories.post_form(client, url, data).get_data(as_text=True)
    assert field_error(page, f"quantity_{signup['roof']}") == "Vul een getal in, zoals 12 of 12,5."


# --- the form staff fill in during a call ----------------------------------------------------


@pytest.fixture
def desk(app: Flask) -> dict[str, Any]:
    with app.app_context():
        act = factories.action()
        factories.staff(act.organisation, email="staff@example.nl")
        return {
            "url": f"/desk/registrations/new/{act.id}",
            "form": factories.registration_form(act, house_number_addition=""),
            "roof": act.measures[0].id,
        }


def labels_of(page: str) -> dict[str, str]:
    return {
        field: html.unescape(re.sub(r"\s+", " ", text)).strip()
        for field, text in re.findall(r'<label for="([a-z_0-9-]+)">(.*?)</label>', page, re.S)
    }


def test_the_phone_form_speaks_of_the_resident(client: FlaskClient, desk: dict[str, Any]) -> None:
    login(client, "staff@example.nl")
    client.get("/language/en")
    page = client.get(desk["url"]).get_data(as_text=True)
    labels = labels_of(page)
    assert labels["name"] == "The resident's name"
    assert labels["email"] == "The resident's email address"
    assert labels["phone"] == "The resident's phone number (optional)"
    assert labels["ownership-0"] == "The resident owns the home"
    assert "Which measures does the resident want?" in page
    for yours in ("Your name", "your home", "Do you own", "I own the home", "you need", "your "):
        assert yours not in page, yours
    # The errors too.
    empty = {k: "" for k in desk["form"]}
    page = factories.post_form(client, desk["url"], empty).get_data(as_text=True)
    assert field_error(page, "name") == "Enter the resident's name."
    assert field_error(page, "email") == "Enter the resident's email address."
    assert field_error(page, "postcode") == "Enter the resident's postcode."
    assert field_error(page, "house_number") == "Enter the resident's house number."
    assert field_error(page, "street") == "Enter the resident's street."
    assert field_error(page, "city") == "Enter the resident's town or city."
    assert field_error(page, "dwelling_type") == "Choose the type of the resident's home."
    assert field_error(page, "build_year") == "Enter the year the home was built."
    assert "Enter your" not in page and "Choose whether you" not in page
    client.get("/language/nl")
    page = client.get(desk["url"]).get_data(as_text=True)
    labels = labels_of(page)
    assert labels["name"] == "Naam van de bewoner"
    assert labels["ownership-0"] == "De bewoner is eigenaar van de woning"
    assert "Je naam" not in page and "Jouw naam" not in page


def test_staff_register_12a_and_12_5_by_phone(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff@example.nl")
    data = {
        **desk["form"],
        "house_number": "12a",
        f"quantity_{desk['roof']}": "12,5",
        "language": "nl",
    }
    response = factories.post_form(client, desk["url"], data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored_household(app) == (12, "A", [13])


# --- the interest and survey forms ask the address the same way ------------------------------


def test_interest_and_survey_take_12a_and_know_it_is_the_same_household(
    app: Flask, client: FlaskClient
) -> None:
    from coop.participation.models import InterestPledge, SurveyResponse

    with app.test_request_context():
        neighbourhood = factories.neighbourhood(factories.organisation())
        campaign_id = factories.campaign(neighbourhood).id
        survey = factories.survey(neighbourhood)
        single, multiple, scale, _open = survey.questions
        survey_id = survey.id
        questions = {
            f"q_{single.id}": str(single.options[0].id),
            f"q_{multiple.id}": str(multiple.options[0].id),
            f"q_{scale.id}": "3",
        }
    pledge = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "postcode": "3524ba",
        "house_number": "12a",
        "street": "Hondsrug",
        "consent": "y",
    }
    url = f"/interest/{campaign_id}"
    assert factories.post_form(client, url, pledge).status_code == 302
    # "12" with "A" in the addition field is the same household.
    again = {**pledge, "house_number": "12", "house_number_addition": "A"}
    assert "al opgegeven" in factories.post_form(client, url, again).get_data(as_text=True)
    answers = {
        **questions,
        "postcode": "3524 BA",
        "house_number": "12 bis",
        "street": "Hondsrug",
        "ownership": "owner",
        "email": "jan@example.nl",
        "consent": "y",
    }
    survey_url = f"/surveys/{survey_id}"
    page = factories.post_form(client, survey_url, {**answers, "house_number": "12,5"})
    assert page.status_code == 200
    assert field_error(page.get_data(as_text=True), "house_number") == (
        "Na het nummer heeft een toevoeging maximaal 6 letters of cijfers, zoals 12a of 12-3."
    )
    response = factories.post_form(client, survey_url, answers)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        entry = db.session.scalars(select(InterestPledge)).one()
        assert (entry.house_number, entry.house_number_addition) == (12, "A")
        answered = db.session.scalars(select(SurveyResponse)).one()
        assert (answered.house_number, answered.house_number_addition) == (12, "BIS")
