"""A closed action whose homes were matched and ordered, built through the services: the world
of the installer's portal and the resident's pages.

Two installers work in the action: Dakwerk Lunetten takes the roofs of 3521 (one order, three
households in two streets), Warmte en Dak Utrecht those of 3524 (one order, two households).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from coop.accounts.models import Role, User
from coop.actions import services as actions
from coop.actions.models import Action
from coop.core import jobs
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders import fieldwork, services
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import Order, OrderLine, Quote, RunTrigger
from coop.registrations.models import Registration
from tests import factories
from tests.login import sign_in


@dataclass
class World:
    action: int
    staff: int
    installer_x: int  # Dakwerk Lunetten
    installer_y: int  # Warmte en Dak Utrecht
    user_x: int
    user_y: int
    order_x: int
    order_y: int
    # household registration ids in street order: Amstellaan 5, Vondellaan 1, Vondellaan 2
    registrations_x: list[int]
    registrations_y: list[int]

    def line_of(self, registration_id: int) -> OrderLine:
        line = db.session.scalar(
            select(OrderLine).where(
                OrderLine.registration_id == registration_id, OrderLine.current.is_(True)
            )
        )
        assert line is not None
        return line

    def user(self, user_id: int) -> User:
        user = db.session.get(User, user_id)
        assert user is not None
        return user

    def resident_of(self, registration_id: int) -> User:
        registration = db.session.get(Registration, registration_id)
        assert registration is not None
        return registration.user

    def order(self, order_id: int) -> Order:
        order = db.session.get(Order, order_id)
        assert order is not None
        return order


def build(now: datetime | None = None) -> World:
    """Call inside an app context; the orders are sent at ``now`` (default: now)."""
    org = factories.organisation()
    act: Action = factories.action(org)
    x: Installer = factories.installer(
        org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)}
    )
    y: Installer = factories.installer(
        org, "Warmte en Dak Utrecht", area="3524", offers={"roof": (4500, 5)}
    )
    # No passwords (tests log in with ``act_as``): hashing one costs a tenth of a second.
    staff = User(email="staff@example.nl", name="Sanne Staff", role=Role.STAFF, organisation=org)
    user_x = User(
        email="fitter@dakwerk-lunetten.example",
        name="Fatima Fitter",
        role=Role.INSTALLER,
        installer_id=x.id,
    )
    user_y = User(
        email="planner@warmte-en-dak.example",
        name="Bas Planner",
        role=Role.INSTALLER,
        installer_id=y.id,
    )
    db.session.add_all([staff, user_x, user_y])
    # Registered out of street order, on purpose.
    vondel_2 = factories.confirmed_registration(
        act, postcode="3521 AB", street="Vondellaan", number=2, name="Vera Vondel"
    )
    amstel_5 = factories.confirmed_registration(
        act, postcode="3521 AB", street="Amstellaan", number=5, name="Aart Amstel"
    )
    vondel_1 = factories.confirmed_registration(
        act, postcode="3521 AB", street="Vondellaan", number=1, name="Vic Vondel"
    )
    hondsrug = [
        factories.confirmed_registration(
            act, postcode="3524 BA", street="Hondsrug", number=n, name=f"Hans Hondsrug {n}"
        )
        for n in (3, 4)
    ]
    for registration in (vondel_2, amstel_5, vondel_1, *hondsrug):
        registration.user.phone = "06 12345678"
    db.session.commit()
    now = now or utcnow()
    actions.close_action(staff, act, now=now)
    run = services.start_run(staff, act, RunTrigger.STAFF, use_registry_prices=True, now=now)
    assert services.compute_run(run.id) == "proposed"
    orders = {o.installer_id: o for o in services.approve_run(staff, run, now=now)}
    jobs.dispatcher().run_pending()  # the "assigned" and "new order" emails
    return World(
        action=act.id,
        staff=staff.id,
        installer_x=x.id,
        installer_y=y.id,
        user_x=user_x.id,
        user_y=user_y.id,
        order_x=orders[x.id].id,
        order_y=orders[y.id].id,
        registrations_x=[amstel_5.id, vondel_1.id, vondel_2.id],
        registrations_y=[r.id for r in hondsrug],
    )


# --- moving a household on, through the services (for tests of later steps) --------------------


def local(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=AMSTERDAM)


def quote_sent(world: World, registration_id: int, *, now: datetime | None = None) -> Quote:
    """The order accepted and a quote of two rows sent to this household."""
    now = now or utcnow()
    line = world.line_of(registration_id)
    installer = world.user(
        world.user_x if line.order.installer_id == world.installer_x else world.user_y
    )
    if line.order.status.value == "sent":
        services.accept_order(installer, line.order, now=now)
    return fieldwork.send_quote(
        installer,
        line,
        [
            QuoteItemInput("Dakisolatie 40 m²", 40, 4000, 9),
            QuoteItemInput("Steiger", 1, 25000, 21),
        ],
        valid_until=(now + timedelta(days=14)).astimezone(AMSTERDAM).date(),
        now=now,
    )


def act_as(client: FlaskClient, user_id: int | None) -> None:
    """Log in without a password round (the login itself is tested elsewhere)."""
    sign_in(client, user_id)


def run_jobs() -> None:
    jobs.dispatcher().run_pending()


def ids(values: Any) -> list[int]:
    return [value.id for value in values]
