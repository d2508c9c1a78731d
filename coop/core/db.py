"""Column types every domain uses (aware UTC times and string enums), row locks, and SQLite's
foreign keys turned on."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from sqlalchemy import DateTime, Enum, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from coop.extensions import db


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """SQLite ignores foreign keys (and their ON DELETE rules) unless each connection asks for
    them; without this the embedded default would keep rows PostgreSQL deletes or refuses."""
    # sqlite3 is not imported for it: a process on PostgreSQL never loads it (0.9 MiB).
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database.

    SQLite keeps no time zone, so values are stored as naive UTC and made aware again on the
    way out; a naive value on the way in is a programming error and is refused.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


F = TypeVar("F", bound=Callable[..., Any])


def enum_type(enum_class: type[enum.StrEnum], name: str | None = None) -> Enum:
    """Store a StrEnum by value in a VARCHAR (with a CHECK), portable and easy to migrate.

    ``name`` names the CHECK constraint; give one when a table has two columns of the same enum.
    """
    return Enum(
        enum_class,
        native_enum=False,
        length=30,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=True,
        name=name or enum_class.__name__.lower(),
    )


def render_migration_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column types into migrations as plain SQLAlchemy types, so a migration never
    imports application code (which changes after the migration is written)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def lock_row(obj: Any) -> Any:
    """Lock ``obj``'s row for the rest of the transaction and re-read it.

    ``session.refresh(obj, with_for_update=True)`` cannot be used on objects whose eager joins
    are outer joins (PostgreSQL refuses FOR UPDATE there), so the row is locked by its key alone.
    The lock is FOR NO KEY UPDATE: it orders writers of this row but lets other transactions
    insert rows that refer to it (a foreign key check takes only a key-share lock).
    """
    from sqlalchemy import inspect, select

    mapper = inspect(obj).mapper
    key = mapper.primary_key[0]
    db.session.execute(
        select(key).where(key == getattr(obj, key.key)).with_for_update(key_share=True)
    )
    db.session.refresh(obj)
    return obj


_UNIT_DEPTH = "coop.unit_of_work_depth"


def unit_of_work(service: F) -> F:
    """A state-changing service is one unit of work: its changes commit when it returns and roll
    back when it raises (the exception goes on, for the view to word). Views never commit or
    roll back. A service called inside another's unit of work joins it: only the outermost
    commits or rolls back."""

    @wraps(service)
    def run(*args: Any, **kwargs: Any) -> Any:
        session = db.session()
        depth = session.info.get(_UNIT_DEPTH, 0)
        session.info[_UNIT_DEPTH] = depth + 1
        try:
            result = service(*args, **kwargs)
        except BaseException:
            if depth == 0:
                session.rollback()
            raise
        else:
            if depth == 0:
                session.commit()
            return result
        finally:
            session.info[_UNIT_DEPTH] = depth

    return run  # type: ignore[return-value]
