"""SQLite enforces foreign keys (coop turns them on per connection), and migrating does not
trip over them: a batch migration rebuilds a table by dropping the old one, which with foreign
keys on would delete the rows of every table referring to it."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from coop.extensions import db
from coop.orders.models import OrderLine, Quote, Review, SiteSurvey
from coop.registrations.models import StatusChange
from tests.conftest import ROOT
from tests.registrations.household_world import build


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL always enforces foreign keys")
    return app


def counts() -> dict[str, int]:
    return {
        model.__name__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (OrderLine, Quote, SiteSurvey, Review, StatusChange)
    }


def test_a_row_pointing_nowhere_is_refused(sqlite_app: Flask) -> None:
    with sqlite_app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.session.add(StatusChange(registration_id=999_999, to_status="confirmed"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_migrating_down_and_up_keeps_the_rows_that_refer_to_a_rebuilt_table(
    sqlite_app: Flask,
) -> None:
    with sqlite_app.test_request_context():
        build()
        before = counts()
        assert before["Quote"] and before["SiteSurvey"] and before["Review"]
        db.session.remove()
        downgrade(directory=str(ROOT / "migrations"), revision="0008")
        upgrade(directory=str(ROOT / "migrations"))
        assert counts() == before
        # And the connection the migration used has its foreign keys back on.
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
