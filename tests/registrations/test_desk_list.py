"""The staff's registrations: list with search, filters, sorting and pages; the detail page with
history, notes and emails; registering a resident on their behalf (with a real SMTP server).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from coop.accounts.models import Organisation, Role, User
from coop.actions.models import Action
from coop.core.audit import AuditEntry
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationNote,
    RegistrationStatus,
    StatusChange,
)
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config
from tests.login import sign_in

# --- helpers (tests/desk/test_exports.py uses them too) ---------------------------------------


def add_registration(
    act: Action,
    *,
    name: str,
    email: str,
    postcode: str = "3524 BA",
    number: int = 1,
    street: str = "Hondsrug",
    city: str = "Utrecht",
    status: RegistrationStatus = RegistrationStatus.CONFIRMED,
    ownership: Ownership = Ownership.OWNER,
    measures: tuple[int, ...] = (0,),
    created_at: datetime | None = None,
    phone: str | None = None,
    commit: bool = True,
) -> int | None:
    """A registration as it is after sign-up (and maybe later steps), written directly."""
    created = created_at or utcnow()
    registration = Registration(
        action=act,
        household=Household(
            postcode=postcode,
            house_number=number,
            house_number_addition="",
            street=street,
            city=city,
            dwelling_type=DwellingType.TERRACED,
            build_year=1975,
            ownership=ownership,
        ),
        user=User(email=email, name=name, role=Role.RESIDENT, phone=phone),
        status=status,
        consent_at=created,
        consent_version="test",
        created_at=created,
        measures=[
            RegistrationMeasure(action_measure_id=act.measures[i].id, quantity=10 + i)
            for i in measures
        ],
        history=[StatusChange(to_status=status, at=created)],
    )
    db.session.add(registration)
    if not commit:  # many at once: the caller commits them together
        return None
    db.session.commit()
    return registration.id


def login(client: FlaskClient, email: str) -> None:
    client.get("/language/en")
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-registration-id="(\d+)"', html)]


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


@pytest.fixture
def desk(app: Flask) -> dict[str, Any]:
    """Desk A with two actions and a few registrations; desk B with one action and one."""
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Zeist")
        roofs = factories.action(org_a, slug="samen-isoleren")
        second = factories.action(org_a, slug="warmtepomp-wijk", pc4s="3511,3512")
        zeist = factories.action(org_b, slug="zeist-isoleert", pc4s="3701")
        factories.staff(org_a, "staff-a@example.nl")
        factories.staff(org_b, "staff-b@example.nl")
        start = utcnow() - timedelta(days=10)
        ids = {
            "anna": add_registration(
                roofs,
                name="Anna de Vries",
                email="anna@example.nl",
                postcode="3524 BA",
                number=12,
                street="Hondsrug",
                created_at=start,
            ),
            "bram": add_registration(
                roofs,
                name="bram Bakker",
                email="bram@voorbeeld.nl",
                postcode="3521 AB",
                number=3,
                street="Kanaalweg",
                status=RegistrationStatus.PENDING_CONFIRMATION,
                ownership=Ownership.CORPORATION_TENANT,
                measures=(0, 1),
                created_at=start + timedelta(days=1),
            ),
            "cees": add_registration(
                second,
                name="Cees Jansen",
                email="cees@example.nl",
                postcode="3511 CD",
                number=7,
                street="Oudegracht",
                status=RegistrationStatus.WITHDRAWN,
                measures=(1,),
                created_at=start + timedelta(days=2),
            ),
            "dirk": add_registration(
                second,
                name="Dirk van Dam",
                email="dirk@example.nl",
                postcode="3512 EF",
                number=9,
                street="Hondsrug",
                ownership=Ownership.VVE_MEMBER,
                created_at=start + timedelta(days=3),
            ),
            "zeist": add_registration(
                zeist,
                name="Zoë Zeist",
                email="zoe@example.nl",
                postcode="3701 AA",
                number=1,
                street="Slotlaan",
                created_at=start + timedelta(days=4),
            ),
        }
        return {
            "ids": ids,
            "roofs": roofs.id,
            "second": second.id,
            "zeist": zeist.id,
            "roof_measure": roofs.measures[0].measure_id,
            "pump_measure": roofs.measures[1].measure_id,
        }


def names(desk: dict[str, Any], html: str) -> list[str]:
    by_id = {v: k for k, v in desk["ids"].items()}
    return [by_id[i] for i in row_ids(html)]


# --- the list ---------------------------------------------------------------------------------


def test_staff_see_only_their_organisations_registrations(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    page = client.get("/desk/registrations/").get_data(as_text=True)
    # Newest first by default; Zeist's resident (desk B) is not among them.
    assert names(desk, page) == ["dirk", "cees", "bram", "anna"]
    assert "4 registrations found" in page
    assert "Zoë" not in page
    # A first visit has no parameters: no filter is wrong, none is shown as an error.
    assert "Not a valid choice" not in page and "field-error" not in page

    other = app.test_client()
    login(other, "staff-b@example.nl")
    assert names(desk, other.get("/desk/registrations/").get_data(as_text=True)) == ["zeist"]
    # Asking for A's action by its id is not a choice B has: the filter is refused, B sees B's.
    asked = other.get(f"/desk/registrations/?action={desk['roofs']}").get_data(as_text=True)
    assert names(desk, asked) == ["zeist"]
    assert "Not a valid choice" in asked


FILTER_CASES = [
    ("q=anna", ["anna"]),
    ("q=VOORBEELD.nl", ["bram"]),  # email, any case
    ("q=hondsrug", ["dirk", "anna"]),  # street
    ("q=3524ba", ["anna"]),  # a full postcode, typed loosely
    ("q=3512", ["dirk"]),  # a postcode area
    ("q=3521+a", ["bram"]),  # area and first letter
    ("q=%25", []),  # LIKE wildcards are searched as text
    ("q=_", []),
    ("status=pending_confirmation", ["bram"]),
    ("status=withdrawn", ["cees"]),
    ("ownership=corporation_tenant", ["bram"]),
    ("ownership=vve_member", ["dirk"]),
    ("pc4=3511", ["cees"]),
    ("action={second}", ["dirk", "cees"]),
    ("measure={pump_measure}", ["cees", "bram"]),
    ("measure={roof_measure}&status=confirmed", ["dirk", "anna"]),
    ("action={roofs}&q=hondsrug", ["anna"]),
]
SORT_CASES = [
    ("sort=name&direction=asc", ["anna", "bram", "cees", "dirk"]),  # not case-sensitive
    ("sort=name", ["dirk", "cees", "bram", "anna"]),
    ("sort=postcode&direction=asc", ["cees", "dirk", "bram", "anna"]),
    ("sort=postcode&direction=desc", ["anna", "bram", "dirk", "cees"]),
    ("sort=created&direction=asc", ["anna", "bram", "cees", "dirk"]),
    # The journey's order: pending, confirmed..., then the ended ones (withdrawn).
    ("sort=status&direction=asc", ["bram", "anna", "dirk", "cees"]),
    ("sort=status&direction=desc", ["cees", "dirk", "anna", "bram"]),
]


def test_filters_search_and_sorting_return_the_right_rows(
    client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    wrong = []
    for query, expected in FILTER_CASES + SORT_CASES:
        response = client.get("/desk/registrations/?" + query.format(**desk))
        assert response.status_code == 200, query
        got = names(desk, response.get_data(as_text=True))
        if got != expected:
            wrong.append(f"{query}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_bad_parameters_are_ignored_with_a_message_never_a_500(
    client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    for query in (
        "status=bogus",
        "action=abc",
        "measure=99999",
        "pc4=12",
        "ownership=%00",
        "sort=password_hash",
        "direction=sideways",
        "page=abc",
        "page=-4",
        "page=99999999999999999999",
        "q=" + "x" * 500,
        "q=%00",
    ):
        response = client.get("/desk/registrations/?" + query)
        assert response.status_code == 200, query
        html = response.get_data(as_text=True)
        assert len(row_ids(html)) == 4, query
    # The field's problem is said at the field.
    html = client.get("/desk/registrations/?pc4=12").get_data(as_text=True)
    assert "Enter four digits, like 3524." in html


def test_pages_of_fifty_with_links_and_total(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        org = factories.organisation()
        act = factories.action(org)
        factories.staff(org)
        start = utcnow() - timedelta(days=1)
        for n in range(1, 121):
            add_registration(
                act,
                name=f"Resident {n:03d}",
                email=f"r{n}@example.nl",
                number=n,
                created_at=start + timedelta(minutes=n),
                commit=False,
            )
        db.session.commit()
        first_id = db.session.scalar(select(func.min(Registration.id)))
    login(client, "staff@example.nl")

    first = client.get("/desk/registrations/?sort=name&direction=asc").get_data(as_text=True)
    assert len(row_ids(first)) == 50
    assert "120 registrations found; showing 1 to 50" in first
    assert "Page 1 of 3" in first
    assert "page=2" in first and "page=3" in first
    assert 'rel="next"' in first and 'rel="prev"' not in first
    # Page links keep the sort.
    assert re.search(r'href="[^"]*sort=name[^"]*page=2|href="[^"]*page=2[^"]*sort=name', first)

    third = client.get("/desk/registrations/?sort=name&direction=asc&page=3").get_data(as_text=True)
    ids = row_ids(third)
    assert len(ids) == 20
    assert ids[0] == first_id + 100 and ids[-1] == first_id + 119
    assert "showing 101 to 120" in third
    # Every row once over all pages, none twice.
    second = client.get("/desk/registrations/?sort=name&direction=asc&page=2").get_data(
        as_text=True
    )
    assert len(set(row_ids(first) + row_ids(second) + ids)) == 120
    # Past the end: the last page.
    assert row_ids(client.get("/desk/registrations/?page=99").get_data(as_text=True)) == [
        first_id + n for n in range(19, -1, -1)
    ]


def test_the_list_page_costs_the_same_few_queries_for_any_number_of_rows(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    with app.app_context(), counted_queries() as few:
        client.get("/desk/registrations/")
    with app.app_context():
        act = db.session.get(Action, desk["roofs"])
        assert act is not None
        for n in range(30):
            add_registration(
                act, name=f"Extra {n}", email=f"extra{n}@example.nl", number=100 + n, commit=False
            )
        db.session.commit()
    with app.app_context(), counted_queries() as many:
        page = client.get("/desk/registrations/").get_data(as_text=True)
    assert len(row_ids(page)) == 34
    # No query per row: the page is one query, the count another, the loaders a few more.
    assert len(many) == len(few), many


# --- one registration ---------------------------------------------------------------------------


def test_detail_shows_resident_measures_history_and_emails(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    from coop.core.models import EmailLog, EmailStatus

    anna = desk["ids"]["anna"]
    with app.app_context():
        registration = db.session.get(Registration, anna)
        assert registration is not None
        db.session.add(
            EmailLog(
                key="test:anna",
                user_id=registration.user_id,
                recipient="anna@example.nl",
                subject="Confirm your registration",
                template="confirm_registration",
                language="en",
                message_id="<x@coop>",
                status=EmailStatus.SENT,
                sent_at=utcnow(),
            )
        )
        db.session.commit()
    login(client, "staff-a@example.nl")
    page = client.get(f"/desk/registrations/{anna}").get_data(as_text=True)
    assert "Anna de Vries" in page
    assert "anna@example.nl" in page
    assert "Hondsrug 12, 3524 BA Utrecht" in page
    assert "Roof insulation" in page
    assert 'id="history"' in page and "Confirmed" in page
    assert "Confirm your registration" in page  # the email log


def test_a_note_is_added_with_an_audit_entry_and_validated(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    anna = desk["ids"]["anna"]
    login(client, "staff-a@example.nl")
    url = f"/desk/registrations/{anna}/notes"
    too_long = factories.post_form(client, url, {"body": "x" * 2001}, token_from=url[:-6])
    assert too_long.status_code == 200
    assert "Use at most 2000 characters." in too_long.get_data(as_text=True)
    empty = factories.post_form(client, url, {"body": "   "}, token_from=url[:-6])
    assert "Write the note first." in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RegistrationNote)) == 0

    saved = factories.post_form(
        client, url, {"body": "Belde op 12-11: wil ook vloerisolatie."}, token_from=url[:-6]
    )
    assert saved.status_code == 302
    page = client.get(f"/desk/registrations/{anna}").get_data(as_text=True)
    assert "Belde op 12-11: wil ook vloerisolatie." in page
    assert "Sanne Staff" in page
    with app.app_context():
        note = db.session.scalars(select(RegistrationNote)).one()
        assert note.registration_id == anna
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.verb == "registration.note")
        ).one()
        assert entry.object_id == anna
        assert entry.after is not None and entry.after["note_id"] == note.id


def test_staff_of_another_organisation_get_404_everywhere(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, "staff-b@example.nl")
    anna = desk["ids"]["anna"]
    assert client.get(f"/desk/registrations/{anna}").status_code == 404
    token = factories.csrf_token(client, "/desk/registrations/new")
    response = client.post(
        f"/desk/registrations/{anna}/notes", data={"body": "B was here", "csrf_token": token}
    )
    assert response.status_code == 404
    assert client.get(f"/desk/registrations/new/{desk['roofs']}").status_code == 404
    with app.app_context():
        act = db.session.get(Action, desk["roofs"])
        assert act is not None
        form = factories.registration_form(act, email="sneaky@example.nl")
    response = client.post(
        f"/desk/registrations/new/{desk['roofs']}", data={**form, "csrf_token": token}
    )
    assert response.status_code == 404
    # B's own choice of actions lists only B's action.
    choices = client.get("/desk/registrations/new").get_data(as_text=True)
    assert f"/desk/registrations/new/{desk['zeist']}" in choices
    assert f"/desk/registrations/new/{desk['roofs']}" not in choices
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RegistrationNote)) == 0
        assert db.session.scalar(select(User).where(User.email == "sneaky@example.nl")) is None


def test_residents_and_installers_cannot_open_the_staff_pages(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    anna = desk["ids"]["anna"]
    with app.app_context():
        resident = db.session.scalar(select(User).where(User.email == "anna@example.nl"))
        assert resident is not None
        resident_id = resident.id
    sign_in(client, resident_id)
    for url in ("/desk/registrations/", f"/desk/registrations/{anna}", "/desk/registrations/new"):
        assert client.get(url).status_code == 404, url
    anonymous = app.test_client()
    assert anonymous.get("/desk/registrations/").status_code == 302


# --- registering on behalf ---------------------------------------------------------------------


def wait_for_mail(recorder: SMTPRecorder, address: str, timeout: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    while not recorder.to(address) and time.monotonic() < deadline:
        time.sleep(0.02)
    return recorder.to(address)


def test_staff_register_a_resident_who_gets_the_confirmation_email(
    app: Flask,
    client: FlaskClient,
    desk: dict[str, Any],
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    recorder, _port = smtp_server
    with app.app_context():
        act = db.session.get(Action, desk["roofs"])
        assert act is not None
        form = factories.registration_form(
            act,
            name="Ellen Erf",
            email="ellen@example.nl",
            postcode="3521 xy",
            house_number="40",
            house_number_addition="",
            language="en",
        )
        staff = db.session.scalar(select(User).where(User.email == "staff-a@example.nl"))
        assert staff is not None
        staff_id = staff.id
    login(client, "staff-a@example.nl")
    choices = client.get("/desk/registrations/new").get_data(as_text=True)
    url = f"/desk/registrations/new/{desk['roofs']}"
    assert url in choices

    # Without the resident's agreement nothing is saved.
    refused = factories.post_form(client, url, {**form, "consent": ""})
    assert refused.status_code == 200
    assert "Only register someone who agreed" in refused.get_data(as_text=True)

    response = factories.post_form(client, url, form)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        registration = db.session.scalars(
            select(Registration).join(User).where(User.email == "ellen@example.nl")
        ).one()
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION
        assert registration.household.postcode == "3521 XY"
        assert [c.actor_id for c in registration.history] == [staff_id]
        assert registration.user.language == "en"
        registration_id = registration.id
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.verb == "registration.register_on_behalf")
        ).one()
        assert entry.actor_id == staff_id and entry.object_id == registration_id
    assert response.headers["Location"].endswith(f"/desk/registrations/{registration_id}")

    messages = wait_for_mail(recorder, "ellen@example.nl")
    assert len(messages) == 1
    assert "/login/" in message_text(messages[0])  # the confirmation link

    page = client.get(f"/desk/registrations/{registration_id}").get_data(as_text=True)
    assert 'data-entered-by="staff"' in page
    assert "entered by Sanne Staff of the energy desk" in page


def test_an_address_already_registered_links_to_that_registration(
    app: Flask, client: FlaskClient, desk: dict[str, Any], smtp_server: tuple[SMTPRecorder, int]
) -> None:
    with app.app_context():
        act = db.session.get(Action, desk["roofs"])
        assert act is not None
        # Anna's address (3524 BA 12), someone else's email.
        form = factories.registration_form(
            act, email="partner@example.nl", house_number="12", house_number_addition=""
        )
        before = db.session.scalar(select(func.count()).select_from(Registration))
    login(client, "staff-a@example.nl")
    url = f"/desk/registrations/new/{desk['roofs']}"
    response = factories.post_form(client, url, form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "This address is already registered for this action." in html
    assert f'href="/desk/registrations/{desk["ids"]["anna"]}"' in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == before
    assert smtp_server[0].to("partner@example.nl") == []


def test_a_closed_action_cannot_be_registered_for_on_behalf(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        org: Organisation = factories.organisation()
        closed = factories.action(org, opens_in_days=-30, closes_in_days=-1)
        factories.staff(org)
        closed_id = closed.id
    login(client, "staff@example.nl")
    assert f"/desk/registrations/new/{closed_id}" not in client.get(
        "/desk/registrations/new"
    ).get_data(as_text=True)
    response = client.get(f"/desk/registrations/new/{closed_id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/desk/registrations/new")
