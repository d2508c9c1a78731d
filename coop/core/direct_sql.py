"""A few statements run on psycopg's connection directly, without SQLAlchemy's execution.

A mass mailing runs four statements per email (the outbox row's lock, the delivery's read, its
outcome with the row done, the commit). Through SQLAlchemy each cost about three times what
psycopg alone costs (an execution context, a result object, the session's transaction), and
together they were three fifths of the worker's CPU per email. ``execution`` runs these here
while a sender works through its share of a chunk on PostgreSQL, on the same connection and in
the same transaction as the session's statements; everywhere else (SQLite, a lone job) they go
through the session as before.

The statements are still built with SQLAlchemy; here they are compiled once to their SQL text,
and each value and column is converted by its type's own processors, as SQLAlchemy's execution
converts them (``coop.core.db``'s ``UTCDateTime`` and enums by value among them).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler


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
        dialect = connection.dialect
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        binds = compiled.bind_names.items()
        self.processors: dict[str, Callable[[Any], Any]] = {
            name: processor
            for bind, name in binds
            if (processor := bind.type.bind_processor(dialect)) is not None
        }
        self.required = frozenset(name for bind, name in binds if bind.required)
        # Values given in the statement itself (a literal, a constant in .values()); the names
        # given at execution are the statement's own bind parameters.
        self.constants = self._converted(compiled.params)
        self.converters: list[Callable[[Any], Any] | None] = []
        self.row_type: type[tuple[Any, ...]] | None = None
        if isinstance(statement, Select):
            columns = list(statement.selected_columns)
            self.converters = [column.type.result_processor(dialect, None) for column in columns]
            self.row_type = namedtuple(  # type: ignore[misc]
                "Row", [str(column.key) for column in columns], rename=True
            )

    def _converted(self, params: Mapping[str, Any]) -> dict[str, Any]:
        processors = self.processors
        return {
            name: value if (process := processors.get(name)) is None else process(value)
            for name, value in params.items()
        }

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        if not self.required.issubset(params):
            raise KeyError(f"values missing for {sorted(self.required.difference(params))}")
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        values = {**self.constants, **self._converted(params)}
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
