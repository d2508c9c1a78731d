"""Handing committed outbox rows to those who run them: RQ in chunks per lane
(``RQDispatcher``), or this process once the response has gone out (``InlineDispatcher``, the
embedded default). A lost hand-over is found again by the sweep (``coop.core.jobs``)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from coop.core.models import OutboxJob
from coop.core.outbox import BULK, DEFAULT, LANES, URGENT, lane_of
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


# RQ retries a failed or killed job with these pauses (seconds); the sweep covers the rest.
# The first retry comes at once: RQ re-queues the job of a dead worker with these pauses too,
# and a pause would wait for RQ's scheduler, whose lock the dead worker may hold for 61 s more.
RQ_RETRY_INTERVALS = [0, 30, 300, 900]


# A just-committed row is handed over by the commit itself; the sweep leaves it alone this long.
HANDOVER_GRACE = timedelta(seconds=10)


# How many rows handed over lately one sweep asks the queue about (one round trip for all).
LOST_CHECK_LIMIT = 5000


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
    # Runs one outbox row (``coop.core.jobs.execute``, given by the app's set-up: the dispatcher
    # stands below the execution it hands rows to).
    run: Callable[[int], Any]

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
                outcome = self.run(job_id)
            except Exception:  # the row keeps the error; the sweep tries again
                log.exception("job %s failed in-process", job_id)
            else:
                if outcome in ("busy", "not-due"):
                    # Now and then a row handed over here stays pending until the sweep (seen
                    # in a browser test, cause not found): say so, so that the log tells why.
                    log.warning("job %s handed over in-process was not run: %s", job_id, outcome)
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
