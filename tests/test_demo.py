"""`make run` seeds the demo: it works on an empty database, and the installer's portal has its
story (orders to answer, declined and accepted with households at every step, a tender)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from coop.accounts.models import User
from coop.demo import DEMO_ORDER_INSTALLER, seed_demo
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import Order
from coop.orders.planning import work_of


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The embedded default, as ``make run`` uses it."""
    path = tmp_path / "coop.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def test_the_demo_seeds_orders_at_every_step(ctx: Flask) -> None:
    logins = seed_demo(registrations=30)
    assert logins is not None and len(logins) == 7
    # The desk's employee is its admin: the team and the audit log are in the menu.
    role, email, _password = logins[0]
    employee = db.session.scalars(select(User).where(User.email == email)).one()
    assert role == "desk admin" and employee.is_staff and employee.is_desk_admin
    installer = db.session.scalars(
        select(Installer).where(Installer.company_name == DEMO_ORDER_INSTALLER)
    ).one()
    orders = db.session.scalars(select(Order).where(Order.installer_id == installer.id)).all()
    assert sorted(o.status.value for o in orders) == ["accepted", "declined", "sent"]
    [accepted] = [o for o in orders if o.status.value == "accepted"]
    assert {line.status.value for line in accepted.lines} >= {
        "assigned",
        "survey_planned",
        "quoted",
        "accepted",
        "installed",
        "completed",
        "declined",
    }
    work = work_of(installer)
    assert len(work.invitations) == 1 and all(item.anything for item in work.orders)
    assert seed_demo() is None  # only into an empty database
