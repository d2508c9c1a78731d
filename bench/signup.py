"""Sign-ups through coop's real form against a bare Flask + SQLAlchemy app doing one INSERT,
and the memory of a web worker against the bare app's, on the same gunicorn settings.

Both apps run under gunicorn as the image runs coop (``--preload``, sync workers; ``--workers``,
default 2), against the same PostgreSQL server (a database each, made afresh), and are driven
by the same client in this process: ``--clients`` threads (default 4), each a visitor that
loads the form page (for the session cookie and the CSRF token) and posts it, one new
connection per request. coop runs in its production shape: ``COOP_ENV=production``, Redis for
the rate limits (counted as always; only the sign-up limit per address is raised, since every
sign-up comes from 127.0.0.1) and for the job queue (no worker runs: the confirmations wait in
Redis, which is flushed afterwards). The bare app renders a form with Flask-WTF's token and
inserts one row with Flask-SQLAlchemy (``bench/bare_app.py``).

Runs alternate, coop then bare, ``--runs`` times (default 3) with ``--signups`` each (default
1,000), after a warm-up of each. Printed: sign-ups per second per run, the ratio coop / bare of
each pair and their median (target: at least 0.7). Beside it, the server's CPU time per sign-up
(the gunicorn workers' and their PostgreSQL connections', from /proc), which other work on a
shared machine hardly changes: bare / coop is what the throughput ratio tends to where the
server's CPU is the limit. Then each gunicorn worker's resident set size once it has served its
first requests (sign-ups one at a time until every worker has used CPU), and the ratio of the
means (target: at most 1.5). The load average is printed: other work on the machine slows both
apps within a pair, but not alike (coop's longer requests suffer more); repeat the run when it
is high. ``--coop-root`` runs coop from another checkout (an older commit) to compare.

    .venv/bin/python -m bench.signup
    .venv/bin/python -m bench.signup --signups 2500 --runs 2 --workers 2 --clients 4
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.seed import recreate_database, seed
from bench.serve import (
    ROOT,
    Browser,
    Server,
    cpu_ticks,
    csrf_token,
    gunicorn,
    load_average,
    pss_mib,
    rss_mib,
)

PG = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# Database names of their own (BENCH_SIGNUP_DB, BENCH_BARE_DB) let two runs share a server.
COOP_DB = f"{PG}/{os.environ.get('BENCH_SIGNUP_DB', 'coop_bench_signup')}"
BARE_DB = f"{PG}/{os.environ.get('BENCH_BARE_DB', 'coop_bench_bare')}"
SEEDED = 10_000
SLUG = "utrecht-isoleert"  # bench/seed.py's open action (postcode areas 3511-3530)

_numbers = itertools.count(1)
_numbers_lock = threading.Lock()


def next_number() -> int:
    with _numbers_lock:
        return next(_numbers)


# No S (SA, SD and SS are never given out in postcodes) and no A: the seeded households' postcodes
# end in A.
LETTERS = "BCDEGHJKLMNPRTVWXZ"


def household(n: int) -> dict[str, str]:
    """A different address and email for every sign-up."""
    pair, area = divmod(n, 20)
    number, pair = divmod(pair, len(LETTERS) ** 2)
    letters = LETTERS[pair // len(LETTERS)] + LETTERS[pair % len(LETTERS)]
    return {
        "name": f"Bewoner {letters.lower()}",
        "email": f"bench-signup-{n}@example.nl",
        "phone": "06 12345678",
        "postcode": f"35{11 + area:02d} {letters}",
        "house_number": str(number + 1),
        "street": "Hondsrug",
        "city": "Utrecht",
        "dwelling_type": "terraced",
        "build_year": "1978",
        "ownership": "owner",
        "energy_label": "D",
        "consent": "y",
    }


@dataclass
class App:
    name: str
    server: Server
    path: str
    extra: dict[str, str]
    done_to: str  # where a successful POST redirects
    database: str
    signed_up: int = 0

    def sign_up(self) -> None:
        browser = Browser(self.server.port)
        page = browser.get(self.path)
        if page.status != 200:
            raise RuntimeError(f"{self.name}: GET {self.path} answered {page.status}")
        form = {**household(next_number()), **self.extra, "csrf_token": csrf_token(page.body)}
        answer = browser.post(self.path, form)
        if answer.status != 302 or self.done_to not in answer.headers.get("location", ""):
            errors = re.findall(r"field-error[^>]*>(.*?)</p>", answer.body)
            raise RuntimeError(f"{self.name}: POST answered {answer.status}: {errors}")
        with _numbers_lock:
            self.signed_up += 1


def database_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` (this machine's server)."""
    url = make_url(database)
    with create_engine(url.set(database="postgres")).connect() as connection:
        return list(
            connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                {"name": url.database},
            ).scalars()
        )


def server_ticks(app: App) -> int:
    """CPU time used so far by the app's gunicorn workers and its database connections."""
    total = 0
    for pid in [*app.server.worker_pids(), *database_backends(app.database)]:
        with contextlib.suppress(FileNotFoundError):  # a connection closed meanwhile
            total += cpu_ticks(pid)
    return total


def measured(app: App, count: int, clients: int) -> tuple[float, float]:
    """(sign-ups per second, server CPU milliseconds per sign-up) of ``count`` sign-ups."""
    ticks = server_ticks(app)
    rate = run(app.sign_up, count, clients)
    used = server_ticks(app) - ticks
    return rate, used * 1000 / os.sysconf("SC_CLK_TCK") / count


def run(work: Callable[[], None], count: int, clients: int) -> float:
    """``count`` sign-ups by ``clients`` threads; returns sign-ups per second."""
    left = itertools.count()
    errors: list[BaseException] = []

    def visitor() -> None:
        while next(left) < count and not errors:
            try:
                work()
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=visitor) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return count / seconds


def memory(app: App) -> tuple[float, float]:
    """(mean RSS, mean PSS) of the workers, MiB, once each has served a request: sign-ups
    are sent one by one until every worker has used CPU time since start-up."""
    pids = app.server.worker_pids()
    idle = {pid: cpu_ticks(pid) for pid in pids}
    for _ in range(200):
        if all(cpu_ticks(pid) > idle[pid] for pid in pids):
            break
        app.sign_up()
    return (
        statistics.mean(rss_mib(pid) for pid in pids),
        statistics.mean(pss_mib(pid) for pid in pids),
    )


def coop_env() -> dict[str, str]:
    return {
        "COOP_ENV": "production",
        "DATABASE_URL": COOP_DB,
        "REDIS_URL": REDIS,
        "SECRET_KEY": secrets.token_hex(32),
        "MAIL_SERVER": "127.0.0.1",  # nobody sends: no worker runs
        "BASE_URL": "http://localhost:8000",
        "RATELIMIT_SIGNUP": "1000000 per hour",
        "LOG_LEVEL": "WARNING",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signups", type=int, default=1000, help="per run (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--warm-up", type=int, default=50, help="sign-ups before measuring")
    parser.add_argument(
        "--coop-root",
        type=Path,
        default=ROOT,
        help="run coop from this checkout (e.g. an older commit, to compare); default this one",
    )
    args = parser.parse_args(argv)

    print(f"load average before: {load_average()}", flush=True)
    # The desk, its open action and its measures, and 10,000 households signed up before (as
    # in an action under way; bench/seed.py analyses the tables after writing them). On empty
    # tables PostgreSQL plans each prepared lookup as a scan of the whole table, and this
    # machine's server runs no autovacuum to plan them again as the tables grow.
    seed(SEEDED, COOP_DB)
    recreate_database(BARE_DB)
    os.environ["BARE_DATABASE_URL"] = BARE_DB
    from bench.bare_app import create_schema

    create_schema()
    from redis import Redis

    Redis.from_url(REDIS).flushdb()

    coop = gunicorn(
        "coop:create_app()",
        coop_env(),
        workers=args.workers,
        log_name="coop",
        cwd=args.coop_root,
    )
    bare = gunicorn(
        "bench.bare_app:create_app()",
        {"BARE_DATABASE_URL": BARE_DB},
        workers=args.workers,
        log_name="bare",
    )
    try:
        # Right after start-up, before any request: what a worker is once forked from the master
        # that loaded the app (--preload).
        time.sleep(1)
        started = {
            name: statistics.mean(rss_mib(pid) for pid in server.worker_pids())
            for name, server in (("coop", coop), ("bare", bare))
        }
        page = Browser(coop.port).get(f"/actions/{SLUG}/register").body
        measure = re.search(r'name="measure_(\d+)"', page)
        assert measure is not None, "no measure on the sign-up form"
        apps = [
            App(
                "coop",
                coop,
                f"/actions/{SLUG}/register",
                {f"measure_{measure.group(1)}": "y", f"quantity_{measure.group(1)}": "45"},
                f"/actions/{SLUG}/registered",
                COOP_DB,
            ),
            App("bare", bare, "/signup", {}, "/signup", BARE_DB),
        ]
        memories = {app.name: memory(app) for app in apps}
        for app in apps:
            run(app.sign_up, args.warm_up, args.clients)

        rates: dict[str, list[float]] = {"coop": [], "bare": []}
        cpu: dict[str, list[float]] = {"coop": [], "bare": []}
        for number in range(1, args.runs + 1):
            for app in apps:
                rate, milliseconds = measured(app, args.signups, args.clients)
                rates[app.name].append(rate)
                cpu[app.name].append(milliseconds)
            print(
                f"run {number}: coop {rates['coop'][-1]:.1f}/s, bare {rates['bare'][-1]:.1f}/s, "
                f"ratio {rates['coop'][-1] / rates['bare'][-1]:.2f}; server CPU per sign-up "
                f"coop {cpu['coop'][-1]:.1f} ms, bare {cpu['bare'][-1]:.1f} ms "
                f"(load {load_average()})",
                flush=True,
            )
    finally:
        coop.stop()
        bare.stop()

    with create_engine(COOP_DB).connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM registrations")).scalar_one()
    stored -= SEEDED
    expected = apps[0].signed_up
    ratios = [c / b for c, b in zip(rates["coop"], rates["bare"], strict=True)]
    print(
        f"\nsign-ups ({args.signups} per run, {args.clients} clients, gunicorn --preload "
        f"-w {args.workers}, PostgreSQL, coop with Redis): coop median "
        f"{statistics.median(rates['coop']):.1f}/s, bare median "
        f"{statistics.median(rates['bare']):.1f}/s; ratio per pair "
        f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f} "
        f"(target >= 0.7); {stored} registrations stored (expected {expected})"
    )
    coop_cpu, bare_cpu = statistics.median(cpu["coop"]), statistics.median(cpu["bare"])
    print(
        f"server CPU per sign-up (gunicorn workers and their PostgreSQL connections), median: "
        f"coop {coop_cpu:.1f} ms, bare {bare_cpu:.1f} ms; bare / coop {bare_cpu / coop_cpu:.2f} "
        f"(what the throughput ratio tends to where the server's CPU is the limit)"
    )
    print(
        f"web worker memory right after start-up, before any request (mean of {args.workers} "
        f"workers): coop RSS {started['coop']:.1f} MiB, bare RSS {started['bare']:.1f} MiB, "
        f"ratio {started['coop'] / started['bare']:.2f} (target <= 1.5)"
    )
    (coop_rss, coop_pss), (bare_rss, bare_pss) = memories["coop"], memories["bare"]
    print(
        f"web worker memory after start-up and its first requests (mean of "
        f"{args.workers} workers): coop RSS {coop_rss:.1f} MiB, bare RSS {bare_rss:.1f} MiB, "
        f"ratio {coop_rss / bare_rss:.2f} (target <= 1.5); PSS {coop_pss:.1f} / "
        f"{bare_pss:.1f} MiB"
    )
    print(f"load average after: {load_average()}")
    Redis.from_url(REDIS).flushdb()
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
