"""A PostgreSQL database with many registrations, for the benchmarks.

``seed(n)`` (re)creates the database named in ``BENCH_DATABASE_URL`` (default ``coop_bench``
on the local PostgreSQL), migrates it, adds two energy desks with actions, neighbourhoods and a
staff member, and then ``n`` registrations with households, residents, measures and a status
history, written with COPY (a few seconds for 100,000). The data is random but repeatable
(``random_seed``) and shaped like a real action half-way: most registrations confirmed, some
further along, some withdrawn or expired, spread over 60 days and 20 postcode areas.

Run on its own: ``.venv/bin/python -m bench.seed 100000``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/coop_bench"
)
STAFF_EMAIL = "bench-staff@example.nl"
STAFF_PASSWORD = "correct horse battery staple"  # a benchmark account, not a secret
PC4S = [f"35{n:02d}" for n in range(11, 31)]  # 20 postcode areas: 3511..3530
DAYS = 60

# (status, share, furthest step before leaving, for those who left)
STATUS_MIX = [
    ("pending_confirmation", 0.10),
    ("confirmed", 0.45),
    ("assigned", 0.12),
    ("survey_planned", 0.06),
    ("quoted", 0.08),
    ("accepted", 0.05),
    ("installed", 0.03),
    ("completed", 0.01),
    ("declined", 0.03),
    ("withdrawn", 0.05),
    ("expired", 0.02),
]
JOURNEY = [
    "pending_confirmation",
    "confirmed",
    "assigned",
    "survey_planned",
    "quoted",
    "accepted",
    "installed",
    "completed",
]
# How far someone who stepped out had got (an index into JOURNEY, inclusive).
LEFT_FROM = {"declined": [4], "withdrawn": [0, 1, 1, 2, 4], "expired": [0]}
# Names and streets as a Dutch city has them (accents, prefixes, double surnames), so that the
# search is timed on realistic text. Drawn from a random generator of their own, so the statuses,
# dates and measures are the same as before names were added.
FIRST_NAMES = [
    "Jan",
    "Anna",
    "Pieter",
    "Fatima",
    "Mohammed",
    "Emma",
    "Lucas",
    "Sanne",
    "Daan",
    "Noor",
    "Sem",
    "Julia",
    "Ahmet",
    "Zeynep",
    "Ömer",
    "Zoë",
    "Björn",
    "Chloé",
    "Renée",
    "Anouk",
    "Bram",
    "Eva",
    "Thijs",
    "Lotte",
    "Mehmet",
    "Ayşe",
    "Hüseyin",
    "Iris",
    "Joëlle",
    "Koen",
    "Youssef",
    "Saïd",
    "Naima",
    "Wouter",
    "Inge",
    "Esra",
    "Mila",
    "Finn",
    "Tess",
    "Jesse",
]
SURNAMES = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "van der Veen",
    "van den Broek",
    "de Bruijn",
    "van Beek",
    "Öztürk",
    "Yılmaz",
    "Şahin",
    "Çelik",
    "Doğan",
    "Kaya",
    "El Amrani",
    "Benali",
    "Bouzid",
    "El Idrissi",
    "Nguyễn",
    "Kowalski",
    "Müller",
    "Öztürk-van Dijk",
    "Bakker-Çelik",
    "van ’t Hof",
    "ten Brinke",
    "Ruïne",
    "Geürts",
]
STREET_NAMES = [
    "Oudegracht",
    "Biltstraat",
    "Amsterdamsestraatweg",
    "Kanaalstraat",
    "Twijnstraat",
    "Lange Nieuwstraat",
    "Vleutenseweg",
    "Croeselaan",
    "Burgemeester Reigerstraat",
    "Nachtegaalstraat",
    "Wittevrouwenstraat",
    "Adelaarstraat",
    "Kruisstraat",
    "Zadelstraat",
    "Voorstraat",
    "Hondsrug",
    "Prins Hendriklaan",
    "Weerdsingel Oostzijde",
    "Lauwerecht",
    "Jutfaseweg",
    "Smaragdplein",
    "Kögllaan",
    "Händelstraat",
    "Cornelis Evertsenstraat",
    "Pieter Nieuwlandstraat",
    "Ganzenmarkt",
    "Zonstraat",
    "Kapelstraat",
    "Eykmanlaan",
    "Minstraat",
]
STREETS = [
    name if n == 0 else f"{name} {suffix}"
    for n, suffix in enumerate(
        ["", "Noord", "Zuid", "Oost", "West", "Oostzijde", "Westzijde", "Achterom", "Hof", "Kade"]
    )
    for name in STREET_NAMES
]  # 300 streets, as before
DWELLINGS = ["terraced"] * 5 + ["corner"] * 2 + ["semi_detached", "detached", "apartment"] * 1
OWNERSHIPS = ["owner"] * 7 + ["private_tenant", "corporation_tenant", "vve_member"]
# The plain text kept of each seeded confirmation (about the size of a real one).
CONFIRMATION_TEXT = (
    "Beste bewoner,\n\nDank voor je aanmelding voor de collectieve inkoop. Bevestig je "
    "aanmelding met de link hieronder; daarna houden we je op de hoogte van de informatieavond, "
    "de opname en de offertes.\n\n" + "https://coop.localhost/l/" + "x" * 60 + "\n\n"
    "Met vriendelijke groet,\nHet energieloket"
)


@dataclass
class Seeded:
    database_url: str
    organisation_id: int
    action_id: int  # the big action (90% of the registrations)
    other_action_id: int  # a second action of the same desk (10%)
    neighbourhood_ids: list[int] = field(default_factory=list)
    registrations: int = 0
    seconds: float = 0.0
    staff_email: str = STAFF_EMAIL
    staff_password: str = STAFF_PASSWORD


def bench_config(database_url: str = BENCH_URL) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SECRET_KEY": "bench-secret-key-0123456789-0123456789-abcdef",
        "REDIS_URL": None,
        "MAIL_SERVER": None,
        "MAIL_SUPPRESS_SEND": True,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": False,
        "DEV_MAILBOX": False,
        "BASE_URL": "http://localhost",
    }


def bench_app(database_url: str = BENCH_URL) -> Flask:
    from coop import create_app

    return create_app(bench_config(database_url))


def recreate_database(database_url: str) -> None:
    url = make_url(database_url)
    name = url.database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to recreate a database named {name!r}")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _existing(app: Flask) -> Seeded | None:
    """What an earlier run seeded, if the database has it."""
    from coop.accounts.models import User
    from coop.actions.models import Action, Neighbourhood
    from coop.extensions import db
    from coop.registrations.models import Registration

    with app.app_context():
        try:
            staff = db.session.scalar(select(User).where(User.email == STAFF_EMAIL))
        except Exception:
            return None
        if staff is None or staff.organisation_id is None:
            return None
        actions = db.session.scalars(
            select(Action.id)
            .where(Action.organisation_id == staff.organisation_id)
            .order_by(Action.id)
        ).all()
        count = db.session.scalar(select(func.count()).select_from(Registration)) or 0
        neighbourhoods = db.session.scalars(
            select(Neighbourhood.id).where(Neighbourhood.organisation_id == staff.organisation_id)
        ).all()
        return Seeded(
            database_url=str(db.engine.url.render_as_string(hide_password=False)),
            organisation_id=staff.organisation_id,
            action_id=actions[0],
            other_action_id=actions[1],
            neighbourhood_ids=list(neighbourhoods),
            registrations=int(count),
        )


def seed(
    n: int, database_url: str = BENCH_URL, *, fresh: bool = True, random_seed: int = 7
) -> Seeded:
    """A database with ``n`` registrations; ``fresh=False`` reuses one that already has them."""
    started = time.perf_counter()
    if not fresh:
        try:
            existing = _existing(bench_app(database_url))
        except Exception:
            existing = None
        if existing is not None and existing.registrations == n:
            return existing
    recreate_database(database_url)
    app = bench_app(database_url)
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
        seeded = _setting(database_url)
        _bulk(seeded, n, random.Random(random_seed))
        from coop.extensions import db

        db.session.remove()
        db.engine.dispose()
    seeded.registrations = n
    seeded.seconds = time.perf_counter() - started
    return seeded


def _setting(database_url: str) -> Seeded:
    """The desks, actions, neighbourhoods and staff member, through the models."""
    from coop.accounts.models import Organisation, OrganisationKind, Role, User
    from coop.accounts.services import hash_password
    from coop.actions.catalogue import ensure_catalogue
    from coop.actions.models import Action, ActionMeasure, ActionStatus, Neighbourhood, PriceTier
    from coop.extensions import db

    measures = ensure_catalogue()
    now = datetime.now(UTC)
    desk = Organisation(
        name="Energieloket Utrecht",
        kind=OrganisationKind.MUNICIPALITY,
        municipality="Utrecht",
        email="loket@example.nl",
    )
    elsewhere = Organisation(
        name="Energiecoöperatie Zeist",
        kind=OrganisationKind.COOPERATIVE,
        municipality="Zeist",
        email="info@zeist.example.nl",
    )
    db.session.add_all([desk, elsewhere])
    db.session.flush()

    def action(org: Organisation, slug: str, title: str, codes: list[str]) -> Action:
        item = Action(
            organisation_id=org.id,
            slug=slug,
            title_nl=title,
            title_en=title,
            status=ActionStatus.OPEN,
            registration_opens_at=now - timedelta(days=DAYS + 1),
            registration_closes_at=now + timedelta(days=30),
            contact_email="actie@example.nl",
            postcode_areas=",".join(PC4S),
        )
        item.measures = [
            ActionMeasure(
                measure=measures[code],
                position=i,
                indicative_price_cents=5000 if code != "hybrid_heat_pump" else 450000,
                tiers=[
                    PriceTier(min_participants=100, price_cents=4500),
                    PriceTier(min_participants=1000, price_cents=4000),
                    PriceTier(min_participants=50000, price_cents=3500),
                ],
            )
            for i, code in enumerate(codes)
        ]
        db.session.add(item)
        return item

    big = action(
        desk,
        "utrecht-isoleert",
        "Utrecht isoleert",
        ["roof", "cavity_wall", "floor", "hybrid_heat_pump"],
    )
    small = action(
        desk, "utrecht-warmtepomp", "Warmtepomp Utrecht", ["hybrid_heat_pump", "full_heat_pump"]
    )
    action(elsewhere, "zeist-isoleert", "Zeist isoleert", ["roof"])
    neighbourhoods = []
    for index in range(5):
        areas = PC4S[index * 4 : index * 4 + 4]
        neighbourhoods.append(
            Neighbourhood(
                organisation_id=desk.id,
                name=f"Wijk {index + 1}",
                municipality="Utrecht",
                # One neighbourhood has no count yet: its rate shows as unknown.
                household_count=None if index == 4 else 8000 + 1000 * index,
                postcode_areas=",".join(areas),
            )
        )
    db.session.add_all(neighbourhoods)
    big.neighbourhoods = neighbourhoods
    db.session.add(
        User(
            email=STAFF_EMAIL,
            name="Bente Bench",
            role=Role.STAFF,
            organisation_id=desk.id,
            is_desk_admin=True,
            password_hash=hash_password(STAFF_PASSWORD),
        )
    )
    db.session.commit()
    return Seeded(
        database_url=database_url,
        organisation_id=desk.id,
        action_id=big.id,
        other_action_id=small.id,
        neighbourhood_ids=[n.id for n in neighbourhoods],
    )


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _bulk(seeded: Seeded, n: int, rng: random.Random) -> None:
    """Households, residents, registrations, their measures and history, by COPY."""
    from coop.actions.models import ActionMeasure
    from coop.extensions import db

    measures_of = {
        action_id: list(
            db.session.scalars(select(ActionMeasure.id).where(ActionMeasure.action_id == action_id))
        )
        for action_id in (seeded.action_id, seeded.other_action_id)
    }
    start_id = {
        table: int(db.session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0) + 1
        for table in (
            "users",
            "households",
            "registrations",
            "registration_measures",
            "status_changes",
        )
    }
    db.session.commit()
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    names = random.Random(1407)  # its own, so the other draws stay as they were
    search_text = _search_text_function()
    now = datetime.now(UTC)
    begin = now - timedelta(days=DAYS)

    users: list[tuple[Any, ...]] = []
    households: list[tuple[Any, ...]] = []
    registrations: list[tuple[Any, ...]] = []
    # Every resident who signed up was sent a confirmation: a desk's email_log is never empty
    # when it mails its residents (and PostgreSQL plans the outbox's lookups on it by its size).
    emails: list[tuple[Any, ...]] = []
    registration_measures: list[tuple[Any, ...]] = []
    changes: list[tuple[Any, ...]] = []
    next_measure = start_id["registration_measures"]
    next_change = start_id["status_changes"]
    for i in range(n):
        user_id = start_id["users"] + i
        household_id = start_id["households"] + i
        registration_id = start_id["registrations"] + i
        action_id = seeded.action_id if i % 10 else seeded.other_action_id
        pc4 = PC4S[int(rng.triangular(0, len(PC4S), 3))]
        letters = chr(65 + (i // 1000) % 26) + chr(65 + (i // 26000) % 26)
        # Sign-ups come in waves: many in the first week (the information evening), then fewer.
        created = begin + timedelta(days=min(rng.expovariate(1 / 12), DAYS - 0.01))
        status = rng.choices(statuses, weights)[0]
        first, surname = names.choice(FIRST_NAMES), names.choice(SURNAMES)
        email = f"{_ascii(first)}.{_ascii(surname)}.{i}@example.nl"
        street = STREETS[i % len(STREETS)]
        users.append(
            (
                user_id,
                email,
                f"{first} {surname}",
                "resident",
                "nl" if i % 7 else "en",
                True,
                False,
                _timestamp(created),
            )
        )
        households.append(
            (
                household_id,
                f"{pc4} {letters}",
                pc4,
                i % 1000 + 1,
                "",
                street,
                "Utrecht",
                rng.choice(DWELLINGS),
                rng.randint(1900, 2015),
                rng.choice(OWNERSHIPS),
                _timestamp(created),
            )
        )
        registration_row: tuple[Any, ...] = (
            registration_id,
            action_id,
            household_id,
            user_id,
            status,
            _timestamp(created),
            "2026-11",
            _timestamp(created),
            _timestamp(created),
        )
        if search_text is not None:
            registration_row += (
                search_text(f"{first} {surname}", email, street, i % 1000 + 1, f"{pc4} {letters}"),
            )
        registrations.append(registration_row)
        key = f"registration-confirm:seed-{registration_id}"
        emails.append(
            (
                key,
                user_id,
                email,
                "Bevestig je aanmelding" if i % 7 else "Confirm your registration",
                "confirm_registration",
                "nl" if i % 7 else "en",
                f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@coop.localhost>",
                "sent",
                1,
                CONFIRMATION_TEXT,
                _timestamp(created),
                _timestamp(created),
            )
        )
        offered = measures_of[action_id]
        for action_measure_id in rng.sample(offered, k=1 if rng.random() < 0.7 else 2):
            registration_measures.append(
                (
                    next_measure,
                    registration_id,
                    action_measure_id,
                    rng.randint(10, 80) if action_measure_id != offered[-1] else 1,
                )
            )
            next_measure += 1
        if status in JOURNEY:
            path = JOURNEY[: JOURNEY.index(status) + 1]
        else:
            path = [*JOURNEY[: rng.choice(LEFT_FROM[status]) + 1], status]
        previous = None
        at = created
        for step in path:
            changes.append((next_change, registration_id, previous, step, _timestamp(at)))
            next_change += 1
            previous = step
            at = min(at + timedelta(days=rng.uniform(0.1, 5)), now)

    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        _copy(
            cursor,
            "users (id, email, name, role, language, is_active_account, is_desk_admin, created_at)",
            users,
        )
        _copy(
            cursor,
            "households (id, postcode, pc4, house_number, house_number_addition, street, city, "
            "dwelling_type, build_year, ownership, created_at)",
            households,
        )
        _copy(
            cursor,
            "registrations (id, action_id, household_id, user_id, status, consent_at, "
            "consent_version, created_at, updated_at"
            + (", search_text)" if search_text is not None else ")"),
            registrations,
        )
        _copy(
            cursor,
            "registration_measures (id, registration_id, action_measure_id, quantity)",
            registration_measures,
        )
        _copy(cursor, "status_changes (id, registration_id, from_status, to_status, at)", changes)
        _copy(
            cursor,
            "email_log (key, user_id, recipient, subject, template, language, message_id, "
            "status, attempts, body_text, created_at, sent_at)",
            emails,
        )
        for table in start_id:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        connection.commit()
        cursor.execute("ANALYZE")
        connection.commit()
    finally:
        connection.close()


def _ascii(text: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return "".join(c for c in plain if c.isalnum())


def _search_text_function() -> Any:
    """What the app stores as a registration's search text, if this version of coop has it
    (so the same seed can time an earlier version, before the column existed)."""
    try:
        from coop.accounts.models import User
        from coop.registrations.models import Household
        from coop.registrations.search import search_text
    except ImportError:
        return None

    def text(name: str, email: str, street: str, number: int, postcode: str) -> str:
        user = User(name=name, email=email)
        household = Household(
            street=street,
            house_number=number,
            house_number_addition="",
            postcode=postcode,
            city="Utrecht",
        )
        return str(search_text(user, household))

    return text


def _copy(cursor: Any, target: str, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    args = parser.parse_args(argv)
    seeded = seed(args.n)
    print(
        f"seeded {seeded.registrations} registrations into {make_url(seeded.database_url).database} in {seeded.seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
