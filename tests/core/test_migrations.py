"""The schema only changes through migrations: they must build exactly what the models say, on
SQLite and PostgreSQL, and go down and up again."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from coop.extensions import db
from tests.conftest import ROOT

MIGRATIONS = ROOT / "migrations"


def schema_diff() -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, db.metadata))


def current_revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS))
    heads = script.get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}; merge them"
    return heads[0]


@pytest.fixture
def migrated(app: Flask) -> Iterator[Flask]:
    """An app context; the schema is at head again afterwards, whatever the test did (on
    PostgreSQL the database is shared by the whole run and is not migrated again)."""
    with app.app_context():
        db.session.remove()  # no open transaction may hold a lock on a table we drop
        try:
            yield app
        finally:
            db.session.remove()
            upgrade(directory=str(MIGRATIONS))


def test_migrations_build_exactly_the_models(migrated: Flask) -> None:
    assert current_revision() == head_revision()
    assert schema_diff() == []


def test_downgrade_to_base_and_upgrade_again(migrated: Flask) -> None:
    tables = {t.name for t in db.metadata.sorted_tables}
    assert tables <= set(inspect(db.engine).get_table_names())

    downgrade(directory=str(MIGRATIONS), revision="base")
    left = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    assert current_revision() is None

    upgrade(directory=str(MIGRATIONS))
    assert current_revision() == head_revision()
    assert schema_diff() == []


def test_migrations_do_not_import_application_code() -> None:
    # A migration runs against the code of the day it is applied, not the day it was written.
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+coop\b", source, re.MULTILINE), path.name


def test_running_migrations_keeps_the_apps_loggers(migrated: Flask) -> None:
    # env.py configures logging from alembic.ini; that must not silence coop's own loggers
    # (the outbox logs failed jobs there) in a process that migrates, such as the test run.
    jobs_log = logging.getLogger("coop.core.jobs")
    upgrade(directory=str(MIGRATIONS))
    assert not jobs_log.disabled


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_tables_never_give_an_id_twice(migrated: Flask) -> None:
    # Without AUTOINCREMENT SQLite gives a new row the id of a deleted last row, and keys made
    # of ids ("login-link:<id>", Stripe idempotency keys) would repeat. A new table's migration
    # passes sqlite_autoincrement=True to create_table, as the models do.
    with db.engine.connect() as connection:
        tables = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        ).all()
    inspector = inspect(db.engine)
    with_id = [
        (name, sql)
        for name, sql in tables
        if not name.startswith("sqlite_")
        and inspector.get_pk_constraint(name)["constrained_columns"] == ["id"]
    ]
    assert len(with_id) > 40
    assert [name for name, sql in with_id if "AUTOINCREMENT" not in sql] == []
