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
``OUTBOX_BATCH_SIZE`` ids per RQ job: one worker runs a chunk row by row (shared out over its
sender threads when large), each row in its own transaction and over the sender's kept SMTP
connection, so a killed worker loses at most the row in flight of each sender. ``handed_as`` on
the row names the RQ job that carries it.

Four modules: ``outbox`` declares jobs and records them (``@job``, ``enqueue``), ``dispatch``
hands committed rows over (RQ, or this process), ``execution`` runs rows and chunks, and this
one ties them to the app (the session's commit, the sweep, periodic tasks, RQ's entry points).
Everything is importable from here.
"""

from __future__ import annotations

import importlib
import logging
import os
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, or_, select
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
from coop.core.execution import (
    ChunkError,
    chunk_memo,
    execute,
    execute_chunk,
    first_row,
    write_with_done,
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
    "first_row",
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
    "write_with_done",
]

log = logging.getLogger(__name__)


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
