"""The schema only changes through migrations: they must build exactly what the models say, on
SQLite and PostgreSQL, and go down and up again."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_tables_become_autoincrement_keeping_every_row_with_foreign_keys_on(
    migrated: Flask,
) -> None:
    # 0009 copies every table into an AUTOINCREMENT one. With foreign keys on (as an app may
    # turn them on for its connections), dropping the old tables would cascade-delete the rows
    # that refer to them, unless migrating turns them off (migrations/env.py).
    from sqlalchemy import event, select

    from coop.accounts.models import LoginToken, User

    downgrade(directory=str(MIGRATIONS), revision="0008")

    def foreign_keys_on(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA foreign_keys=ON")

    db.session.remove()
    db.engine.dispose()
    event.listen(db.engine, "connect", foreign_keys_on)
    try:
        # Rows as the schema of 0008 has them (the models follow the newest schema).
        with db.engine.begin() as connection:
            for n in range(1, 4):
                connection.execute(
                    text(
                        "INSERT INTO users (id, email, name, role, language, is_active_account,"
                        " created_at) VALUES (:id, :email, :name, 'resident', 'nl', 1,"
                        " '2026-12-01 10:00:00')"
                    ),
                    {"id": n, "email": f"r{n}@example.nl", "name": f"Resident {n}"},
                )
                connection.execute(
                    text(
                        "INSERT INTO login_tokens (user_id, purpose, nonce, created_at,"
                        " expires_at) VALUES (:id, 'login', :nonce, '2026-12-01 10:00:00',"
                        " '2026-12-02 10:00:00')"
                    ),
                    {"id": n, "nonce": f"nonce-{n}"},
                )
            before = connection.execute(text("SELECT id, user_id FROM login_tokens")).all()
        assert len(before) == 3

        upgrade(directory=str(MIGRATIONS))
        assert db.session.execute(select(LoginToken.id, LoginToken.user_id)).all() == before
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # The last resident goes; the next one does not get their id.
        last = max(u.id for u in db.session.scalars(select(User)))
        db.session.delete(db.session.get(User, last))
        db.session.commit()
        newcomer = User(email="new@example.nl", name="Newcomer")
        db.session.add(newcomer)
        db.session.commit()
        assert newcomer.id == last + 1
    finally:
        db.session.remove()
        event.remove(db.engine, "connect", foreign_keys_on)
        db.engine.dispose()
