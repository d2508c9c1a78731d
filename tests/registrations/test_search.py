"""The desk's search as people type: "ozturk" finds "Öztürk-van Dijk", case and accents aside,
also "van dijk", part of a street, a postcode with or without its space, words in any order; the
folded text follows a changed name or address; and on PostgreSQL the trigram index answers it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from coop.accounts.models import User
from coop.extensions import db
from coop.registrations import desk_services
from coop.registrations.models import Household, Registration
from coop.registrations.search import fold, search_text, terms
from tests import factories
from tests.registrations.test_desk_list import add_registration, login, row_ids


def test_fold_takes_off_case_and_accents() -> None:
    assert fold("Öztürk-van Dijk") == "ozturk-van dijk"
    assert fold("  Zoë   Çelik ") == "zoe celik"
    assert fold("ŞAHİN") == "sahin"
    assert fold("Bjørn Ærø Łukasz") == "bjorn aero lukasz"
    assert fold("’t Hoogt") == "'t hoogt"
    assert fold("Straße") == "strasse"
    assert terms(" Van  DIJK ") == ["van", "dijk"]
    assert terms(" - ") == ["-"]
    assert terms("   ") == []


@pytest.fixture
def desk(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org = factories.organisation()
        act = factories.action(org)
        other = factories.action(factories.organisation("Energieloket Zeist"), slug="zeist")
        factories.staff(org, "staff@example.nl")
        ids = {
            "ozturk": add_registration(
                act,
                name="Öztürk-van Dijk",
                email="mehmet@example.nl",
                postcode="3521 AB",
                number=12,
                street="Kanaalstraat",
            ),
            "dijkstra": add_registration(
                act,
                name="Jan Dijkstra",
                email="jan@example.nl",
                postcode="3524 BA",
                street="Hondsrug",
                city="Utrecht",
            ),
            "celik": add_registration(
                act,
                name="Zoë Çelik",
                email="zoe@example.nl",
                postcode="3521 AC",
                street="Vleutenseweg",
            ),
            # Another desk's resident with the same name is never found.
            "elsewhere": add_registration(
                other, name="Ayşe Öztürk", email="ayse@example.nl", postcode="3524 BB"
            ),
        }
        return ids


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ozturk", ["ozturk"]),
        ("OZTÜRK", ["ozturk"]),
        ("öztürk-van", ["ozturk"]),
        ("van dijk", ["ozturk"]),
        ("dijk van", ["ozturk"]),  # words in any order
        ("dijk", ["ozturk", "dijkstra"]),
        ("zoe celik", ["celik"]),
        ("çelik", ["celik"]),
        ("kanaalstr", ["ozturk"]),  # part of a street
        ("KANAALSTRAAT 12", ["ozturk"]),  # street and house number
        ("3521AB", ["ozturk"]),  # a postcode without its space
        ("3521 ab", ["ozturk"]),  # and with it
        ("3521", ["ozturk", "celik"]),
        ("mehmet@", ["ozturk"]),  # part of an email address
        ("utrecht dijkstra", ["dijkstra"]),
        ("ozturk zeist", []),
        ("%", []),
        ("_", []),
        ("-", ["ozturk"]),
    ],
)
def test_search_finds_what_staff_type(
    client: FlaskClient, desk: dict[str, Any], q: str, expected: list[str]
) -> None:
    login(client, "staff@example.nl")
    page = client.get("/desk/registrations/", query_string={"q": q, "sort": "name"})
    assert page.status_code == 200
    found = row_ids(page.get_data(as_text=True))
    assert sorted(found) == sorted(desk[key] for key in expected), q


def test_the_text_follows_a_changed_name_and_address(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        registration = db.session.get(Registration, desk["dijkstra"])
        assert registration is not None
        assert registration.search_text == search_text(registration.user, registration.household)
        assert "jan dijkstra" in registration.search_text
        registration.user.name = "Jan Ådnøy"
        registration.household.street = "Oudegracht"
        db.session.commit()
    with app.app_context():
        registration = db.session.get(Registration, desk["dijkstra"])
        assert registration is not None
        assert "jan adnoy" in registration.search_text
        assert "oudegracht" in registration.search_text
        assert "hondsrug" not in registration.search_text
        org_id = registration.action.organisation_id
        query = desk_services.RegistrationQuery(q="adnoy")
        assert [r.id for r in desk_services.search_registrations(org_id, query).rows] == [
            desk["dijkstra"]
        ]


def test_a_registration_made_by_the_service_is_searchable_at_once(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        factories.staff(act.organisation, "staff@example.nl")
        url = f"/actions/{act.slug}/register"
        form = factories.registration_form(act, name="Ömer Doğan", house_number_addition="")
    assert factories.post_form(client, url, form).status_code == 302
    login(client, "staff@example.nl")
    page = client.get("/desk/registrations/?q=omer+dogan").get_data(as_text=True)
    assert len(row_ids(page)) == 1


def test_postgresql_answers_the_search_from_the_trigram_index(
    app: Flask, desk: dict[str, Any], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the trigram index is PostgreSQL's")
    with app.app_context():
        # Too few rows for the planner to want an index: forbid reading the whole table.
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        condition, _ = desk_services._search_condition("ozturk van")
        statement = select(Registration.id).where(condition)
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(
            row[0] for row in db.session.execute(text(f"EXPLAIN {compiled}")).fetchall()
        )
        assert "ix_registrations_search_text" in plan, plan
        indexes = db.session.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_registrations_search_text'")
        ).scalar_one()
        assert "gin" in indexes and "gin_trgm_ops" in indexes
        db.session.rollback()


def test_erasing_a_resident_leaves_nothing_to_find(app: Flask, desk: dict[str, Any]) -> None:
    from coop.residents.services import erase_resident

    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "mehmet@example.nl")).one()
        erase_resident(user)
        assert db.session.scalars(
            select(Registration).where(Registration.search_text.like("%ozturk%"))
        ).all() == [db.session.get(Registration, desk["elsewhere"])]
        assert (
            db.session.scalars(select(Household).where(Household.street == "Kanaalstraat")).first()
            is None
        )
