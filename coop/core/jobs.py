"""The job outbox: background work that is never lost and never done twice.

A service calls ``enqueue()`` inside its own transaction, so the state change and the intent to
do the follow-up work commit together (or not at all). After the commit the job is handed over:
to RQ when ``REDIS_URL`` is set (``worker.py`` runs it), otherwise it runs in this process once
the request's response has gone out, or the command is done. If the hand-over fails (Redis
down) the row simply waits: ``sweep()`` hands over every due row that has not finished. Redis
only carries a wake-up with the row's id; the database row is the record, and ``execute()``
locks it and checks its status, so running a job twice (a retry, a killed worker, a second
sweep) does the work once.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from coop.core.models import JobStatus, OutboxJob, PeriodicTaskState
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)

JobHandler = Callable[..., None]
_handlers: dict[str, JobHandler] = {}
# Called (with the job's arguments and the error) when a job is failed for good, so that the
# record it works on can say so instead of waiting forever.
_give_up: dict[str, Callable[..., None]] = {}
_periodic: dict[str, Callable[[], int]] = {}

# RQ retries a failed or killed job with these pauses (seconds); the sweep covers the rest.
RQ_RETRY_INTERVALS = [10, 60, 300, 900]
# A just-committed row is handed over by the commit itself; the sweep leaves it alone this long.
HANDOVER_GRACE = timedelta(seconds=10)
# How many rows handed over lately one sweep asks the queue about (one round trip for all).
LOST_CHECK_LIMIT = 5000
_PENDING_KEY = "coop_outbox_new"


def job(
    name: str, *, on_give_up: Callable[..., None] | None = None
) -> Callable[[JobHandler], JobHandler]:
    """Register a job handler under a stable name (the name is stored in the outbox row).

    ``on_give_up(error=..., **args)`` runs once the job has failed its last attempt.
    """

    def register(handler: JobHandler) -> JobHandler:
        if name in _handlers and _handlers[name] is not handler:
            raise RuntimeError(f"job {name!r} registered twice")
        _handlers[name] = handler
        if on_give_up is not None:
            _give_up[name] = on_give_up
        return handler

    return register


def periodic(name: str) -> Callable[[Callable[[], int]], Callable[[], int]]:
    """Register a task the scheduler runs every round; it returns how much it did."""

    def register(task: Callable[[], int]) -> Callable[[], int]:
        _periodic[name] = task
        return task

    return register


def enqueue(name: str, key: str, *, run_after: datetime | None = None, **args: Any) -> OutboxJob:
    """Record work to do after the current transaction commits; the same ``key`` is stored once.

    ``args`` must be ids and other plain values: they are stored as JSON and passed to the handler.
    """
    if name not in _handlers:
        raise KeyError(f"no job handler named {name!r}")
    existing: OutboxJob | None = db.session.scalar(select(OutboxJob).where(OutboxJob.key == key))
    if existing is not None:
        return existing
    row = OutboxJob(key=key, name=name, args=args, run_after=run_after or utcnow())
    db.session.add(row)
    db.session.flush()
    db.session.info.setdefault(_PENDING_KEY, []).append(row.id)
    return row


def enqueue_many(name: str, work: list[tuple[str, dict[str, Any]]]) -> list[OutboxJob]:
    """``enqueue`` for many (key, args) at once: one query and one flush, however many rows
    (approving a matching writes an email job per household)."""
    if name not in _handlers:
        raise KeyError(f"no job handler named {name!r}")
    keys = [key for key, _ in work]
    existing: dict[str, OutboxJob] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        existing.update(
            (row.key, row)
            for row in db.session.scalars(select(OutboxJob).where(OutboxJob.key.in_(chunk)))
        )
    now = utcnow()
    new: list[OutboxJob] = []
    for key, args in work:
        if key in existing:
            continue
        row = OutboxJob(key=key, name=name, args=args, run_after=now)
        existing[key] = row
        new.append(row)
    db.session.add_all(new)
    db.session.flush()
    db.session.info.setdefault(_PENDING_KEY, []).extend(row.id for row in new)
    return [existing[key] for key in keys]


class Dispatcher(Protocol):
    def hand_over(self, job_ids: list[int]) -> None: ...

    def run_pending(self) -> int: ...

    def lost(self, job_ids: list[int]) -> list[int]: ...


@dataclass
class InlineDispatcher:
    """The embedded default: jobs run in this process after the request's (or command's) commit."""

    app: Flask

    def __post_init__(self) -> None:
        self._local = threading.local()

    def _queue(self) -> list[int]:
        if not hasattr(self._local, "ids"):
            self._local.ids = []
        queue: list[int] = self._local.ids
        return queue

    def hand_over(self, job_ids: list[int]) -> None:
        self._queue().extend(job_ids)

    def run_pending(self) -> int:
        """Run what was handed over (and what those jobs enqueue in turn); returns how many."""
        queue = self._queue()
        ran = 0
        while queue:
            job_id = queue.pop(0)
            try:
                execute(job_id)
            except Exception:  # the row keeps the error; the sweep tries again
                log.exception("job %s failed in-process", job_id)
            ran += 1
        return ran

    def lost(self, job_ids: list[int]) -> list[int]:
        return []  # nothing is handed to another process


@dataclass
class RQDispatcher:
    """Hands job ids to RQ; ``worker.py`` runs them. Redis being down loses nothing."""

    app: Flask

    def queue(self) -> Any:
        from redis import Redis
        from rq import Queue

        connection = Redis.from_url(
            self.app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
        )
        return Queue(self.app.config["RQ_QUEUE"], connection=connection)

    def hand_over(self, job_ids: list[int]) -> None:
        from redis.exceptions import RedisError
        from rq import Retry

        handed: list[int] = []
        try:
            queue = self.queue()
            for job_id in job_ids:
                queue.enqueue(
                    "coop.core.jobs.run_job",
                    job_id,
                    job_id=rq_job_id(job_id),
                    retry=Retry(max=len(RQ_RETRY_INTERVALS), interval=RQ_RETRY_INTERVALS),
                    job_timeout=self.app.config.get("RQ_JOB_TIMEOUT", 600),
                    result_ttl=3600,
                    failure_ttl=7 * 24 * 3600,
                )
                handed.append(job_id)
        except RedisError as exc:
            log.warning(
                "queue unreachable, %d job(s) wait for the sweep: %s",
                len(job_ids) - len(handed),
                exc,
            )
        if handed:
            # A separate short transaction: the caller's session has just committed.
            with db.engine.begin() as connection:
                connection.execute(
                    update(OutboxJob).where(OutboxJob.id.in_(handed)).values(dispatched_at=utcnow())
                )

    def run_pending(self) -> int:
        return 0

    def lost(self, job_ids: list[int]) -> list[int]:
        """The jobs handed over that Redis no longer holds (it restarted without its data, or
        lost them otherwise); none while Redis cannot be asked."""
        from redis.exceptions import RedisError
        from rq.job import Job

        try:
            connection = self.queue().connection
            with connection.pipeline(transaction=False) as pipeline:
                for job_id in job_ids:
                    pipeline.exists(Job.key_for(rq_job_id(job_id)))
                held = pipeline.execute()
        except RedisError as exc:
            log.warning("queue unreachable, cannot check the jobs handed over: %s", exc)
            return []
        return [job_id for job_id, there in zip(job_ids, held, strict=True) if not there]


def rq_job_id(job_id: int) -> str:
    return f"coop-outbox-{job_id}"


def dispatcher(app: Flask | None = None) -> Dispatcher:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    result: Dispatcher = app.extensions["coop_jobs"]
    return result


def init_app(app: Flask) -> None:
    app.extensions["coop_jobs"] = (
        RQDispatcher(app) if app.config.get("REDIS_URL") else InlineDispatcher(app)
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


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_PENDING_KEY, None)
    if ids and has_app_context():
        dispatcher().hand_over(ids)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


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
    now = utcnow()
    row = db.session.execute(
        select(OutboxJob).where(OutboxJob.id == job_id).with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if row is None:
        db.session.rollback()
        return "busy"  # another worker holds it (or it never existed)
    if row.status is not JobStatus.PENDING:
        db.session.rollback()
        return "already-" + row.status.value
    if row.run_after > now:
        db.session.rollback()
        return "not-due"
    handler = _handlers[row.name]
    args = dict(row.args)
    try:
        handler(**args)
        row.status = JobStatus.DONE
        row.attempts += 1
        row.finished_at = utcnow()
        row.last_error = None
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        _record_failure(job_id, exc)
        raise
    log.info("job done id=%s name=%s key=%s", job_id, row.name, row.key)
    return "done"


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
    ids = list(
        db.session.scalars(
            select(OutboxJob.id)
            .where(*due, or_(OutboxJob.dispatched_at.is_(None), OutboxJob.dispatched_at <= stale))
            .order_by(OutboxJob.id)
            .limit(limit)
        )
    )
    # Handed over lately: normally waiting in the queue or running. Ask the queue.
    handed = list(
        db.session.scalars(
            select(OutboxJob.id)
            .where(*due, OutboxJob.dispatched_at > stale)
            .order_by(OutboxJob.id)
            .limit(LOST_CHECK_LIMIT)
        )
    )
    db.session.rollback()
    if handed:
        lost = dispatcher().lost(handed)
        if lost:
            log.warning(
                "%d job(s) handed over are no longer in the queue: handed over again", len(lost)
            )
        ids = sorted({*ids, *lost})
    if ids:
        dispatcher().hand_over(ids)
        dispatcher().run_pending()
    return len(ids)


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


def run_job(job_id: int) -> str:
    """The RQ entry point: open the app context and execute the outbox row."""
    if has_app_context():
        return execute(job_id)
    app = _worker_app
    if app is None:
        from coop import create_app

        app = create_app()
        set_worker_app(app)
    with app.app_context():
        try:
            return execute(job_id)
        finally:
            db.session.remove()
