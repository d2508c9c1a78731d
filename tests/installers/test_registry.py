"""The installer registry: staff add and change installers with their offers and service area,
invite the company's users; other desks, residents and installers see none of it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import Role, User
from coop.accounts.services import hash_password
from coop.actions.catalogue import ensure_catalogue
from coop.core.audit import AuditEntry
from coop.core.formatting import AmountError, parse_euros
from coop.core.models import OutboxJob
from coop.extensions import db
from coop.installers.models import Installer, InstallerOffer
from coop.installers.services import ServiceAreaError, format_service_area, parse_service_area
from tests import factories


def login(client: FlaskClient, email: str) -> None:
    client.get("/language/en")
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def installer_form(measure_ids: dict[str, int], **overrides: Any) -> dict[str, Any]:
    roof, pump = measure_ids["roof"], measure_ids["hybrid_heat_pump"]
    data: dict[str, Any] = {
        "company_name": "Isolatie Utrecht BV",
        "kvk_number": "1234 5678",
        "certifications": " VCA,  InstallQ ,, Erkend ISSO",
        "contact_name": "Peter de Groot",
        "email": "Info@Isolatie-Utrecht.example",
        "phone": "030 765 43 21",
        "city": "Utrecht",
        "service_area": "3500-3599, 3811",
        f"offer_{roof}": "y",
        f"price_{roof}": "1.234,50",
        f"capacity_{roof}": "12",
        f"offer_{pump}": "",
        f"price_{pump}": "",
        f"capacity_{pump}": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def registry(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Zeist")
        factories.staff(org_a, "staff-a@example.nl")
        factories.staff(org_b, "staff-b@example.nl")
        measures = {code: m.id for code, m in ensure_catalogue().items()}
        return {"org_a": org_a.id, "org_b": org_b.id, "measures": measures}


def count(model: type[Any]) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


# --- parsing, without the app --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("12,50", 1250),
        ("12.50", 1250),
        ("12,5", 1250),
        ("12", 1200),
        ("€ 7,05", 705),
        ("1.234,50", 123450),
        ("1,234.50", 123450),
        ("1.234", 123400),
        ("1.234.567", 123456700),
        (" 45 ", 4500),
    ],
)
def test_euros_are_read_as_people_type_them(typed: str, cents: int) -> None:
    assert parse_euros(typed) == cents


@pytest.mark.parametrize(
    "typed", ["-5", "-0,50", "abc", "12,5055", "1.23,45", "1,2,3", "12.34.5", "", "1e3", "12,-"]
)
def test_nonsense_amounts_are_refused(typed: str) -> None:
    with pytest.raises(AmountError):
        parse_euros(typed)


def test_service_areas_are_parsed_and_checked() -> None:
    assert parse_service_area("3500-3599, 3811") == [(3500, 3599), (3811, 3811)]
    assert parse_service_area("3500 - 3599;3811,\n1000") == [
        (3500, 3599),
        (3811, 3811),
        (1000, 1000),
    ]
    assert format_service_area(parse_service_area(" 3811 , 3500-3599 ")) == "3811,3500-3599"
    for text, code in [
        ("3599-3500", "reversed"),
        ("0999", "out_of_range"),
        ("3500-10000", "not_pc4"),
        ("35a0", "not_pc4"),
        ("3500-", "not_pc4"),
        (" , ", "empty"),
    ]:
        with pytest.raises(ServiceAreaError) as caught:
            parse_service_area(text)
        assert caught.value.code == code, text


# --- over HTTP -------------------------------------------------------------------------------


def test_staff_register_an_installer_with_offers_and_an_audit_entry(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    response = factories.post_form(
        client, "/desk/installers/new", installer_form(registry["measures"])
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        installer = db.session.scalars(select(Installer)).one()
        assert installer.organisation_id == registry["org_a"]
        assert installer.kvk_number == "12345678"
        assert installer.service_area == "3500-3599,3811"
        assert installer.certifications == "VCA,InstallQ,Erkend ISSO"
        assert installer.email == "info@isolatie-utrecht.example"
        assert [(o.measure_id, o.unit_price_cents, o.homes_per_week) for o in installer.offers] == [
            (registry["measures"]["roof"], 123450, 12)
        ]
        entry = db.session.scalars(select(AuditEntry)).one()
        assert entry.verb == "installer.create"
        assert entry.object_id == installer.id
        assert entry.after is not None and entry.after["kvk_number"] == "12345678"
        installer_id = installer.id
    assert response.headers["Location"].endswith(f"/desk/installers/{installer_id}")
    listing = client.get("/desk/installers/").get_data(as_text=True)
    assert "Isolatie Utrecht BV" in listing and "3500-3599, 3811" in listing
    detail = client.get(f"/desk/installers/{installer_id}").get_data(as_text=True)
    assert "€1,234.50" in detail


def test_every_mistake_gets_a_clear_message_and_nothing_is_saved(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    measures = registry["measures"]
    roof, pump = measures["roof"], measures["hybrid_heat_pump"]
    login(client, "staff-a@example.nl")
    cases = [
        ({"kvk_number": "1234567"}, "A KvK number is exactly 8 digits, like 12345678."),
        ({"kvk_number": "1234567a"}, "A KvK number is exactly 8 digits, like 12345678."),
        ({"kvk_number": "123456789"}, "A KvK number is exactly 8 digits, like 12345678."),
        ({"service_area": "3599-3500"}, "In “3599-3500” the first number must not be larger"),
        (
            {"service_area": "3500, 0999"},
            "“0999” is not a postcode area: use numbers from 1000 to 9999.",
        ),
        ({"service_area": "35a0"}, "“35a0” is not a postcode area: use four digits"),
        ({"service_area": ""}, "Enter the postcode areas the installer serves"),
        ({f"price_{roof}": "-5"}, "An amount cannot be negative."),
        ({f"price_{roof}": "twaalf"}, "Enter an amount in euros, like 12,50 or 1.234,50."),
        ({f"price_{roof}": "0,00"}, "Enter an amount above € 0."),
        ({f"price_{roof}": "2.000.000"}, "Enter an amount of at most € 1.000.000."),
        ({f"price_{roof}": ""}, "Enter the price per unit, or untick it."),
        ({f"capacity_{roof}": "0"}, "Enter a number of homes from 1 to 1000."),
        ({f"capacity_{roof}": "-2"}, "Enter a number of homes from 1 to 1000."),
        ({f"capacity_{roof}": ""}, "Enter how many homes a week, or untick it."),
        ({f"offer_{pump}": "y", f"price_{pump}": "4500"}, "Enter how many homes a week"),
        ({"company_name": "\x00"}, "Remove the invisible control characters."),
        ({"email": "geen-adres"}, "Enter an email address like name@example.nl."),
    ]
    wrong = []
    for overrides, message in cases:
        response = factories.post_form(
            client, "/desk/installers/new", installer_form(measures, **overrides)
        )
        html = response.get_data(as_text=True).replace("&#34;", '"')
        if response.status_code != 200 or message not in html:
            wrong.append(f"{overrides}: {response.status_code}, no {message!r}")
    assert not wrong, "\n".join(wrong)
    with app.app_context():
        assert count(Installer) == 0 and count(InstallerOffer) == 0 and count(AuditEntry) == 0


def test_a_kvk_number_is_registered_once_per_desk(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    measures = registry["measures"]
    login(client, "staff-a@example.nl")
    assert (
        factories.post_form(client, "/desk/installers/new", installer_form(measures)).status_code
        == 302
    )
    again = factories.post_form(
        client, "/desk/installers/new", installer_form(measures, company_name="Andere naam BV")
    )
    assert again.status_code == 200
    assert "An installer with this KvK number is already registered." in again.get_data(
        as_text=True
    )
    # Another desk may register the same company.
    other = app.test_client()
    login(other, "staff-b@example.nl")
    assert (
        factories.post_form(other, "/desk/installers/new", installer_form(measures)).status_code
        == 302
    )
    with app.app_context():
        assert sorted(i.organisation_id for i in db.session.scalars(select(Installer))) == sorted(
            [registry["org_a"], registry["org_b"]]
        )


def test_editing_changes_offers_and_records_only_what_changed(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    measures = registry["measures"]
    roof, pump = measures["roof"], measures["hybrid_heat_pump"]
    login(client, "staff-a@example.nl")
    factories.post_form(client, "/desk/installers/new", installer_form(measures))
    with app.app_context():
        installer_id = db.session.scalars(select(Installer.id)).one()
    url = f"/desk/installers/{installer_id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert 'value="1234,50"' in page  # the price shown as it is typed
    changed = installer_form(
        measures,
        **{
            f"offer_{roof}": "",
            f"offer_{pump}": "y",
            f"price_{pump}": "4.250",
            f"capacity_{pump}": "3",
            "city": "Zeist",
        },
    )
    response = factories.post_form(client, url, changed)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        installer = db.session.get(Installer, installer_id)
        assert installer is not None
        assert installer.city == "Zeist"
        assert [(o.measure_id, o.unit_price_cents, o.homes_per_week) for o in installer.offers] == [
            (pump, 425000, 3)
        ]
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.verb == "installer.update")
        ).one()
        assert entry.before is not None and entry.after is not None
        assert set(entry.after) == {"city", "offers"}
        assert entry.before["city"] == "Utrecht" and entry.after["city"] == "Zeist"
    # Saving again without changes records nothing more.
    factories.post_form(client, url, changed)
    with app.app_context():
        verbs = list(db.session.scalars(select(AuditEntry.verb)))
        assert verbs.count("installer.update") == 1


def test_inviting_a_user_who_then_sees_only_their_own_company(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    measures = registry["measures"]
    login(client, "staff-a@example.nl")
    factories.post_form(client, "/desk/installers/new", installer_form(measures))
    factories.post_form(
        client,
        "/desk/installers/new",
        installer_form(measures, company_name="Warmte Zeist BV", kvk_number="87654321"),
    )
    with app.app_context():
        ours, theirs = db.session.scalars(select(Installer.id).order_by(Installer.id)).all()
    url = f"/desk/installers/{ours}/invite"
    bad = factories.post_form(client, url, {"name": "Fatima", "email": "staff-b@example.nl"})
    assert "This email address already has an account." in bad.get_data(as_text=True)
    response = factories.post_form(
        client, url, {"name": "Fatima Fitter", "email": "Fatima@Isolatie.example"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "fatima@isolatie.example"))
        assert user is not None
        assert user.role is Role.INSTALLER and user.installer_id == ours
        assert user.password_hash is None
        assert db.session.scalar(
            select(OutboxJob).where(OutboxJob.name == "accounts.send_invitation")
        )
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "user.invite"))
        # As if the invitation was used: a password is set.
        user.password_hash = hash_password(factories.PASSWORD)
        db.session.commit()
    assert "Fatima Fitter" in client.get(f"/desk/installers/{ours}").get_data(as_text=True)

    fitter = app.test_client()
    login(fitter, "fatima@isolatie.example")
    home = fitter.get("/installer").get_data(as_text=True)
    assert "Isolatie Utrecht BV" in home and "Warmte Zeist BV" not in home
    for path in ("/desk/installers/", f"/desk/installers/{ours}", f"/desk/installers/{theirs}"):
        assert fitter.get(path).status_code == 404, path


def test_another_desk_gets_404_and_sees_nothing(
    app: Flask, client: FlaskClient, registry: dict[str, Any]
) -> None:
    measures = registry["measures"]
    login(client, "staff-a@example.nl")
    factories.post_form(client, "/desk/installers/new", installer_form(measures))
    with app.app_context():
        installer_id = db.session.scalars(select(Installer.id)).one()

    other = app.test_client()
    login(other, "staff-b@example.nl")
    assert "Isolatie Utrecht BV" not in other.get("/desk/installers/").get_data(as_text=True)
    for path in ("", "/edit", "/invite"):
        assert other.get(f"/desk/installers/{installer_id}{path}").status_code == 404, path
    token = factories.csrf_token(other, "/desk/installers/new")
    edit = other.post(
        f"/desk/installers/{installer_id}/edit",
        data={**installer_form(measures, company_name="Overgenomen"), "csrf_token": token},
    )
    assert edit.status_code == 404
    invite = other.post(
        f"/desk/installers/{installer_id}/invite",
        data={"name": "Indringer", "email": "in@example.nl", "csrf_token": token},
    )
    assert invite.status_code == 404
    assert "Isolatie" not in other.get("/desk/installers/export.csv").get_data(as_text=True)
    with app.app_context():
        installer = db.session.get(Installer, installer_id)
        assert installer is not None and installer.company_name == "Isolatie Utrecht BV"
        assert db.session.scalar(select(User).where(User.email == "in@example.nl")) is None
    # Nor are the pages there for residents or anonymous visitors.
    anonymous = app.test_client()
    assert anonymous.get("/desk/installers/").status_code == 302
    assert anonymous.get(f"/desk/installers/{installer_id}").status_code == 302
