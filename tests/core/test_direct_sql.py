"""Statements run on psycopg's connection directly (``coop.core.direct_sql``): the same rows
and values as through SQLAlchemy, the same conversions as coop's column types, and refused
rather than guessed where a value is of another kind. PostgreSQL only (SQLite never runs them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import (
    Connection,
    Numeric,
    Select,
    bindparam,
    event,
    literal_column,
    select,
    update,
)

from coop.core import direct_sql, jobs
from coop.core.execution import _DONE, _LOCK, _LOCK_RELAXED, _OUTBOX
from coop.core.models import JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db


@pytest.fixture
def connection(ctx: Flask) -> Iterator[Connection]:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("run directly on PostgreSQL only")
    with db.engine.connect() as connection:
        yield connection
        connection.rollback()


def driver(connection: Connection) -> Any:
    return connection.connection.driver_connection


def pending_job(run_after: datetime) -> int:
    row = OutboxJob(name="tests.direct", key=f"direct:{run_after.isoformat()}", args={"a": [1]})
    row.run_after = run_after
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.mark.parametrize("statement", [_LOCK, _LOCK_RELAXED])
def test_a_row_read_directly_is_the_row_sqlalchemy_reads(
    connection: Connection, statement: Any
) -> None:
    due = datetime(2027, 1, 13, 9, 30, 15, 123456, tzinfo=UTC)
    job_id = pending_job(due)

    direct = direct_sql.compiled(statement, connection).first(connection, {"job_id": job_id})
    driver(connection).rollback()
    through_sqlalchemy = connection.execute(statement, {"job_id": job_id}).first()
    connection.rollback()
    assert through_sqlalchemy is not None

    assert tuple(direct) == tuple(through_sqlalchemy)
    assert direct.status is JobStatus.PENDING
    assert direct.run_after == due and direct.run_after.tzinfo is not None
    assert direct.args == {"a": [1]}
    assert direct.name == "tests.direct"
    assert direct_sql.compiled(_LOCK, connection).first(connection, {"job_id": -1}) is None


def test_a_write_directly_converts_as_the_column_types_do(connection: Connection) -> None:
    job_id = pending_job(utcnow())
    finished = datetime(2027, 1, 13, 10, 0, tzinfo=UTC) + timedelta(hours=1)

    direct_sql.compiled(_DONE, connection).execute(
        connection, {"job_id": job_id, "done_at": finished}
    )
    # SQLAlchemy's connection began no transaction of its own: the driver's is committed.
    driver(connection).commit()

    db.session.expire_all()
    row = db.session.get(OutboxJob, job_id)
    assert row is not None
    assert row.status is JobStatus.DONE  # the constant in the statement, by its value
    assert row.finished_at == finished  # given aware, stored as UTC
    assert row.attempts == 1 and row.last_error is None


def test_values_are_converted_and_refused_by_their_own_types(connection: Connection) -> None:
    """Each value and column goes through its type's processors, as through SQLAlchemy: coop's
    types refuse what they refuse there, any other type converts as it converts there."""
    done = direct_sql.compiled(_DONE, connection)
    with pytest.raises(KeyError, match="done_at"):
        done.execute(connection, {"job_id": 1})
    with pytest.raises(ValueError, match="aware"):  # UTCDateTime's own refusal
        done.execute(connection, {"job_id": 1, "done_at": datetime(2027, 1, 13)})
    new_status = update(_OUTBOX).values(status=bindparam("new_status", type_=_OUTBOX.c.status.type))
    with pytest.raises(LookupError, match="no-such-status"):  # the enum's own refusal
        direct_sql.compiled(new_status, connection).execute(
            connection, {"new_status": "no-such-status"}
        )
    amount = select(bindparam("amount", type_=Numeric(10, 2)).label("amount"))
    direct = direct_sql.compiled(amount, connection).first(connection, {"amount": Decimal("12.5")})
    through_sqlalchemy = connection.execute(amount, {"amount": Decimal("12.5")}).first()
    assert through_sqlalchemy is not None
    assert tuple(direct) == tuple(through_sqlalchemy) == (Decimal("12.50"),)


def test_listeners_to_the_engine_see_a_direct_statement(connection: Connection) -> None:
    """As Flask-SQLAlchemy's query recording listens: a start time noted on the context before,
    the statement and its values read from it after."""
    seen: list[tuple[str, Any, float]] = []

    def before(_conn: Any, _cursor: Any, _sql: str, _values: Any, context: Any, *_: Any) -> None:
        context.started = 1.5

    def after(_conn: Any, _cursor: Any, _sql: str, _values: Any, context: Any, *_: Any) -> None:
        seen.append((context.statement, context.parameters, context.started))

    statement: Select[Any] = select(literal_column("1").label("one"))
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        assert jobs.first_row(statement, {}) is not None  # outside a share: the session's
        assert direct_sql.compiled(_LOCK, connection).first(connection, {"job_id": 7}) is None
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
    assert len(seen) == 2
    assert "FOR UPDATE SKIP LOCKED" in seen[1][0]
    assert seen[1][1:] == ({"job_id": 7}, 1.5)


@pytest.mark.parametrize("threshold", [None, 5])
def test_statements_are_prepared_only_as_the_connection_prepares_them(
    connection: Connection, threshold: int | None
) -> None:
    """``DATABASE_NO_PREPARED_STATEMENTS`` (PgBouncer before 1.21 in transaction mode) sets
    psycopg's threshold to None: a direct statement must not prepare itself then."""
    driver(connection).prepare_threshold = threshold
    lock = direct_sql.compiled(_LOCK, connection)
    for _ in range(8):
        lock.first(connection, {"job_id": -1})
    prepared = driver(connection).execute("SELECT count(*) FROM pg_prepared_statements")
    assert prepared.fetchone()[0] == (0 if threshold is None else 1)
