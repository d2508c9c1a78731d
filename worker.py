"""Start an RQ worker with the coop app loaded: `python worker.py` (REDIS_URL must be set).

It takes the lanes' queues in priority order (urgent, default, bulk; `--lanes` picks some) and
runs each job in its own process, over database and SMTP connections it keeps (one of each per
sender thread, `OUTBOX_SENDERS`). The worker runs
RQ's scheduler too, so retries with a pause (Retry intervals) are re-queued, and its
maintenance re-queues jobs of workers that died (SIGKILL) once their heartbeat expires (20 s).
It waits for Redis, and when Redis goes away it waits for it to come back and goes on
(coop/core/worker.py). Jobs only carry outbox ids; the database row says what to do and
whether it was done.
"""

from __future__ import annotations

import argparse
import logging
import sys

from coop import create_app
from coop.core.jobs import LANES
from coop.core.worker import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument(
        "--maintenance-interval",
        type=int,
        default=15,
        help="seconds between clean-ups of dead workers' jobs (RQ's default is 600)",
    )
    parser.add_argument("--name", default=None, help="worker name (default: RQ chooses)")
    parser.add_argument(
        "--lanes",
        default=",".join(LANES),
        help="the lanes to work on, always taken urgent first, bulk last (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    lanes = tuple(lane.strip() for lane in args.lanes.split(",") if lane.strip())
    unknown = [lane for lane in lanes if lane not in LANES]
    if unknown or not lanes:
        print(f"unknown lane(s) {unknown}; choose from {', '.join(LANES)}", file=sys.stderr)
        return 2

    app = create_app()
    if not app.config.get("REDIS_URL"):
        print("REDIS_URL is not set: without it coop runs jobs in-process.", file=sys.stderr)
        return 2
    logging.getLogger("rq.worker").setLevel(logging.INFO)
    return run_worker(
        app,
        burst=args.burst,
        maintenance_interval=args.maintenance_interval,
        name=args.name,
        lanes=lanes,
    )


if __name__ == "__main__":
    sys.exit(main())
