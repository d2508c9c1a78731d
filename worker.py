"""Start an RQ worker with the coop app loaded: `python worker.py` (REDIS_URL must be set).

The worker runs RQ's scheduler too, so retries with a pause (Retry intervals) are re-queued,
and its maintenance re-queues jobs of workers that died (SIGKILL) once their heartbeat expires.
Jobs only carry outbox ids; the database row says what to do and whether it was done.
"""

from __future__ import annotations

import argparse
import logging
import sys

from redis import Redis
from rq import Queue, Worker

from coop import create_app
from coop.core.jobs import set_worker_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument(
        "--maintenance-interval",
        type=int,
        default=60,
        help="seconds between clean-ups of dead workers' jobs (RQ's default is 600)",
    )
    parser.add_argument("--name", default=None, help="worker name (default: RQ chooses)")
    args = parser.parse_args(argv)

    app = create_app()
    redis_url = app.config.get("REDIS_URL")
    if not redis_url:
        print("REDIS_URL is not set: without it coop runs jobs in-process.", file=sys.stderr)
        return 2
    set_worker_app(app)
    connection = Redis.from_url(redis_url)
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    worker = Worker(
        [queue],
        connection=connection,
        name=args.name,
        maintenance_interval=args.maintenance_interval,
    )
    logging.getLogger("rq.worker").setLevel(logging.INFO)
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
