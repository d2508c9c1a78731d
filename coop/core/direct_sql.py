"""A few statements run on psycopg's connection directly, without SQLAlchemy's execution.

A mass mailing runs four statements per email (the outbox row's lock, the delivery's read, its
outcome with the row done, the commit). Through SQLAlchemy each cost about three times what
psycopg alone costs (an execution context, a result object, the session's transaction), and
together they were three fifths of the worker's CPU per email. ``execution`` runs these here
while a sender works through its share of a chunk on PostgreSQL, on the same connection and in
the same transaction as the session's statements; everywhere else (SQLite, a lone job) they go
through the session as before.

The statements are still built with SQLAlchemy; here they are compiled once to their SQL text,
and their values converted as coop's column types convert them (``coop.core.db``): an enum by
its value, an aware time as naive UTC on the way in and aware again on the way out. A value or
column of another type is refused when the statement is compiled, not guessed at.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Enum, Integer, String, Text
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import JSON, Boolean, NullType, TypeEngine

from coop.core.db import UTCDateTime


def _to_database(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)
    if value is None or isinstance(value, str | int | bool):
        return value
    raise TypeError(f"no direct conversion for {type(value).__name__}")


def _from_database(column_type: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UTCDateTime):
        return lambda value: None if value is None else value.replace(tzinfo=UTC)
    if isinstance(column_type, Enum) and column_type.enum_class is not None:
        enum_class = column_type.enum_class
        return lambda value: None if value is None else enum_class(value)
    if isinstance(column_type, String | Text | Integer | Boolean | JSON | NullType):
        # psycopg gives it as the session would (JSON as dicts and lists; NullType: a
        # literal column such as set_config's, whose value nobody reads).
        return None
    raise TypeError(f"no direct conversion for a {type(column_type).__name__} column")


@dataclass
class ListenersContext:
    """What listeners to the engine's statements read of SQLAlchemy's execution context (and
    note on it, such as a start time), for a statement run directly."""

    connection: Connection
    cursor: Any
    statement: str
    parameters: Mapping[str, Any]
    executemany: bool = False


class DirectStatement:
    """One statement compiled for psycopg (``%(name)s`` parameters), with its literal values."""

    def __init__(self, statement: ClauseElement, connection: Connection) -> None:
        compiled = statement.compile(dialect=connection.dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        # Values given in the statement itself (a literal, a constant in .values()); the names
        # given at execution are the statement's own bind parameters.
        self.constants = {name: _to_database(value) for name, value in compiled.params.items()}
        self.required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        self.converters: list[Callable[[Any], Any] | None] = []
        self.row_type: type[tuple[Any, ...]] | None = None
        if isinstance(statement, Select):
            columns = list(statement.selected_columns)
            self.converters = [_from_database(column.type) for column in columns]
            self.row_type = namedtuple(  # type: ignore[misc]
                "Row", [str(column.key) for column in columns], rename=True
            )

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        if not self.required.issubset(params):
            raise KeyError(f"values missing for {sorted(self.required.difference(params))}")
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        values = {**self.constants, **{k: _to_database(v) for k, v in params.items()}}
        # Seen by whatever listens to the engine's statements (logging, tracing, the tests that
        # count them, Flask-SQLAlchemy's query recording) as a statement SQLAlchemy ran.
        dispatch = connection.dispatch
        context = None
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            context = ListenersContext(connection, cursor, self.sql, values)
            dispatch.before_cursor_execute(connection, cursor, self.sql, values, context, False)
        # Prepared as the connection prepares (after a few runs; never with
        # DATABASE_NO_PREPARED_STATEMENTS, behind an older PgBouncer).
        cursor.execute(self.sql, values)
        if context is not None:
            dispatch.after_cursor_execute(connection, cursor, self.sql, values, context, False)
        return cursor

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """The first row, its columns converted and named as SQLAlchemy's row names them."""
        assert self.row_type is not None, "first() of a statement that selects nothing"
        found = self.execute(connection, params).fetchone()
        if found is None:
            return None
        return self.row_type(
            *(
                value if convert is None else convert(value)
                for value, convert in zip(found, self.converters, strict=True)
            )
        )


_compiled: dict[int, tuple[ClauseElement, DirectStatement]] = {}


def compiled(statement: ClauseElement, connection: Connection) -> DirectStatement:
    """``statement`` compiled once (statements are built once, at import or memoized)."""
    found = _compiled.get(id(statement))
    if found is None or found[0] is not statement:
        found = (statement, DirectStatement(statement, connection))
        _compiled[id(statement)] = found
    return found[1]
