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
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from coop.core.models import JobStatus, OutboxJob, PeriodicTaskState
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)

JobHandler = Callable[..., Any]
P = ParamSpec("P")
R = TypeVar("R")
_handlers: dict[str, JobHandler] = {}
# Called (with the job's arguments and the error) when a job is failed for good, so that the
# record it works on can say so instead of waiting forever.
_give_up: dict[str, Callable[..., None]] = {}
# Called once with the arguments of every job of that name that a chunk (or a lone run) did,
# in a transaction of its own: the work that would otherwise be repeated for each row (an
# update is "sent" once its last delivery went out).
_after_batch: dict[str, Callable[[list[dict[str, Any]]], None]] = {}
_periodic: dict[str, Callable[[], int]] = {}

URGENT, DEFAULT, BULK = "urgent", "default", "bulk"
# The order in which a worker takes its queues: RQ looks at the first queue first, every time.
LANES = (URGENT, DEFAULT, BULK)
_lanes: dict[str, str] = {}

# RQ retries a failed or killed job with these pauses (seconds); the sweep covers the rest.
# The first retry comes at once: RQ re-queues the job of a dead worker with these pauses too,
# and a pause would wait for RQ's scheduler, whose lock the dead worker may hold for 61 s more.
RQ_RETRY_INTERVALS = [0, 30, 300, 900]
# A just-committed row is handed over by the commit itself; the sweep leaves it alone this long.
HANDOVER_GRACE = timedelta(seconds=10)
# How many rows handed over lately one sweep asks the queue about (one round trip for all).
LOST_CHECK_LIMIT = 5000
_PENDING_KEY = "coop_outbox_new"
_PLANNED_KEY = "coop_outbox_planned"


class Job(Generic[P, R]):
    """A registered job handler, by its handle rather than its name: ``send_x.enqueue(key,
    **args)`` records it in the outbox (run after the commit); calling it runs it now."""

    def __init__(self, name: str, handler: Callable[P, R]) -> None:
        self.name = name
        self.handler = handler
        functools.update_wrapper(self, handler)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.handler(*args, **kwargs)

    def enqueue(self, key: str, *, run_after: datetime | None = None, **args: Any) -> OutboxJob:
        return enqueue(self.name, key, run_after=run_after, **args)

    def enqueue_many(self, work: list[tuple[str, dict[str, Any]]]) -> list[OutboxJob]:
        return enqueue_many(self.name, work)


def job(
    name: str,
    *,
    on_give_up: Callable[..., None] | None = None,
    lane: str = DEFAULT,
    after_batch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Callable[[Callable[P, R]], Job[P, R]]:
    """Register a job handler under a stable name (the name is stored in the outbox row).

    ``on_give_up(error=..., **args)`` runs once the job has failed its last attempt. ``lane``
    is ``URGENT`` for what a person waits for right now, ``BULK`` for mass mailings.
    ``after_batch([args, ...])`` runs after the jobs of a chunk that were done.
    """
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}")

    def register(handler: Callable[P, R]) -> Job[P, R]:
        if name in _handlers and _handlers[name] is not handler:
            raise RuntimeError(f"job {name!r} registered twice")
        _handlers[name] = handler
        _lanes[name] = lane
        if on_give_up is not None:
            _give_up[name] = on_give_up
        if after_batch is not None:
            _after_batch[name] = after_batch
        return Job(name, handler)

    return register


def lane_of(name: str) -> str:
    return _lanes.get(name, DEFAULT)


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
    db.session.info.setdefault(_PENDING_KEY, []).append((row.id, lane_of(name)))
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
    lane = lane_of(name)
    db.session.info.setdefault(_PENDING_KEY, []).extend((row.id, lane) for row in new)
    return [existing[key] for key in keys]


# What a commit hands over: outbox ids with their lane (a plain id: its lane is looked up).
Work = Iterable[int | tuple[int, str]]


class Dispatcher(Protocol):
    def hand_over(self, work: Work) -> None: ...

    def run_pending(self) -> int: ...

    def lost(self, job_ids: list[int]) -> list[int]: ...


def _with_lanes(work: Work) -> list[tuple[int, str]]:
    pairs = [item for item in work if isinstance(item, tuple)]
    plain = [item for item in work if isinstance(item, int)]
    if plain:
        names = {
            job_id: name
            for job_id, name in db.session.execute(
                select(OutboxJob.id, OutboxJob.name).where(OutboxJob.id.in_(plain))
            )
        }
        pairs.extend((job_id, lane_of(names.get(job_id, ""))) for job_id in plain)
    return pairs


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

    def hand_over(self, work: Work) -> None:
        self._queue().extend(item[0] if isinstance(item, tuple) else item for item in work)

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


def queue_names(app: Flask) -> dict[str, str]:
    """The RQ queue of each lane; ``RQ_QUEUE`` names the default one and prefixes the others."""
    base = str(app.config["RQ_QUEUE"])
    return {URGENT: f"{base}-urgent", DEFAULT: base, BULK: f"{base}-bulk"}


def chunks(work: list[tuple[int, str]], size: int) -> list[tuple[str, list[int]]]:
    """(lane, ids) per RQ job: the ids of one lane in order, at most ``size`` per job."""
    out: list[tuple[str, list[int]]] = []
    for lane in LANES:
        ids = sorted({job_id for job_id, job_lane in work if job_lane == lane})
        out.extend((lane, ids[start : start + size]) for start in range(0, len(ids), size))
    return out


@dataclass
class RQDispatcher:
    """Hands chunks of job ids to RQ; ``worker.py`` runs them. Redis being down loses nothing."""

    app: Flask

    def connection(self) -> Any:
        """One client (and connection pool) per process, made at the first hand-over: a new
        client per hand-over opened a TCP connection and introduced itself to Redis for every
        sign-up. redis-py's pool notices a fork and starts afresh in the child."""
        client = self.__dict__.get("_client")
        if client is None:
            from redis import Redis

            client = Redis.from_url(
                self.app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
            )
            self.__dict__["_client"] = client
        return client

    def queue(self, lane: str = DEFAULT, connection: Any = None) -> Any:
        from rq import Queue

        return Queue(queue_names(self.app)[lane], connection=connection or self.connection())

    def plan(self, work: Work) -> list[tuple[str, str, list[int]]]:
        """(lane, RQ job id, outbox ids) of each chunk ``work`` goes in."""
        todo = chunks(_with_lanes(work), int(self.app.config["OUTBOX_BATCH_SIZE"]))
        return [(lane, rq_job_id(ids), ids) for lane, ids in todo]

    def mark_in(self, session: Session, planned: list[tuple[str, str, list[int]]]) -> None:
        """Name the RQ jobs on the rows inside the transaction that writes them (the commit's
        own, instead of a second transaction after it)."""
        now = utcnow()
        for _, rq_id, ids in planned:
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_(ids))
                .values(dispatched_at=now, handed_as=rq_id)
                .execution_options(synchronize_session=False)
            )

    def hand_over(self, work: Work) -> None:
        planned = self.plan(work)
        if not planned:
            return
        # The rows say which RQ job carries them before that job exists: a worker that takes it
        # at once must not find the rows locked by this very update (it would skip them as
        # another worker's, and they would wait for the re-dispatch).
        try:
            self._mark(planned, utcnow())
        except SQLAlchemyError as exc:  # the database is away: the sweep hands them over later
            log.warning(
                "could not mark %d job(s) handed over: %s", sum(len(i) for *_, i in planned), exc
            )
            return
        self.enqueue_planned(planned)

    def enqueue_planned(self, planned: list[tuple[str, str, list[int]]]) -> None:
        """Put the chunks, whose rows already name them, in their lanes' queues; what cannot be
        put there is unmarked for the sweep."""
        from redis.exceptions import RedisError
        from rq import Retry

        enqueued: set[str] = set()
        try:
            connection = self.connection()
            for lane in LANES:
                lane_chunks = [
                    (rq_id, ids) for chunk_lane, rq_id, ids in planned if chunk_lane == lane
                ]
                if not lane_chunks:
                    continue
                queue = self.queue(lane, connection)
                # One round trip for all of a lane's chunks (10,000 update emails: 200 jobs).
                queue.enqueue_many(
                    [
                        queue.prepare_data(
                            "coop.core.jobs.run_jobs",
                            (ids,),
                            job_id=rq_id,
                            retry=Retry(max=len(RQ_RETRY_INTERVALS), interval=RQ_RETRY_INTERVALS),
                            timeout=self.app.config.get("RQ_JOB_TIMEOUT", 600),
                            result_ttl=3600,
                            failure_ttl=7 * 24 * 3600,
                        )
                        for rq_id, ids in lane_chunks
                    ]
                )
                enqueued.update(rq_id for rq_id, _ in lane_chunks)
        except RedisError as exc:
            missed = [(lane, rq_id, ids) for lane, rq_id, ids in planned if rq_id not in enqueued]
            log.warning(
                "queue unreachable, %d job(s) wait for the sweep: %s",
                sum(len(ids) for _, _, ids in missed),
                exc,
            )
            # Not handed over after all. Should this fail too, the sweep finds their RQ job
            # missing and hands them over again.
            with contextlib.suppress(SQLAlchemyError):
                self._mark(missed, None)

    @staticmethod
    def _mark(planned: list[tuple[str, str, list[int]]], now: datetime | None) -> None:
        """A separate short transaction: the caller's session has just committed."""
        with db.engine.begin() as connection:
            for _, rq_id, ids in planned:
                connection.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id.in_(ids))
                    .values(dispatched_at=now, handed_as=rq_id if now else None)
                )

    def run_pending(self) -> int:
        return 0

    def lost(self, job_ids: list[int]) -> list[int]:
        """The jobs handed over that Redis no longer holds (it restarted without its data, or
        lost them otherwise); none while Redis cannot be asked."""
        from redis.exceptions import RedisError
        from rq.job import Job

        carriers: dict[str, list[int]] = {}
        for job_id, handed_as in db.session.execute(
            select(OutboxJob.id, OutboxJob.handed_as).where(OutboxJob.id.in_(job_ids))
        ):
            carriers.setdefault(handed_as or "", []).append(job_id)
        db.session.rollback()
        names = sorted(name for name in carriers if name)
        try:
            connection = self.connection()
            with connection.pipeline(transaction=False) as pipeline:
                for name in names:
                    pipeline.exists(Job.key_for(name))
                held = pipeline.execute()
        except RedisError as exc:
            log.warning("queue unreachable, cannot check the jobs handed over: %s", exc)
            return []
        gone = [name for name, there in zip(names, held, strict=True) if not there]
        # A row without a carrier was handed over by an older version, one id per RQ job.
        return sorted([*carriers.get("", []), *(i for name in gone for i in carriers[name])])


def work_ids(todo: list[tuple[str, list[int]]]) -> list[int]:
    return [job_id for _, ids in todo for job_id in ids]


def rq_job_id(ids: Sequence[int]) -> str:
    """Unique per hand-over: a chunk handed over again (after Redis lost it) is a new RQ job."""
    return f"coop-outbox-{ids[0]}-{len(ids)}-{secrets.token_hex(4)}"


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
    row = db.session.execute(
        select(OutboxJob).where(OutboxJob.id == job_id).with_for_update(skip_locked=True)
    ).scalar_one_or_none()
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
        if flush_later:
            db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
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
    log.info("job done id=%s name=%s key=%s", job_id, name, key)
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


class ChunkError(Exception):
    """Some jobs of a chunk failed (each row has its error and attempt); RQ retries the chunk,
    whose finished rows then cost one look each."""


def _unreachable(exc: BaseException) -> bool:
    return bool(getattr(exc, "unreachable", False))


def execute_chunk(job_ids: Sequence[int]) -> dict[str, int]:
    """Run the rows of one chunk one after the other, each in its own transaction (a killed
    worker loses at most the one in flight); returns how many ended how.

    A row that fails does not stop the others (a refused or greylisted address concerns that
    message only), except when the mail server cannot be reached: then the rest waits for the
    chunk's retry without an attempt counted, instead of each waiting out the timeout.
    """
    outcomes: dict[str, int] = {}
    failed: list[int] = []
    done: dict[str, list[dict[str, Any]]] = {}
    try:
        for position, job_id in enumerate(job_ids):
            if not _execute_one(job_id, position, job_ids, outcomes, failed, done):
                break
    finally:
        _run_after_batch(done)
    if failed:
        raise ChunkError(f"{len(failed)} of {len(job_ids)} job(s) failed: {failed[:20]}")
    return outcomes


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
