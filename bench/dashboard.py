"""How fast the desk's figures are with 100,000 registrations in PostgreSQL.

Seeds a separate database (``BENCH_DATABASE_URL``, default ``coop_bench``) with ``bench/seed.py``,
then measures in the same run:

  (a) the raw SQL aggregate queries a dashboard needs, written by hand and executed directly
      with psycopg: the floor a page cannot go below;
  (b) the dashboard pages (per action and per neighbourhood) through the Flask test client, as a
      logged-in staff member: queries, Python, charts and template together;
  (c) the registrations list ``/desk/registrations/`` (if it exists), plain and filtered, against
      its own raw SQL (a count and one page of 50 with household and resident).

Prints the median of several runs and the ratio page / raw SQL for each; exits non-zero when a
page fails or its figures do not match the database.

    .venv/bin/python -m bench.dashboard              # 100,000 registrations, 7 runs
    .venv/bin/python -m bench.dashboard --n 20000 --runs 5 --reuse
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.seed import BENCH_URL, Seeded, bench_app, seed

LEFT = "('declined', 'withdrawn', 'expired')"
PARTICIPATING = (
    "('confirmed', 'assigned', 'survey_planned', 'quoted', 'accepted', 'installed', 'completed')"
)
RANK = (
    "CASE sc.to_status WHEN 'pending_confirmation' THEN 0 WHEN 'confirmed' THEN 1 "
    "WHEN 'assigned' THEN 2 WHEN 'survey_planned' THEN 3 WHEN 'quoted' THEN 4 "
    "WHEN 'accepted' THEN 5 WHEN 'installed' THEN 6 WHEN 'completed' THEN 7 ELSE 0 END"
)


def dashboard_sql(scope: str, households: str) -> list[str]:
    """The aggregates of one dashboard, for a WHERE clause ``scope`` over registrations r (and
    households h when ``households`` joins them)."""
    return [
        # sign-ups per hour (folded into Amsterdam days afterwards)
        f"SELECT date_trunc('hour', r.created_at) AS hour, count(*) FROM registrations r "
        f"{households} WHERE {scope} GROUP BY hour",
        # status, PC4, ownership, dwelling type
        "SELECT r.status, h.pc4, h.ownership, h.dwelling_type, count(*) FROM registrations r "
        f"JOIN households h ON h.id = r.household_id WHERE {scope} GROUP BY 1, 2, 3, 4",
        # active registrations per measure
        "SELECT am.measure_id, count(*) FROM registration_measures rm "
        "JOIN registrations r ON r.id = rm.registration_id "
        f"JOIN action_measures am ON am.id = rm.action_measure_id {households} "
        f"WHERE {scope} AND r.status NOT IN {LEFT} GROUP BY 1",
        # how far those who stepped out got
        "SELECT status, furthest, count(*) FROM ("
        f"SELECT r.status, coalesce(max({RANK}), 0) AS furthest FROM registrations r {households} "
        "LEFT JOIN status_changes sc ON sc.registration_id = r.id "
        f"WHERE {scope} AND r.status IN {LEFT} GROUP BY r.id, r.status) t GROUP BY 1, 2",
    ]


def action_sql(seeded: Seeded) -> list[str]:
    scope = f"r.action_id = {int(seeded.action_id)}"
    return [
        *dashboard_sql(scope, ""),
        # participants per measure for the price tiers
        "SELECT rm.action_measure_id, count(*) FROM registration_measures rm "
        "JOIN registrations r ON r.id = rm.registration_id "
        f"WHERE {scope} AND r.status IN {PARTICIPATING} GROUP BY 1",
    ]


def neighbourhood_sql(seeded: Seeded, pc4s: list[str]) -> list[str]:
    areas = ", ".join(f"'{p}'" for p in pc4s)
    scope = (
        "r.action_id IN (SELECT id FROM actions WHERE organisation_id = "
        f"{int(seeded.organisation_id)}) AND h.pc4 IN ({areas})"
    )
    join = "JOIN households h ON h.id = r.household_id"
    return [
        *dashboard_sql(scope, join),
        f"SELECT count(DISTINCT r.household_id) FROM registrations r {join} "
        f"WHERE {scope} AND r.status NOT IN {LEFT}",
        f"SELECT r.action_id, count(*) FROM registrations r {join} "
        f"WHERE {scope} AND r.status NOT IN {LEFT} GROUP BY 1",
    ]


def list_sql(seeded: Seeded, where: str = "") -> list[str]:
    """What a list page must read at least: the count, then 50 rows with their details."""
    scope = (
        "r.action_id IN (SELECT id FROM actions WHERE organisation_id = "
        f"{int(seeded.organisation_id)}){where}"
    )
    page = (
        "SELECT r.id FROM registrations r JOIN households h ON h.id = r.household_id "
        "JOIN users u ON u.id = r.user_id "
        f"WHERE {scope} ORDER BY r.created_at DESC, r.id DESC LIMIT 50"
    )
    # The count joins the households only when a filter is on them (as the page does).
    households = "JOIN households h ON h.id = r.household_id" if "h." in where else ""
    return [
        f"SELECT count(r.id) FROM registrations r {households} WHERE {scope}",
        "SELECT r.*, h.*, u.* FROM registrations r JOIN households h ON h.id = r.household_id "
        "JOIN users u ON u.id = r.user_id "
        f"WHERE {scope} ORDER BY r.created_at DESC, r.id DESC LIMIT 50",
        f"SELECT rm.* FROM registration_measures rm WHERE rm.registration_id IN ({page})",
    ]


def median_seconds(runs: int, work: Callable[[], None]) -> float:
    work()  # warm caches (PostgreSQL's buffers, Jinja's compiled templates)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_runner(connection: psycopg.Connection[Any], statements: list[str]) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()

    return run


class PageError(RuntimeError):
    pass


def page_runner(
    client: FlaskClient, url: str, check: Callable[[str], None] | None = None
) -> Callable[[], None]:
    def run() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise PageError(f"GET {url}: {response.status_code}")
        if check is not None:
            check(response.get_data(as_text=True))

    return run


def queries_of(app: Flask, run: Callable[[], None]) -> int:
    """How many SQL statements one request sends (login and session included)."""
    seen: list[str] = []

    def count(*params: Any) -> None:
        seen.append(params[2])

    with app.app_context():
        from coop.extensions import db

        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def figure(page: str, figure_id: str) -> int:
    match = re.search(rf'id="{figure_id}">\s*([\d.,]+)\s*<', page)
    if match is None:
        raise PageError(f"no figure {figure_id} on the page")
    return int(match.group(1).replace(".", "").replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="registrations to seed")
    parser.add_argument("--runs", type=int, default=7, help="measured runs per figure")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a database that already has --n registrations"
    )
    args = parser.parse_args(argv)

    seeded = seed(args.n, BENCH_URL, fresh=not args.reuse)
    print(
        f"database {make_url(BENCH_URL).database}: {seeded.registrations:,} registrations"
        + (f" (seeded in {seeded.seconds:.1f} s)" if seeded.seconds else " (reused)")
    )
    app = bench_app(BENCH_URL)
    client = app.test_client()
    response = client.post(
        "/staff/login", data={"email": seeded.staff_email, "password": seeded.staff_password}
    )
    if response.status_code != 302:
        print(f"error: staff login failed ({response.status_code})", file=sys.stderr)
        return 1
    with app.app_context():
        from coop.actions.models import Neighbourhood
        from coop.extensions import db

        neighbourhood = db.session.get(Neighbourhood, seeded.neighbourhood_ids[0])
        assert neighbourhood is not None
        pc4s = neighbourhood.pc4_list

    raw_url = make_url(BENCH_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(raw_url, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM registrations WHERE action_id = {seeded.action_id}")
        row = cursor.fetchone()
        in_action = int(row[0]) if row else 0

    def action_total(page: str) -> None:
        if figure(page, "figure-total") != in_action:
            raise PageError(
                f"dashboard shows {figure(page, 'figure-total')}, database has {in_action}"
            )

    measurements: list[tuple[str, list[str], str, Callable[[str], None] | None]] = [
        (
            "dashboard per action",
            action_sql(seeded),
            f"/desk/dashboard/actions/{seeded.action_id}",
            action_total,
        ),
        (
            "dashboard per neighbourhood",
            neighbourhood_sql(seeded, pc4s),
            f"/desk/dashboard/neighbourhoods/{neighbourhood.id}",
            None,
        ),
    ]
    has_list = client.get("/desk/registrations/").status_code == 200
    if has_list:
        measurements += [
            ("registrations list", list_sql(seeded), "/desk/registrations/", None),
            (
                "registrations list, filtered",
                list_sql(
                    seeded,
                    f" AND r.action_id = {seeded.action_id} AND r.status = 'confirmed' "
                    f"AND h.pc4 = '{pc4s[0]}'",
                ),
                f"/desk/registrations/?action={seeded.action_id}&status=confirmed&pc4={pc4s[0]}",
                None,
            ),
        ]

    failed = False
    print(f"\nmedian of {args.runs} runs after one warm-up\n")
    print(f"{'':32} {'raw SQL':>10} {'page':>10} {'page/raw':>9} {'queries':>8}")
    for name, statements, url, check in measurements:
        try:
            raw = median_seconds(args.runs, raw_runner(connection, statements))
            queries = queries_of(app, page_runner(client, url, check))
            page = median_seconds(args.runs, page_runner(client, url, check))
        except Exception as exc:
            failed = True
            print(f"{name:32} error: {exc}")
            continue
        print(
            f"{name:32} {raw * 1000:8.1f} ms {page * 1000:7.1f} ms {page / raw:8.1f}x {queries:8d}"
        )
    if not has_list:
        print("registrations list: /desk/registrations/ does not exist (yet); not measured")
    connection.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
