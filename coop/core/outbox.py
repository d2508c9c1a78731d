"""The outbox's registry: jobs declared by name (``@job``, with their lane), periodic tasks, and
``enqueue``, which records work in the current transaction (run after its commit; see
``coop.core.jobs``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

from sqlalchemy import Select, String, cast, exists, func, insert, literal, select

from coop.core.models import JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


JobHandler = Callable[..., Any]


P = ParamSpec("P")


R = TypeVar("R")


_OUTBOX = OutboxJob.__table__


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


def enqueue(
    name: str,
    key: str,
    *,
    run_after: datetime | None = None,
    new_key: bool = False,
    **args: Any,
) -> OutboxJob:
    """Record work to do after the current transaction commits; the same ``key`` is stored once.

    ``args`` must be ids and other plain values: they are stored as JSON and passed to the handler.
    ``new_key``: the key names a row this transaction has just written (a confirmation link's
    id), so no job can have it yet and it is not looked up (a query less on every sign-up); the
    unique index on the key still refuses a second one.
    """
    if name not in _handlers:
        raise KeyError(f"no job handler named {name!r}")
    if not new_key:
        existing: OutboxJob | None = db.session.scalar(
            select(OutboxJob).where(OutboxJob.key == key)
        )
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


def enqueue_for_each(name: str, key_prefix: str, arg: str, ids: Select[tuple[int]]) -> list[int]:
    """One job ``name`` per id that ``ids`` selects (in its order), with the key
    ``f"{key_prefix}{id}"`` and the arguments ``{arg: id}``; a key stored before is left as it
    is. Returns the new rows' ids.

    Written by the database in one INSERT ... SELECT: an update to 10,000 residents made 10,000
    row objects and a statement of 60,000 parameters through ``enqueue_many`` (a second and a
    half at 2,000 recipients, before the first message could go out).
    """
    if name not in _handlers:
        raise KeyError(f"no job handler named {name!r}")
    chosen = ids.subquery()
    (id_column,) = chosen.c
    key = literal(key_prefix) + cast(id_column, String)
    json_object = func.json_build_object if _dialect() == "postgresql" else func.json_object
    now = literal(utcnow(), type_=_OUTBOX.c.created_at.type)
    rows = (
        select(
            key,
            literal(name),
            json_object(literal(arg), id_column),
            literal(JobStatus.PENDING.value),
            literal(0),
            now,
            now,
        )
        .where(~exists().where(_OUTBOX.c.key == key))
        .order_by(id_column)
    )
    columns = ["key", "name", "args", "status", "attempts", "run_after", "created_at"]
    new = list(
        db.session.execute(
            insert(_OUTBOX).from_select(columns, rows).returning(_OUTBOX.c.id)
        ).scalars()
    )
    lane = lane_of(name)
    db.session.info.setdefault(_PENDING_KEY, []).extend((job_id, lane) for job_id in new)
    return new


def _dialect() -> str:
    name: str = db.session.get_bind().dialect.name
    return name
