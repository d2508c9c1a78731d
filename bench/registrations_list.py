"""How fast the staff's registrations list and its exports are with 100,000 registrations.

Seeds its own PostgreSQL database (``BENCH_LIST_DATABASE_URL``, default ``coop_bench_list``, so it
can run beside ``bench.dashboard``) with ``bench/seed.py``, logs in as the desk's staff member and
renders ``/desk/registrations/`` with each kind of search, filter, sort and page, through the Flask
test client: the query, Python and the template together. Prints the median time, the number of
SQL statements per page (it must not grow with the rows shown) and the rows found; then times the
CSV and XLSX exports of a filtered list.

    .venv/bin/python -m bench.registrations_list                 # 100,000 registrations
    .venv/bin/python -m bench.registrations_list --n 20000 --reuse
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.seed import bench_app, seed

LIST_URL = os.environ.get(
    "BENCH_LIST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/coop_bench_list"
)


def median_seconds(runs: int, run: Callable[[], None]) -> float:
    run()  # warm-up: caches, prepared plans, template compilation
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def statements_of(app: Flask, run: Callable[[], None]) -> int:
    seen: list[str] = []

    def count(*_args: object) -> None:
        seen.append("")

    with app.app_context():
        from coop.extensions import db

        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def fetch(client: FlaskClient, url: str) -> Callable[[], None]:
    def run() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        response.get_data()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="registrations to seed")
    parser.add_argument("--runs", type=int, default=7, help="measured runs per page")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a database that already has --n registrations"
    )
    args = parser.parse_args(argv)

    seeded = seed(args.n, LIST_URL, fresh=not args.reuse)
    print(
        f"database {make_url(LIST_URL).database}: {seeded.registrations:,} registrations"
        + (f" (seeded in {seeded.seconds:.1f} s)" if seeded.seconds else " (reused)")
    )
    app = bench_app(LIST_URL)
    client = app.test_client()
    client.get("/language/en")
    login = client.post(
        "/staff/login", data={"email": seeded.staff_email, "password": seeded.staff_password}
    )
    if login.status_code != 302:
        print(f"error: staff login failed ({login.status_code})", file=sys.stderr)
        return 1
    with app.app_context():
        from sqlalchemy import select

        from coop.accounts.models import User
        from coop.actions.models import Measure
        from coop.extensions import db
        from coop.registrations.models import Household, Registration

        sample = db.session.execute(
            select(User.name, Household.postcode, Household.street)
            .join(Registration, Registration.user_id == User.id)
            .join(Household, Household.id == Registration.household_id)
            .where(Registration.action_id == seeded.action_id)
            .order_by(Registration.id)
            .limit(1)
        ).one()
        measure_id = db.session.scalar(select(Measure.id).order_by(Measure.id).limit(1))
    name_part = sample.name.split()[-1][:5]
    action = seeded.action_id
    pages = [
        ("newest first (default)", "/desk/registrations/"),
        ("page 1000 (offset 49,950)", "/desk/registrations/?page=1000"),
        ("sorted by name", "/desk/registrations/?sort=name&direction=asc"),
        ("sorted by postcode", "/desk/registrations/?sort=postcode&direction=asc"),
        ("sorted by status", "/desk/registrations/?sort=status"),
        ("action + status", f"/desk/registrations/?action={action}&status=confirmed"),
        ("status withdrawn", "/desk/registrations/?status=withdrawn"),
        ("measure", f"/desk/registrations/?measure={measure_id}"),
        ("PC4", f"/desk/registrations/?pc4={sample.postcode[:4]}"),
        ("ownership", "/desk/registrations/?ownership=corporation_tenant"),
        (
            "action+status+PC4+ownership",
            f"/desk/registrations/?action={action}&status=confirmed"
            f"&pc4={sample.postcode[:4]}&ownership=owner",
        ),
        ("search: full postcode", f"/desk/registrations/?q={sample.postcode.replace(' ', '')}"),
        ("search: PC4", f"/desk/registrations/?q={sample.postcode[:4]}"),
        ("search: name part", f"/desk/registrations/?q={name_part}"),
        ("search: street", f"/desk/registrations/?q={sample.street[:6]}"),
        ("search: no match", "/desk/registrations/?q=zzzzqqq"),
        # As people type: without accents, two words, part of an email, a rare name.
        ("search: 'ozturk'", "/desk/registrations/?q=ozturk"),
        ("search: 'Öztürk'", "/desk/registrations/?q=%C3%96zt%C3%BCrk"),
        ("search: 'van dijk'", "/desk/registrations/?q=van+dijk"),
        ("search: 'celik kanaalstr'", "/desk/registrations/?q=celik+kanaalstr"),
        ("search: email part", "/desk/registrations/?q=.12345%40example"),
        ("search: 'nguyen'", "/desk/registrations/?q=nguyen"),
        # Too short for a trigram: the one narrow column is read whole.
        ("search: two letters 'ij'", "/desk/registrations/?q=ij"),
    ]
    print(f"\nmedian of {args.runs} runs after one warm-up\n")
    print(f"{'page':32} {'time':>10} {'SQL':>5} {'found':>9}")
    failed = False
    for label, url in pages:
        try:
            seconds = median_seconds(args.runs, fetch(client, url))
            statements = statements_of(app, fetch(client, url))
            html = client.get(url).get_data(as_text=True)
        except Exception as exc:
            failed = True
            print(f"{label:32} error: {exc}")
            continue
        found = re.search(r"([\d,]+) registrations? found", html)
        rows = html.count("data-registration-id=")
        print(
            f"{label:32} {seconds * 1000:7.1f} ms {statements:5d} "
            f"{found.group(1) if found else '0':>9} ({rows} shown)"
        )

    print()
    for label, url in [
        ("CSV, one PC4", f"/desk/registrations/export.csv?pc4={sample.postcode[:4]}"),
        ("XLSX, one PC4", f"/desk/registrations/export.xlsx?pc4={sample.postcode[:4]}"),
        ("CSV, everything", "/desk/registrations/export.csv"),
        ("XLSX, everything", "/desk/registrations/export.xlsx"),
    ]:
        started = time.perf_counter()
        response = client.get(url)
        size = len(response.get_data())
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            failed = True
        print(f"export {label:25} {seconds:7.2f} s {size / 1e6:6.1f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
