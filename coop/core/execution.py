"""Running outbox rows: one (``execute``), or a chunk of them (``execute_chunk``), each row
locked, done and committed on its own, so that running a row twice does its work once. A large
chunk is shared out over sender threads (see ``execute_chunk``)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine, bindparam, literal_column, select, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, Update

from coop.core import direct_sql
from coop.core.models import JobStatus, OutboxJob
from coop.core.outbox import _after_batch, _give_up, _handlers
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


# A job's own statements, in plain SQL on the table and built once: an email's whole job is a
# few milliseconds, and the ORM's unit of work around this one row cost a third of it.
_OUTBOX = OutboxJob.__table__
_LOCK = (
    select(_OUTBOX.c.status, _OUTBOX.c.run_after, _OUTBOX.c.name, _OUTBOX.c.key, _OUTBOX.c.args)
    .where(_OUTBOX.c.id == bindparam("job_id"))
    .with_for_update(skip_locked=True)
)
# SET LOCAL in the same round trip as the lock (set_config(..., true) is SET LOCAL).
_LOCK_RELAXED = _LOCK.add_columns(literal_column("set_config('synchronous_commit', 'off', true)"))
_DONE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("job_id"))
    .values(
        status=JobStatus.DONE,
        attempts=_OUTBOX.c.attempts + 1,
        finished_at=bindparam("done_at", type_=_OUTBOX.c.finished_at.type),
        last_error=None,
    )
)


# The writes a running job left for its end (``write_with_done``); None outside a job.
_writes_at_done: contextvars.ContextVar[list[tuple[Insert | Update, dict[str, Any]]] | None] = (
    contextvars.ContextVar("coop_writes_at_done", default=None)
)
_done_statements: dict[tuple[Insert | Update, ...], Update] = {}


def write_with_done(statement: Insert | Update, params: dict[str, Any]) -> None:
    """A write that records a job's outcome and needs nothing back (an email's log row, a
    delivery's status): sent with the job's row marked done, in one statement on PostgreSQL
    (data-modifying CTEs), so that each costs no round trip of its own. The job's transaction
    is the same either way: it commits all, or none if the job fails.

    What such writes must be: each names its parameters apart from the others'
    (``log_status``, not ``status``); each changes rows no other write of the job changes
    (PostgreSQL makes only one of two changes of a row in one statement); none needs to see
    another's effect (they run on one snapshot). Outside an outbox job (a job function called
    directly) it is executed at once.
    """
    pending = _writes_at_done.get()
    if pending is None:
        db.session.execute(statement, params)
    else:
        pending.append((statement, params))


# The database connection of the sender running this thread's share of a chunk, on PostgreSQL:
# the outbox's own statements and a handler's ``first_row`` run on its psycopg connection
# directly (``coop.core.direct_sql``). None elsewhere: through the session.
_share_connection: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "coop_share_connection", default=None
)


def first_row(statement: Select[Any], params: dict[str, Any]) -> Any:
    """``db.session.execute(statement, params).first()``, in the job's transaction; while a
    sender runs its share of a chunk on PostgreSQL, without SQLAlchemy's execution (a row per
    email of a mass mailing). Columns of coop's own types only (see ``coop.core.direct_sql``)."""
    connection = _share_connection.get()
    if connection is None:
        return db.session.execute(statement, params).first()
    return direct_sql.compiled(statement, connection).first(connection, params)


def _write(statement: Update | Insert, params: dict[str, Any]) -> None:
    connection = _share_connection.get()
    if connection is None:
        db.session.execute(statement, params)
    else:
        direct_sql.compiled(statement, connection).execute(connection, params)


def _commit() -> None:
    connection = _share_connection.get()
    if connection is None or db.session().in_transaction():
        # Also what ran directly: one connection, one transaction.
        db.session.commit()
    else:
        connection.connection.driver_connection.commit()  # type: ignore[union-attr]


def _rollback() -> None:
    db.session.rollback()
    connection = _share_connection.get()
    if connection is None or connection.invalidated:
        return
    driver = connection.connection.driver_connection
    try:
        driver.rollback()  # type: ignore[union-attr]
    except Exception:
        log.warning("database connection lost; it is opened again for the next row")
    if driver.closed or driver.broken:  # type: ignore[union-attr]
        # Opened anew on its next use, as SQLAlchemy does with a connection it saw break.
        connection.invalidate()


def _mark_done(job_id: int, writes: list[tuple[Insert | Update, dict[str, Any]]]) -> None:
    params: dict[str, Any] = {"job_id": job_id, "done_at": utcnow()}
    combined = bool(writes) and db.session.get_bind().dialect.name == "postgresql"
    for _, values in writes:
        combined = combined and params.keys().isdisjoint(values)
        params |= values
    if not combined:
        # SQLite has no INSERT or UPDATE in a WITH; two writes with the same parameter names
        # are sent one by one too.
        for statement, values in writes:
            _write(statement, values)
        _write(_DONE, {"job_id": job_id, "done_at": params["done_at"]})
        return
    statements = tuple(statement for statement, _ in writes)
    done = _done_statements.get(statements)
    if done is None:
        done = _DONE
        for number, statement in enumerate(statements):
            done = done.add_cte(statement.cte(f"write_{number}"))
        _done_statements[statements] = done
    _write(done, params)


def execute(job_id: int) -> str:
    """Run one outbox job if it is still pending; return what happened (for logs and tests)."""
    outcome, name, args = _execute(job_id)
    if name is not None and args is not None:
        _run_after_batch({name: [args]})
    return outcome


def _execute(
    job_id: int, *, flush_later: bool = False
) -> tuple[str, str | None, dict[str, Any] | None]:
    """``execute`` without the after-batch work: (outcome, name and args of a job done).

    ``flush_later``: on PostgreSQL, the job's commit does not wait for its write-ahead log to
    reach the disk (``SET LOCAL synchronous_commit TO OFF``; see ``execute_chunk``)."""
    now = utcnow()
    try:
        row = first_row(_LOCK_RELAXED if flush_later else _LOCK, {"job_id": job_id})
    except Exception:
        _rollback()
        raise
    if row is None:
        _rollback()
        return "busy", None, None  # another worker holds it (or it never existed)
    if row.status is not JobStatus.PENDING:
        _rollback()
        return "already-" + row.status.value, None, None
    if row.run_after > now:
        _rollback()
        return "not-due", None, None
    name, key = row.name, row.key
    handler = _handlers[name]
    args = dict(row.args)
    writes: list[tuple[Insert | Update, dict[str, Any]]] = []
    try:
        # The handler's writes only: what runs after it (a give-up hook) writes at once.
        pending = _writes_at_done.set(writes)
        try:
            handler(**args)
        finally:
            _writes_at_done.reset(pending)
        _mark_done(job_id, writes)
        _commit()
    except Exception as exc:
        _rollback()
        _record_failure(job_id, exc)
        raise
    # Debug: a mass mailing's rows are each an "email sent" line already.
    log.debug("job done id=%s name=%s key=%s", job_id, name, key)
    return "done", name, args


def _run_after_batch(done: dict[str, list[dict[str, Any]]]) -> None:
    for name, batch in done.items():
        hook = _after_batch.get(name)
        if hook is None or not batch:
            continue
        try:
            hook(batch)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("after-batch work of %d %s job(s) failed", len(batch), name)


def _record_failure(job_id: int, exc: Exception) -> None:
    row = db.session.get(OutboxJob, job_id)
    if row is None:
        return
    row.attempts += 1
    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    gave_up = row.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]
    if gave_up:
        row.status = JobStatus.FAILED
        log.error("job failed for good id=%s name=%s: %s", job_id, row.name, row.last_error)
    name, args, error = row.name, dict(row.args), row.last_error or ""
    db.session.commit()
    if gave_up and name in _give_up:
        try:
            _give_up[name](error=error, **args)
        except Exception:
            db.session.rollback()
            log.exception("giving up on job %s failed", job_id)


_chunk_memo: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "coop_chunk_memo", default=None
)
_several_rows: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "coop_several_rows", default=False
)


def one_line_per_row() -> bool:
    """Whether a row's work logs its own line at INFO: not in a chunk of several rows (a mass
    mailing), whose outcome is one line (``execute_chunk``); a line per email was a twentieth of
    the worker's CPU, and every message is in ``email_log`` anyway."""
    return not _several_rows.get()


def chunk_memo() -> dict[Any, Any]:
    """A dict that lives as long as the chunk being run: what every row of a chunk would load
    or render alike (an update's text, rendered once per language) is kept here for the next
    rows. Outside a chunk (a lone job), a fresh dict each time: nothing is kept."""
    memo = _chunk_memo.get()
    return {} if memo is None else memo


class ChunkError(Exception):
    """Some jobs of a chunk failed (each row has its error and attempt); RQ retries the chunk,
    whose finished rows then cost one look each."""


def _unreachable(exc: BaseException) -> bool:
    return bool(getattr(exc, "unreachable", False))


def execute_chunk(job_ids: Sequence[int]) -> dict[str, int]:
    """Run the rows of one chunk, each in its own transaction (a killed worker loses at most the
    row in flight of each sender); returns how many ended how.

    A row that fails does not stop the others (a refused or greylisted address concerns that
    message only), except when the mail server cannot be reached: then the rest waits for the
    chunk's retry without an attempt counted, instead of each waiting out the timeout.

    On PostgreSQL a chunk of at least ``MIN_SHARE`` rows per sender is shared out over
    ``OUTBOX_SENDERS`` threads: an email is mostly waiting, for the database and for the mail
    server, and one sender alone left both idle most of the time. Each sender runs its rows
    one after the other as before, in an application context, database session and SMTP
    connection of its own; the after-batch work runs once all are done.
    """
    shares = _shares(job_ids)
    results = [_Share() for _ in shares]
    try:
        if len(shares) == 1:
            _run_share(job_ids, results[0])
        else:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            pool = _sender_pool(len(shares))
            futures = [
                pool.submit(_run_share_in, app, share, result)
                for share, result in zip(shares, results, strict=True)
            ]
            wait(futures)  # every sender has stopped before anything is said of the chunk
            for future in futures:
                future.result()
    finally:
        done: dict[str, list[dict[str, Any]]] = {}
        for result in results:
            for name, batch in result.done.items():
                done.setdefault(name, []).extend(batch)
        _run_after_batch(done)
    outcomes: dict[str, int] = {}
    failed = [job_id for result in results for job_id in result.failed]
    for result in results:
        for outcome, count in result.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    if len(job_ids) > 1:
        log.info("chunk of %d row(s) run: %s", len(job_ids), outcomes)
    if failed:
        raise ChunkError(f"{len(failed)} of {len(job_ids)} job(s) failed: {failed[:20]}")
    return outcomes


@dataclass
class _Share:
    """What one sender did with its rows, as it goes (kept when it stops midway)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)
    done: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


# A sender gets at least this many rows of a chunk: fewer are not worth a thread.
MIN_SHARE = 10


def _shares(job_ids: Sequence[int]) -> list[Sequence[int]]:
    senders = min(int(current_app.config.get("OUTBOX_SENDERS", 1)), len(job_ids) // MIN_SHARE)
    if senders <= 1 or db.session.get_bind().dialect.name != "postgresql":
        return [job_ids]
    return [job_ids[start::senders] for start in range(senders)]


def _run_share(job_ids: Sequence[int], result: _Share) -> None:
    memo = _chunk_memo.set({})
    several = _several_rows.set(len(job_ids) > 1)
    try:
        with _one_connection(len(job_ids) > 1):
            for position, job_id in enumerate(job_ids):
                if not _execute_one(
                    job_id, position, job_ids, result.outcomes, result.failed, result.done
                ):
                    break
    finally:
        _several_rows.reset(several)
        _chunk_memo.reset(memo)


class _ConnectionSession(FlaskSession):
    """A session on the connection it was given: Flask-SQLAlchemy's own picks the engine by the
    table's bind key, and so took a connection from the pool for every transaction."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine | Connection:
        assert self.bind is not None
        return self.bind


@contextlib.contextmanager
def _one_connection(wanted: bool) -> Iterator[None]:
    """The rows of a share in transactions on one database connection (PostgreSQL): taken from
    the pool, and pinged (``pool_pre_ping``), once for the share instead of before every row,
    which was a round trip to the database for each email. ``db.session`` is a session bound to
    that connection meanwhile; a connection lost midway is opened anew on its next use."""
    if not wanted or db.engine.dialect.name != "postgresql":
        yield
        return
    registry = db.session.registry
    before = registry() if registry.has() else None
    with db.engine.connect() as connection:
        session = _ConnectionSession(db, bind=connection)
        registry.set(session)
        direct = _share_connection.set(connection)
        try:
            yield
        finally:
            _share_connection.reset(direct)
            session.close()
            if before is None:
                registry.clear()
            else:
                registry.set(before)


def _run_share_in(app: Flask, job_ids: Sequence[int], result: _Share) -> None:
    with app.app_context():
        try:
            _run_share(job_ids, result)
        finally:
            db.session.remove()


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _sender_pool(size: int) -> ThreadPoolExecutor:
    """The worker's sender threads, kept for its life: each keeps its SMTP connection (a
    thread's own, see ``coop.core.mail``) between chunks. A larger size asked (a changed
    setting) makes a new pool; the old one's threads end once idle."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] < size:
            if _pool is not None:
                _pool[1].shutdown(wait=False)
            _pool = (size, ThreadPoolExecutor(max_workers=size, thread_name_prefix="outbox-sender"))
        return _pool[1]


def _execute_one(
    job_id: int,
    position: int,
    job_ids: Sequence[int],
    outcomes: dict[str, int],
    failed: list[int],
    done: dict[str, list[dict[str, Any]]],
) -> bool:
    """One row of a chunk; False when the rest of the chunk should wait."""
    try:
        outcome, name, args = _execute(
            job_id, flush_later=position < len(job_ids) - 1 and _flush_later()
        )
    except Exception as exc:
        failed.append(job_id)
        if _unreachable(exc):
            waiting = len(job_ids) - position - 1
            log.warning("mail server unreachable: %d job(s) of the chunk wait", waiting)
            outcomes["waiting"] = waiting
            return False
        return True
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if name is not None and args is not None:
        done.setdefault(name, []).append(args)
    return True


def _flush_later() -> bool:
    """Whether the rows of a chunk but its last commit without waiting for the disk.

    A commit on PostgreSQL waits until its write-ahead log is on disk (fsync): 4-5 ms on the
    shared development machine, more than the rest of an email's work. The rows of a chunk but
    the last commit without that wait (``OUTBOX_FLUSH_LATER``, on by default): the commit is
    made and seen by every other connection at once, only its durability waits for PostgreSQL's
    WAL writer (at most 3 x ``wal_writer_delay``, 0.6 s by default) or for the next commit that
    does wait, such as the chunk's last row's and its after-batch work. What it changes is only
    what a crash of PostgreSQL itself (or of its machine) loses: today the marks of the messages
    sent in those last moments, whose rows are pending again, so their messages go out a second
    time, with the same Message-ID, as the one message in flight did before. A killed worker
    (the common case) loses the one message in flight, as before.
    """
    return bool(current_app.config.get("OUTBOX_FLUSH_LATER", True)) and (
        db.session.get_bind().dialect.name == "postgresql"
    )
