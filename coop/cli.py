"""The ``coop`` command: demo data, a new desk's organisation and staff accounts, the scheduler
round, the dev server."""

from __future__ import annotations

import logging
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from coop.extensions import db

log = logging.getLogger(__name__)


def main() -> None:
    from coop import create_app

    FlaskGroup(create_app=lambda: create_app(), help="coop: collective purchase actions.")()


def init_app(app: Flask) -> None:
    for command in (
        demo,
        catalogue,
        create_organisation,
        create_staff,
        sweep,
        scheduler,
        serve,
    ):
        app.cli.add_command(command)


@click.command()
@with_appcontext
def catalogue() -> None:
    """Insert the measure catalogue (safe to run again)."""
    from coop.actions.catalogue import ensure_catalogue

    measures = ensure_catalogue()
    click.echo(f"{len(measures)} measures in the catalogue")


@click.command()
@click.option("--registrations", default=300, show_default=True)
@with_appcontext
def demo(registrations: int) -> None:
    """Seed realistic Dutch demo data (only into an empty database) and print the logins."""
    from coop.demo import seed_demo

    logins = seed_demo(registrations=registrations)
    from coop.core.jobs import dispatcher

    dispatcher().run_pending()
    base = current_app.config["BASE_URL"]
    if logins is None:
        click.echo("The database already has data; demo data not added.")
    else:
        click.echo("Demo data ready. Logins (role, email, password):")
        for role, email, password in logins:
            click.echo(f"  {role:<10} {email:<40} {password}")
    click.echo(f"Open {base}/  (staff and installers log in at {base}/staff/login,")
    click.echo(f"residents by email link; the development mailbox is at {base}/dev/mailbox)")


@click.command("create-organisation")
@click.option("--name", required=True, help="e.g. 'Energieloket Utrecht'")
@click.option("--municipality", required=True, help="the municipality it works in")
@click.option("--email", required=True, help="the desk's general email address")
@click.option(
    "--kind",
    type=click.Choice(["municipality", "cooperative"]),
    default="municipality",
    show_default=True,
    help="a municipality's energy desk or a residents' energy cooperative",
)
@click.option("--phone", default=None, help="the desk's phone number (optional)")
@with_appcontext
def create_organisation(
    name: str, municipality: str, email: str, kind: str, phone: str | None
) -> None:
    """Create an energy desk or cooperative and print its id (for `coop create-staff`).

    Safe to run again: an organisation of the same name is not made twice; its id is printed.
    """
    from coop.accounts.models import OrganisationKind
    from coop.accounts.setup import SetupError
    from coop.accounts.setup import create_organisation as create

    try:
        result = create(name, municipality, email, kind=OrganisationKind(kind), phone=phone)
    except SetupError as error:
        raise click.ClickException(str(error)) from error
    organisation = result.value
    if result.created:
        click.echo(
            f"Organisation {organisation.name!r} created with id {organisation.id}.", err=True
        )
    else:
        click.echo(
            f"Organisation {organisation.name!r} exists already with id {organisation.id}; "
            "nothing changed.",
            err=True,
        )
    # Only the id on standard output, so that a script can keep it: ORG=$(coop create-...)
    click.echo(organisation.id)


@click.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--organisation-id", type=int, required=True, help="from create-organisation")
@click.option("--admin", is_flag=True, help="a desk admin: invites colleagues, reads the audit log")
@click.option(
    "--password",
    default=None,
    envvar="COOP_STAFF_PASSWORD",
    help="at least 12 characters; asked for (hidden, twice) when neither this option nor "
    "COOP_STAFF_PASSWORD is given",
)
@with_appcontext
def create_staff(
    email: str, name: str, organisation_id: int, admin: bool, password: str | None
) -> None:
    """Create a staff account (with --admin a desk admin) that logs in with a password.

    Safe to run again: a staff account with this email at this organisation is left as it is.
    """
    from coop.accounts.setup import SetupError, check_staff
    from coop.accounts.setup import create_staff as create

    try:
        # The input is checked before the password is asked, so nobody types it for nothing.
        existing = check_staff(email, name, organisation_id)
        if existing is None and password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        result = create(email, name, organisation_id, password or "", admin=admin)
    except SetupError as error:
        raise click.ClickException(str(error)) from error
    user = result.value
    kind = "desk admin" if user.is_desk_admin else "staff"
    if result.created:
        click.echo(f"{kind} account {user.email} created (organisation {organisation_id}).")
    else:
        click.echo(
            f"{kind} account {user.email} exists already at organisation {organisation_id}; "
            "nothing changed (its password neither)."
        )


@click.command()
@with_appcontext
def sweep() -> None:
    """One scheduler round: reminders, expiry, and handing over jobs that never reached a worker."""
    from coop.core.jobs import run_periodic_tasks

    click.echo(" ".join(f"{k}={v}" for k, v in run_periodic_tasks().items()))


def scheduler_round(app: Flask) -> dict[str, int] | None:
    """One round in a fresh session; what failed is logged and recorded for /healthz by
    ``run_periodic_tasks``, and the loop that calls this goes on."""
    from coop.core.jobs import run_periodic_tasks

    with app.app_context():
        try:
            done = run_periodic_tasks()
            log.info("scheduler round %s", done)
            return done
        except Exception:
            db.session.rollback()
            log.exception("scheduler round failed")
            return None
        finally:
            db.session.remove()


@click.command()
@click.option("--every", default=60, show_default=True, help="seconds between rounds")
@click.option("--rounds", default=0, show_default=True, help="stop after this many (0: never)")
@with_appcontext
def scheduler(every: int, rounds: int) -> None:
    """Run the scheduler round forever (one per deployment is enough; more are harmless)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    done = 0
    while True:
        scheduler_round(app)
        done += 1
        if rounds and done >= rounds:
            return
        time.sleep(every)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """The embedded demo server, with the scheduler round in a background thread."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def rounds() -> None:
        while True:
            time.sleep(60)
            scheduler_round(app)

    threading.Thread(target=rounds, name="coop-scheduler", daemon=True).start()
    click.echo(f"coop is running at http://{host}:{port}/ (Ctrl+C stops it)")
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)
