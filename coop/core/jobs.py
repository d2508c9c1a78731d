"""The job outbox: background work that is never lost and never done twice.

A service calls ``enqueue()`` inside its own transaction, so the state change and the intent to
do the follow-up work commit together (or not at all). After the commit the job is handed over:
to RQ when ``REDIS_URL`` is set (``worker.py`` runs it), otherwise it runs in this process once
the request's response has gone out, or the command is done. If the hand-over fails (Redis
down) the row simply waits: ``sweep()`` hands over every due row that has not finished. Redis
only carries a wake-up with the row's id; the database row is the record, and ``execute()``
locks it and checks its status, so running a job twice (a retry, a killed worker, a second
sweep) does the work once.

Each job belongs to a lane: ``urgent`` (what a person waits for at the screen: the sign-up's
confirmation, a login link), ``default``, or ``bulk`` (segment updates). Each lane is its own RQ
queue, and a worker listens to them in that order, so ten thousand update emails never stand
before a sign-up's link. Rows committed together are handed over in chunks of up to
``OUTBOX_BATCH_SIZE`` ids per RQ job: one worker runs a chunk row by row, each row in its own
transaction and over the worker's one SMTP connection, so a killed worker loses at most the row
in flight. ``handed_as`` on the row names the RQ job that carries it.

Three modules: ``outbox`` declares jobs and records them (``@job``, ``enqueue``), ``dispatch``
hands committed rows over (RQ, or this process), and this one runs them (``execute``, chunks,
the sweep, periodic tasks). Everything is importable from here.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import bindparam, event, func, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from coop.core.dispatch import (
    HANDOVER_GRACE,
    LOST_CHECK_LIMIT,
    RQ_RETRY_INTERVALS,
    Dispatcher,
    InlineDispatcher,
    RQDispatcher,
    Work,
    _with_lanes,
    chunks,
    dispatcher,
    queue_names,
    rq_job_id,
    work_ids,
)
from coop.core.models import JobStatus, OutboxJob, PeriodicTaskState
from coop.core.outbox import (
    _PENDING_KEY,
    _PLANNED_KEY,
    BULK,
    DEFAULT,
    LANES,
    URGENT,
    Job,
    JobHandler,
    P,
    R,
    _after_batch,
    _give_up,
    _handlers,
    _lanes,
    _periodic,
    enqueue,
    enqueue_for_each,
    enqueue_many,
    job,
    lane_of,
    periodic,
)
from coop.core.time import utcnow
from coop.extensions import db

__all__ = [
    "BULK",
    "DEFAULT",
    "HANDOVER_GRACE",
    "LANES",
    "LOST_CHECK_LIMIT",
    "RQ_RETRY_INTERVALS",
    "SWEEP_TASK",
    "URGENT",
    "_PENDING_KEY",
    "_PLANNED_KEY",
    "ChunkError",
    "Dispatcher",
    "InlineDispatcher",
    "Job",
    "JobHandler",
    "P",
    "R",
    "RQDispatcher",
    "Work",
    "_after_batch",
    "_give_up",
    "_handlers",
    "_lanes",
    "_periodic",
    "_with_lanes",
    "chunk_memo",
    "chunks",
    "dispatcher",
    "enqueue",
    "enqueue_for_each",
    "enqueue_many",
    "enqueue_once",
    "execute",
    "execute_chunk",
    "failing_tasks",
    "init_app",
    "job",
    "lane_of",
    "last_round_at",
    "periodic",
    "queue_names",
    "rq_job_id",
    "run_job",
    "run_jobs",
    "run_periodic_tasks",
    "set_worker_app",
    "sweep",
    "work_ids",
]

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


def init_app(app: Flask) -> None:
    app.extensions["coop_jobs"] = (
        RQDispatcher(app) if app.config.get("REDIS_URL") else InlineDispatcher(app, run=execute)
    )

    @app.after_request
    def _run_inline_jobs(response: Any) -> Any:
        # Once the response has gone out (the WSGI server closes it), so that its time never
        # depends on the jobs: /login answers alike whether a resident has the address or not.
        waiting = dispatcher(app)
        if isinstance(waiting, InlineDispatcher) and waiting._queue():
            response.call_on_close(lambda: _run_inline_after_response(app))
        return response

    _dispose_pool_after_fork(app)


def _run_inline_after_response(app: Flask) -> None:
    """The request's context is gone by now: the jobs get a context (and session) of their own,
    as in a worker."""
    with app.app_context():
        try:
            dispatcher(app).run_pending()
        finally:
            db.session.remove()


def _before_commit(session: Session) -> None:
    """With RQ, the rows about to commit name their chunk's RQ job in this very commit."""
    work = session.info.get(_PENDING_KEY)
    if not work or not has_app_context():
        return
    waiting = dispatcher()
    if isinstance(waiting, RQDispatcher):
        planned = waiting.plan(work)
        waiting.mark_in(session, planned)
        session.info[_PLANNED_KEY] = planned


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_PENDING_KEY, None)
    planned = session.info.pop(_PLANNED_KEY, None)
    if not ids or not has_app_context():
        return
    waiting = dispatcher()
    if planned is not None and isinstance(waiting, RQDispatcher):
        waiting.enqueue_planned(planned)
    else:
        waiting.hand_over(ids)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_PLANNED_KEY, None)


event.listen(Session, "before_commit", _before_commit)


event.listen(Session, "after_commit", _after_commit)


event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


_forked_apps: weakref.WeakSet[Flask] = weakref.WeakSet()


def _dispose_pool_after_fork(app: Flask) -> None:
    """RQ's work-horse and gunicorn --preload fork; a child must not reuse the parent's sockets."""
    if not _forked_apps:
        os.register_at_fork(after_in_child=_dispose_all)
    _forked_apps.add(app)


def _dispose_all() -> None:
    for app in list(_forked_apps):
        with app.app_context():
            db.engine.dispose(close=False)


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
    row = db.session.execute(_LOCK_RELAXED if flush_later else _LOCK, {"job_id": job_id}).first()
    if row is None:
        db.session.rollback()
        return "busy", None, None  # another worker holds it (or it never existed)
    if row.status is not JobStatus.PENDING:
        db.session.rollback()
        return "already-" + row.status.value, None, None
    if row.run_after > now:
        db.session.rollback()
        return "not-due", None, None
    name, key = row.name, row.key
    handler = _handlers[name]
    args = dict(row.args)
    try:
        handler(**args)
        db.session.execute(_DONE, {"job_id": job_id, "done_at": utcnow()})
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
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


def sweep(now: datetime | None = None, limit: int = 500) -> int:
    """Hand over every due job that never reached a worker, did not finish in time, or was
    handed to a queue that no longer holds it (Redis restarted empty after an outage)."""
    now = now or utcnow()
    stale = now - timedelta(seconds=current_app.config["OUTBOX_REDISPATCH_AFTER"])
    due = (
        OutboxJob.status == JobStatus.PENDING,
        OutboxJob.run_after <= now,
        OutboxJob.created_at <= now - HANDOVER_GRACE,
    )
    lanes: dict[int, str] = {
        job_id: lane_of(name)
        for job_id, name in db.session.execute(
            select(OutboxJob.id, OutboxJob.name)
            .where(*due, or_(OutboxJob.dispatched_at.is_(None), OutboxJob.dispatched_at <= stale))
            .order_by(OutboxJob.id)
            .limit(limit)
        )
    }
    # Handed over lately: normally waiting in the queue or running. Ask the queue.
    handed = {
        job_id: lane_of(name)
        for job_id, name in db.session.execute(
            select(OutboxJob.id, OutboxJob.name)
            .where(*due, OutboxJob.dispatched_at > stale)
            .order_by(OutboxJob.id)
            .limit(LOST_CHECK_LIMIT)
        )
    }
    db.session.rollback()
    if handed:
        lost = dispatcher().lost(list(handed))
        if lost:
            log.warning(
                "%d job(s) handed over are no longer in the queue: handed over again", len(lost)
            )
        lanes.update((job_id, handed[job_id]) for job_id in lost)
    if lanes:
        dispatcher().hand_over(sorted(lanes.items()))
        dispatcher().run_pending()
    return len(lanes)


SWEEP_TASK = "outbox.sweep"


def run_periodic_tasks() -> dict[str, int]:
    """One round of the scheduler: every periodic task, then the outbox sweep.

    Returns how much each did (-1: it failed). How each fared is written to the database, so
    that ``/healthz`` names a failing task until a round of it succeeds again.
    """
    done: dict[str, int] = {}
    errors: dict[str, str | None] = {}
    for name, task in sorted(_periodic.items()):
        done[name], errors[name] = _run_task(name, task)
    dispatcher().run_pending()
    done[SWEEP_TASK], errors[SWEEP_TASK] = _run_task(SWEEP_TASK, sweep)
    _record_round(errors)
    return done


def _run_task(name: str, task: Callable[[], int]) -> tuple[int, str | None]:
    try:
        return task(), None
    except Exception as exc:
        db.session.rollback()
        log.exception("periodic task %s failed", name)
        return -1, f"{type(exc).__name__}: {exc}"[:2000]


def _record_round(errors: dict[str, str | None]) -> None:
    """Write each task's outcome; a database that cannot take it (an outage) only logs."""
    now = utcnow()
    try:
        states = {
            state.name: state
            for state in db.session.scalars(
                select(PeriodicTaskState).where(PeriodicTaskState.name.in_(list(errors)))
            )
        }
        for name, error in sorted(errors.items()):
            state = states.get(name)
            if state is None:
                state = PeriodicTaskState(name=name, failures=0)
                db.session.add(state)
            state.last_run_at = now
            if error is None:
                state.last_success_at = now
                state.failing_since = None
                state.failures = 0
                state.last_error = None
            else:
                state.failing_since = state.failing_since or now
                state.failures = (state.failures or 0) + 1
                state.last_error = error
        db.session.commit()
    except SQLAlchemyError as exc:
        # Two schedulers writing a task's first row at once, or the database away: the next
        # round writes it again.
        db.session.rollback()
        log.warning("could not record the scheduler round: %s", type(exc).__name__)


def failing_tasks() -> list[PeriodicTaskState]:
    """Periodic tasks whose last round failed (only tasks this code still has)."""
    known = [*_periodic, SWEEP_TASK]
    return list(
        db.session.scalars(
            select(PeriodicTaskState)
            .where(PeriodicTaskState.name.in_(known), PeriodicTaskState.failing_since.is_not(None))
            .order_by(PeriodicTaskState.name)
        )
    )


def last_round_at() -> datetime | None:
    """When a scheduler round last recorded anything (None: no round ever ran)."""
    latest: datetime | None = db.session.scalar(select(func.max(PeriodicTaskState.last_run_at)))
    return latest


def enqueue_once(name: str, key: str, **args: Any) -> OutboxJob | None:
    """``enqueue`` in its own transaction, for callers outside a service transaction.

    Two processes racing for the same key both succeed; one row is stored.
    """
    try:
        row = enqueue(name, key, **args)
        db.session.commit()
        return row
    except IntegrityError:
        db.session.rollback()
        return None


_chunk_memo: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "coop_chunk_memo", default=None
)


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
    done: dict[str, list[dict[str, Any]]] = {}
    try:
        if len(shares) == 1:
            outcomes, failed, done = _run_share(job_ids)
        else:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            futures = [
                _sender_pool(len(shares)).submit(_run_share_in, app, share) for share in shares
            ]
            outcomes, failed = {}, []
            for future in futures:
                share_outcomes, share_failed, share_done = future.result()
                for outcome, count in share_outcomes.items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + count
                failed.extend(share_failed)
                for name, batch in share_done.items():
                    done.setdefault(name, []).extend(batch)
    finally:
        _run_after_batch(done)
    if failed:
        raise ChunkError(f"{len(failed)} of {len(job_ids)} job(s) failed: {failed[:20]}")
    return outcomes


# A sender gets at least this many rows of a chunk: fewer are not worth a thread.
MIN_SHARE = 10

_Share = tuple[dict[str, int], list[int], dict[str, list[dict[str, Any]]]]


def _shares(job_ids: Sequence[int]) -> list[Sequence[int]]:
    senders = min(int(current_app.config.get("OUTBOX_SENDERS", 1)), len(job_ids) // MIN_SHARE)
    if senders <= 1 or db.session.get_bind().dialect.name != "postgresql":
        return [job_ids]
    return [job_ids[start::senders] for start in range(senders)]


def _run_share(job_ids: Sequence[int]) -> _Share:
    outcomes: dict[str, int] = {}
    failed: list[int] = []
    done: dict[str, list[dict[str, Any]]] = {}
    memo = _chunk_memo.set({})
    try:
        with _one_connection(len(job_ids) > 1):
            for position, job_id in enumerate(job_ids):
                if not _execute_one(job_id, position, job_ids, outcomes, failed, done):
                    break
    finally:
        _chunk_memo.reset(memo)
    return outcomes, failed, done


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
        session = db.session.session_factory(bind=connection)
        registry.set(session)
        try:
            yield
        finally:
            session.close()
            if before is None:
                registry.clear()
            else:
                registry.set(before)


def _run_share_in(app: Flask, job_ids: Sequence[int]) -> _Share:
    with app.app_context():
        try:
            return _run_share(job_ids)
        finally:
            db.session.remove()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _sender_pool(size: int) -> ThreadPoolExecutor:
    """The worker's sender threads, kept for its life: each keeps its SMTP connection (a
    thread's own, see ``coop.core.mail``) and its database connection in the pool between
    chunks."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < size:
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="outbox-sender")
        return _pool


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


_worker_app: Flask | None = None


def set_worker_app(app: Flask) -> None:
    global _worker_app
    _worker_app = app


def _app() -> Flask:
    app = _worker_app
    if app is None:
        # The application factory, found by its name as RQ finds a job's function: ``core``
        # stands below every domain and cannot import the app that assembles them.
        create_app = importlib.import_module("coop").create_app
        app = create_app()
        set_worker_app(app)
    return app


def run_jobs(job_ids: list[int]) -> dict[str, int]:
    """The RQ entry point: a chunk of outbox rows of one lane (see ``execute_chunk``)."""
    if has_app_context():
        return execute_chunk(job_ids)
    with _app().app_context():
        try:
            return execute_chunk(job_ids)
        finally:
            db.session.remove()


def run_job(job_id: int) -> str:
    """The RQ entry point of one row, as versions before the chunks handed over (jobs of theirs
    may still wait in Redis after an upgrade)."""
    if has_app_context():
        return execute(job_id)
    with _app().app_context():
        try:
            return execute(job_id)
        finally:
            db.session.remove()
