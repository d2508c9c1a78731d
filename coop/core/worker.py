"""The RQ worker that runs the outbox's jobs (``python worker.py`` starts it).

It runs jobs in its own process (RQ's ``SimpleWorker``), not in a work horse forked per job:
every job reuses the worker's database and SMTP connections (one of each per sender thread of
a large chunk, see ``coop.core.execution``). While a job
runs, a thread renews its heartbeat every few seconds with a short time to live, so a worker
killed in the middle of a job (SIGKILL, a machine gone) leaves an entry in RQ's
``StartedJobRegistry`` that expires within ``ABANDONED_AFTER`` seconds; the maintenance of any
worker on the same queues (every ``maintenance_interval`` seconds, also while idle) then hands
the job to RQ's retry, which queues it again at once (``RQ_RETRY_INTERVALS[0]`` is 0): within
about 35 s of the kill. The job's outbox rows say what was done already.

It listens to the lanes' queues in priority order (urgent, default, bulk): RQ looks at the
first queue first before every job.

It outlives Redis: it waits for Redis before it starts, and when Redis goes away while it works
(RQ's own worker then quits), it waits until Redis answers again and starts a new RQ worker.
Nothing is lost meanwhile: jobs wait in the outbox, and the sweep hands over again what a
restarted Redis no longer holds. Only a stop signal (or the end of a burst) ends it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job

from coop.core import mail
from coop.core.jobs import LANES, queue_names, set_worker_app

log = logging.getLogger(__name__)

# Seconds between attempts to reach Redis: quick at first, then every half minute.
REDIS_WAIT = (0.5, 1, 2, 5, 10, 30)
# A running job's heartbeat is renewed this often, and its entry in the StartedJobRegistry
# expires this long after the last one (RQ's own: 30 s and 90 s, or the job's timeout + 60 s
# for a SimpleWorker).
HEARTBEAT_EVERY = 5
ABANDONED_AFTER = 20


class PromptStop:
    """RQ listens for its commands (``rq.command``) in a thread that polls every 60 s, and
    redis-py 8 stops that thread by waiting for its poll: every burst and every shutdown took up
    to a minute. Poll every second instead; it costs one round trip a second."""

    connection: Redis
    pubsub: Any
    pubsub_thread: Any
    pubsub_channel_name: str

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})  # type: ignore[attr-defined]
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,  # type: ignore[attr-defined]
        )

    def stop_listening(self) -> None:
        """Stop the command thread also when Redis is away (RQ's teardown then fails before)."""
        thread = getattr(self, "pubsub_thread", None)
        if thread is None or not thread.is_alive():
            return
        with contextlib.suppress(RedisError):  # Redis away: the thread stops all the same
            self.pubsub.unsubscribe()
        thread.stop()


class CoopWorker(PromptStop, SimpleWorker):
    """RQ's worker without a work horse, with a heartbeat thread while a job runs; it remembers
    whether it was asked to stop (SIGTERM, SIGINT)."""

    stop_signalled = False
    _beat: tuple[threading.Thread, threading.Event] | None = None

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return ABANDONED_AFTER

    def prepare_execution(self, job: Job) -> Execution:
        execution = super().prepare_execution(job)
        stop = threading.Event()
        thread = threading.Thread(
            target=self._keep_beating, args=(job, execution, stop), daemon=True, name="heartbeat"
        )
        thread.start()
        self._beat = (thread, stop)
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            if self._beat is not None:
                thread, stop = self._beat
                self._beat = None
                stop.set()
                thread.join(timeout=5)

    def _keep_beating(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            try:
                self.maintain_heartbeats(job, execution)
            except RedisError as exc:  # the job goes on; Redis may be back for the next beat
                log.warning("heartbeat of job %s failed: %s", job.id, exc)


def redis_connection(url: str) -> Redis:
    # No socket timeout: the worker blocks on the queue for minutes. Keepalive and a health
    # check find a connection that died without a word (a network cut rather than a restart).
    return Redis.from_url(
        url, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=30
    )


def wait_for_redis(connection: Redis, stop: threading.Event) -> bool:
    """Block until Redis answers (True) or a stop is asked for (False)."""
    attempt = 0
    while not stop.is_set():
        try:
            connection.ping()
            if attempt:
                log.info("Redis answers again after %d attempt(s)", attempt)
            return True
        except RedisError as exc:
            if attempt == 0:
                log.warning("waiting for Redis: %s", exc)
            delay = REDIS_WAIT[min(attempt, len(REDIS_WAIT) - 1)]
            attempt += 1
            stop.wait(delay)
    return False


def run_worker(
    app: Flask,
    *,
    burst: bool = False,
    maintenance_interval: int = 15,
    name: str | None = None,
    lanes: tuple[str, ...] = LANES,
) -> int:
    """Work until stopped (or, with ``burst``, until the queues are empty); returns the exit
    code: 0, or 1 when a burst could not finish because Redis went away."""
    try:
        return _run(app, burst, maintenance_interval, name, lanes)
    finally:
        mail.keep_connections(False)


def _run(
    app: Flask, burst: bool, maintenance_interval: int, name: str | None, lanes: tuple[str, ...]
) -> int:
    set_worker_app(app)
    mail.keep_connections()
    names = queue_names(app)
    stop = threading.Event()
    incarnation = 0
    while True:
        _stop_on_signals(stop)
        connection = redis_connection(app.config["REDIS_URL"])
        if not wait_for_redis(connection, stop):
            return 0
        worker = CoopWorker(
            [Queue(names[lane], connection=connection) for lane in LANES if lane in lanes],
            connection=connection,
            name=f"{name}-{incarnation}" if name and incarnation else name,
            maintenance_interval=maintenance_interval,
            # RQ blocks on the queues for worker_ttl - 15 s at a time and runs its maintenance
            # (which re-queues the jobs of dead workers) only between two waits: wake up for it.
            worker_ttl=maintenance_interval + 15,
            job_monitoring_interval=HEARTBEAT_EVERY,
        )
        failed: RedisError | None = None
        try:
            worker.work(burst=burst, with_scheduler=True)
        except RedisError as exc:  # at the start or in the teardown, where RQ does not catch it
            failed = exc
        finally:
            worker.stop_listening()
            connection.close()
        if worker.stop_signalled or stop.is_set():
            return 0
        if failed is None and _answers(app.config["REDIS_URL"]):
            if burst:
                return 0
            # RQ quit for a reason of its own (it logged it): a worker must go on working.
            log.error("the RQ worker quit; starting a new one")
        else:
            log.warning("Redis went away (%s); the worker waits for it", failed or "no answer")
            if burst:
                return 1
        incarnation += 1


def _answers(url: str) -> bool:
    connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(connection.ping())
    except RedisError:
        return False
    finally:
        connection.close()


def _stop_on_signals(stop: threading.Event) -> None:
    """Between two RQ workers (RQ installs its own handlers while it works)."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
