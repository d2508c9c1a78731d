"""Setting up a new desk without SQL: `coop create-organisation` and `coop create-staff --admin`
through Click's runner (on both databases) and once through the real console script on an
empty database, as the README's "first deployment" says; the admin then finds Team and Audit
log in the menu."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop import create_app
from coop.accounts.models import Organisation, OrganisationKind, Role, User
from coop.accounts.services import authenticate
from coop.core.audit import AuditEntry
from coop.extensions import db
from coop.orders.models import VatRate
from tests import factories
from tests.conftest import base_config

PASSWORD = "een-lang-wachtwoord-2026"
ORGANISATION = [
    "create-organisation",
    "--name",
    "Energieloket Amersfoort",
    "--municipality",
    "Amersfoort",
    "--email",
    "Energieloket@Amersfoort.example",
]


def invoke(app: Flask, args: list[str], input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=args, input=input)


def organisations() -> int:
    return int(db.session.scalar(select(func.count()).select_from(Organisation)) or 0)


def test_create_organisation_prints_its_id_and_is_safe_to_run_again(app: Flask) -> None:
    result = invoke(app, [*ORGANISATION, "--kind", "cooperative", "--phone", "033 469 50 00"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        organisation = db.session.scalars(select(Organisation)).one()
        assert result.stdout.strip() == str(organisation.id)  # only the id: for a script
        assert "created with id" in result.stderr
        assert (organisation.name, organisation.kind, organisation.municipality) == (
            "Energieloket Amersfoort",
            OrganisationKind.COOPERATIVE,
            "Amersfoort",
        )
        assert organisation.email == "energieloket@amersfoort.example"
        assert organisation.phone == "033 469 50 00"
        # Quotes on its actions need VAT rates: it starts with today's three Dutch ones.
        rates = db.session.scalars(
            select(VatRate.percent).where(VatRate.organisation_id == organisation.id)
        )
        assert sorted(rates) == [0, 9, 21]
        first_id = organisation.id

    # Again, even with the name in other capitals: the same id, nothing new, nothing changed.
    again = [*ORGANISATION]
    again[2] = "energieloket amersfoort"
    result = invoke(app, again)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(first_id) and "exists already" in result.stderr
    with app.app_context():
        assert organisations() == 1
        assert db.session.scalar(select(func.count()).select_from(VatRate)) == 3


def test_create_organisation_refuses_bad_input_with_a_sentence(app: Flask) -> None:
    cases = [
        (["--email", "geen-adres"], "The organisation's email address 'geen-adres' is not valid"),
        (["--name", "   "], "Give the organisation's name."),
        (["--name", "x" * 201], "The organisation's name is too long: use at most 200"),
        (["--municipality", ""], "Give the municipality."),
    ]
    for change, message in cases:
        args = [*ORGANISATION]
        args[args.index(change[0]) + 1] = change[1]
        result = invoke(app, args)
        assert result.exit_code == 1, result.output
        assert f"Error: {message}" in " ".join(result.output.split())
        assert "Traceback" not in result.output
    result = invoke(app, [*ORGANISATION, "--kind", "gemeente"])
    assert result.exit_code == 2 and "'municipality', 'cooperative'" in result.output
    result = invoke(app, ["create-organisation", "--name", "Zonder meer"])
    assert result.exit_code == 2 and "Missing option" in result.output
    with app.app_context():
        assert organisations() == 0


def _organisation(app: Flask) -> int:
    result = invoke(app, ORGANISATION)
    assert result.exit_code == 0, result.output
    return int(result.stdout)


def staff_args(organisation_id: int, email: str = "Beheer@Amersfoort.example") -> list[str]:
    return [
        "create-staff",
        "--email",
        email,
        "--name",
        "Bea Beheer",
        "--organisation-id",
        str(organisation_id),
    ]


def test_create_staff_makes_a_desk_admin_who_logs_in_and_finds_team_and_audit(
    app: Flask, client: FlaskClient
) -> None:
    organisation_id = _organisation(app)
    # The password is asked twice, hidden.
    result = invoke(app, [*staff_args(organisation_id), "--admin"], input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 0, result.output
    assert "desk admin account beheer@amersfoort.example created" in result.output
    assert PASSWORD not in result.output
    with app.app_context():
        user = authenticate("beheer@amersfoort.example", PASSWORD)
        assert user is not None
        assert (user.role, user.organisation_id, user.is_desk_admin) == (
            Role.STAFF,
            organisation_id,
            True,
        )
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.verb == "user.create"))
        assert entry.one().after == {
            "email": "beheer@amersfoort.example",
            "name": "Bea Beheer",
            "is_desk_admin": True,
        }
        db.session.commit()  # authenticate() noted the login

    # Again: nothing changes, not even the password; no password asked.
    result = invoke(app, [*staff_args(organisation_id), "--admin", "--password", "x"])
    assert result.exit_code == 0, result.output
    assert "exists already" in result.output
    with app.app_context():
        assert authenticate("beheer@amersfoort.example", PASSWORD) is not None
        db.session.rollback()

    # A colleague without --admin: no team, no audit log.
    result = invoke(
        app,
        [*staff_args(organisation_id, "collega@amersfoort.example"), "--password", PASSWORD],
    )
    assert result.exit_code == 0 and "staff account collega@" in result.output

    factories.post_form(
        client, "/staff/login", {"email": "beheer@amersfoort.example", "password": PASSWORD}
    )
    client.get("/language/en")
    # The menu of every desk page, also one without the actions' own links.
    page = client.get("/desk/installers/").get_data(as_text=True)
    header = page[page.index("<header") : page.index("</header>")]
    assert 'href="/desk/team"' in header and 'href="/desk/audit"' in header
    assert client.get("/desk/team").status_code == 200
    assert client.get("/desk/audit").status_code == 200

    other = app.test_client()
    factories.post_form(
        other, "/staff/login", {"email": "collega@amersfoort.example", "password": PASSWORD}
    )
    page = other.get("/desk/installers/").get_data(as_text=True)
    assert 'href="/desk/team"' not in page and 'href="/desk/audit"' not in page


def test_create_staff_refuses_bad_input_with_a_sentence(app: Flask) -> None:
    organisation_id = _organisation(app)
    with app.app_context():
        factories.staff(factories.organisation("Energiecoöperatie Zeist"), email="bezet@example.nl")
        db.session.add(User(email="bewoner@example.nl", name="Bewoner"))
        db.session.commit()

    # An unknown organisation is said before the password is asked for.
    result = invoke(app, staff_args(organisation_id + 99), input="")
    assert result.exit_code == 1
    assert f"There is no organisation with id {organisation_id + 99}" in result.output
    assert "Password" not in result.output

    cases = [
        (staff_args(organisation_id, "bezet@example.nl"), PASSWORD, "already used by another"),
        (staff_args(organisation_id, "bewoner@example.nl"), PASSWORD, "already used by another"),
        (staff_args(organisation_id, "geen-adres"), PASSWORD, "is not valid"),
        (staff_args(organisation_id), "kort-2026", "at least 12 characters"),
        (staff_args(organisation_id), "beheer@amersfoort.example", "not the email address"),
    ]
    for args, password, message in cases:
        result = invoke(app, [*args, "--admin", "--password", password])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    # Two different passwords at the prompt: asked again, as a person would expect.
    result = invoke(
        app, [*staff_args(organisation_id), "--admin"], input=f"{PASSWORD}\nanders-2026-xx\n"
    )
    assert result.exit_code != 0 and "do not match" in result.output.lower()
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.organisation_id == organisation_id)
            )
            == 0
        )


def test_a_new_deployment_with_the_console_script_as_the_readme_says(tmp_path: Path) -> None:
    """The installed `coop` command, in a process of its own, on an empty SQLite database."""
    script = Path(sys.executable).parent / "coop"
    assert script.exists(), f"no console script at {script}"
    database = tmp_path / "new.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "MAIL_SERVER": "",
        "COOP_ENV": "development",
    }

    def coop(
        *args: str, input: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            env={**env, **extra},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    for step in (["db", "upgrade"], ["catalogue"]):
        done = coop(*step)
        assert done.returncode == 0, done.stderr
    made = coop(*ORGANISATION)
    assert made.returncode == 0, made.stderr
    organisation_id = made.stdout.strip()
    assert organisation_id == "1" and "created with id 1" in made.stderr
    admin = coop(*staff_args(1), "--admin", COOP_STAFF_PASSWORD=PASSWORD)
    assert admin.returncode == 0, admin.stderr
    again = coop(*staff_args(1), "--admin", COOP_STAFF_PASSWORD=PASSWORD)
    assert again.returncode == 0 and "exists already" in again.stdout
    wrong = coop(*staff_args(7), "--admin", COOP_STAFF_PASSWORD=PASSWORD)
    assert wrong.returncode == 1 and "There is no organisation with id 7" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    app = create_app(base_config(f"sqlite:///{database}"))
    with app.app_context():
        user = authenticate("beheer@amersfoort.example", PASSWORD)
        assert user is not None and user.is_desk_admin and user.organisation_id == 1
        db.session.rollback()
        db.engine.dispose()


def test_create_staff_checks_the_password_as_the_invitation_form_does(app: Flask) -> None:
    """The same check as a colleague's invitation: leaked and common passwords, ones built on
    the person's name, and easily guessed ones are refused, each with its own reason."""
    organisation_id = _organisation(app)
    args = [
        "create-staff",
        "--email",
        "s.w@amersfoort.example",
        "--name",
        "Sanne Willems",
        "--organisation-id",
        str(organisation_id),
    ]
    cases = [
        ("Willems1234!", "built on the name, email address or a common word"),
        ("wachtwoord12345", "leaked or are used a lot"),
        ("willemswillems", "too easy to guess"),
    ]
    for password, message in cases:
        result = invoke(app, [*args, "--password", password])
        assert result.exit_code == 1, (password, result.output)
        assert message in result.output, (password, result.output)
        assert "not the email address" not in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    result = invoke(app, [*args, "--password", "Kanaalweg-Dakgoot-Zonnepaneel"])
    assert result.exit_code == 0, result.output
