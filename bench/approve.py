"""Approving a proposal of about 20,000 homes: the request only records the approval, a job makes
the orders with its progress on the run's page, and other pages keep answering meanwhile.

Seeds its own PostgreSQL database (``bench/seed.py``: a desk, an action of ``--registrations``
households in 20 postcode areas, most of them matchable; default 22,000, about 20,000 homes, i.e.
household measures), adds eight installers working everywhere, closes registration and computes
a matching run in this process. Then it runs coop as in production: gunicorn (``--preload``,
``--workers``, default 2) and one ``worker.py``, with Redis and a local SMTP sink, and as a
logged-in staff member:

  1. times requests of two other pages (the action's public page and the run's progress JSON)
     before anything happens, after a few to warm up: the baseline;
  2. posts "approve" and times that request;
  3. until the run is approved, every ``--interval`` seconds reads the run's progress and times
     the two other pages: the latency while the job works;
  4. checks the result: an order line for every home of the proposal, each household's email
     enqueued once.

Prints the approve request's time, how long the job took, the progress seen on the page, and the
other pages' latency before and during the job (median, 95th percentile, maximum).

    .venv/bin/python -m bench.approve
    .venv/bin/python -m bench.approve --registrations 5000 --reuse
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import create_engine, text

from bench.seed import PC4S, STAFF_EMAIL, STAFF_PASSWORD, bench_app, seed
from bench.serve import ROOT, Browser, csrf_token, free_port, gunicorn, load_average

PG = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DATABASE = f"{PG}/coop_bench_approve"


def propose(registrations: int, reuse: bool) -> tuple[int, int, int]:
    """(action id, run id, homes in the proposal): the seeded action closed and matched."""
    seeded = seed(registrations, DATABASE, fresh=not reuse)
    app = bench_app(DATABASE)
    from coop.accounts.models import User
    from coop.actions import services as actions
    from coop.actions.catalogue import ensure_catalogue
    from coop.actions.models import Action, ActionStatus
    from coop.core import jobs
    from coop.extensions import db
    from coop.installers.models import Installer, InstallerOffer
    from coop.orders import services as orders
    from coop.orders.models import MatchingRun, RunStatus, RunTrigger

    with app.test_request_context():
        action = db.session.get(Action, seeded.action_id)
        assert action is not None
        staff = db.session.query(User).filter_by(email=STAFF_EMAIL).one()
        proposed = db.session.query(MatchingRun).filter_by(status=RunStatus.PROPOSED).first()
        if proposed is not None and reuse:
            return action.id, proposed.id, proposed.homes_covered or 0
        measures = ensure_catalogue()
        for number in range(8):
            db.session.add(
                Installer(
                    organisation_id=seeded.organisation_id,
                    company_name=f"Installateur {number + 1}",
                    kvk_number=f"{70000000 + number}",
                    contact_name="Planning",
                    email=f"planning@installateur-{number + 1}.example",
                    city="Utrecht",
                    service_area=f"{PC4S[0]}-{PC4S[-1]}",
                    offers=[
                        InstallerOffer(
                            measure_id=measures[code].id,
                            unit_price_cents=4000 + 97 * number + 13 * index,
                            homes_per_week=200,
                        )
                        for index, code in enumerate(
                            ["roof", "cavity_wall", "floor", "hybrid_heat_pump"]
                        )
                    ],
                )
            )
        db.session.commit()
        if action.status is ActionStatus.OPEN:
            actions.close_action(staff, action)
            jobs.dispatcher().run_pending()  # the batches
        run = orders.start_run(staff, action, RunTrigger.STAFF, use_registry_prices=True)
        started = time.perf_counter()
        assert orders.compute_run(run.id, time_limit_s=20) == "proposed"
        db.session.refresh(run)
        print(
            f"proposal: {run.homes_covered} of {run.homes_total} homes "
            f"({len({p.batch_id for p in run.proposals})} groups) "
            f"computed in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return action.id, run.id, run.homes_covered or 0


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=22_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--reuse", action="store_true", help="reuse a seeded proposal")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait at most")
    args = parser.parse_args(argv)

    print(f"load average before: {load_average()}", flush=True)
    action_id, run_id, homes = propose(args.registrations, args.reuse)
    from redis import Redis

    Redis.from_url(REDIS).flushdb()
    smtp_port = free_port()
    env: dict[str, Any] = {
        "COOP_ENV": "production",
        "DATABASE_URL": DATABASE,
        "REDIS_URL": REDIS,
        "SECRET_KEY": secrets.token_hex(32),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "BASE_URL": "http://localhost:8000",
        "LOG_LEVEL": "WARNING",
    }
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    web = gunicorn("coop:create_app()", env, workers=args.workers, log_name="approve-web")
    worker_log = open(f"/tmp/bench-approve-worker-{os.getpid()}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        staff = Browser(web.port)
        login = staff.get("/staff/login")
        answer = staff.post(
            "/staff/login",
            {
                "email": STAFF_EMAIL,
                "password": STAFF_PASSWORD,
                "csrf_token": csrf_token(login.body),
            },
        )
        assert answer.status == 302, f"login answered {answer.status}"
        run_url = f"/desk/actions/{action_id}/matching/{run_id}"
        public = Browser(web.port)
        others = [
            lambda: public.get("/actions/utrecht-isoleert"),
            lambda: staff.get(f"{run_url}/status"),
        ]

        def sample() -> list[float]:
            times = []
            for page in others:
                answer = page()
                assert answer.status == 200, answer.status
                times.append(answer.seconds)
            return times

        for _ in range(5):  # each worker's first pages compile templates and queries
            sample()
        before = [t for _ in range(20) for t in sample()]
        page = staff.get(run_url)
        approved = staff.post(f"{run_url}/approve", {"csrf_token": csrf_token(page.body)})
        assert approved.status == 302, f"approve answered {approved.status}"
        started = time.perf_counter()
        during: list[float] = []
        progress: list[int] = []
        while True:
            state = json.loads(staff.get(f"{run_url}/status").body)
            if not progress or progress[-1] != state["progress"]:
                progress.append(state["progress"])
            if state["status"] == "approved":
                break
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"not approved after {args.timeout:.0f} s: {state}")
            during.extend(sample())
            time.sleep(args.interval)
        job_seconds = time.perf_counter() - started
        page = staff.get(run_url)
        assert 'id="approved"' in page.body
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        worker_log.close()
        web.stop()
        sink.terminate()
        sink.wait()

    with create_engine(DATABASE).connect() as connection:
        lines = connection.execute(
            text(
                "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE o.run_id = :run"
            ),
            {"run": run_id},
        ).scalar_one()
        orders_made = connection.execute(
            text("SELECT count(*) FROM orders WHERE run_id = :run"), {"run": run_id}
        ).scalar_one()
        households = connection.execute(
            text(
                "SELECT count(DISTINCT l.registration_id) FROM order_lines l "
                "JOIN orders o ON o.id = l.order_id WHERE o.run_id = :run"
            ),
            {"run": run_id},
        ).scalar_one()
        emails = connection.execute(
            text("SELECT count(*) FROM outbox_jobs WHERE key LIKE :key"),
            {"key": f"assigned:{run_id}:%"},
        ).scalar_one()
    Redis.from_url(REDIS).flushdb()
    print(
        f"\napproval of {homes} homes (gunicorn --preload -w {args.workers}, one worker.py, "
        f"PostgreSQL, Redis):\n"
        f"  approve request: {approved.seconds * 1000:.0f} ms (it records the approval and "
        f"enqueues the job)\n"
        f"  the job: {orders_made} orders, {lines} order lines, {households} households' emails "
        f"enqueued ({emails} outbox rows), in {job_seconds:.1f} s after the request\n"
        f"  progress seen on the page: {', '.join(f'{p}%' for p in progress)}\n"
        f"  other pages before: {percentiles(before)}\n"
        f"  other pages while the job works: {percentiles(during)}\n"
        f"load average after: {load_average()}"
    )
    ok = lines == homes and emails == households
    if not ok:
        print(f"MISMATCH: {lines} lines for {homes} homes, {emails} emails for {households}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
