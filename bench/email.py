"""How fast email leaves through the outbox, and whether a sign-up's link stays fast under a
mass mailing. Everything runs on this machine, in separate processes, as in production:
PostgreSQL (a fresh database, ``BENCH_EMAIL_DATABASE_URL``, default ``coop_bench_email``, seeded
as a desk's: residents who signed up and were sent their confirmation), a
Redis of its own, gunicorn (two workers) for the sign-ups, one ``python worker.py``, and an SMTP
server (aiosmtpd) in a process of its own that notes when each message arrives.

(1) Throughput, measured side by side, alternating, ``--runs`` times:
    outbox: a segment update to 2,000 residents is sent (the deliveries and their 2,000 outbox
            rows written in one transaction, handed to the bulk lane in chunks); the time runs
            from the call of ``send_now`` to the arrival of the 2,000th message at the server.
    smtplib: the very same 2,000 messages (the bytes the server received from the outbox run),
            sent with ``smtplib.SMTP.sendmail`` over one connection to the same server.
    Target: outbox throughput >= 0.3 of smtplib's.

(2) Sign-ups during a mass mailing: an update to 10,000 residents is sent, and at the same time
    1,000 sign-ups arrive over five minutes (evenly spaced) through the real form on gunicorn
    (GET for the CSRF token, POST). The latency of each is from just before its POST to the
    arrival of its confirmation at the SMTP server. Target: 95th percentile < 30 s. Meanwhile
    the connections to PostgreSQL are counted per process kind (``pg_stat_activity`` by
    ``application_name``), and the sessions opened (``pg_stat_database.sessions``).

    .venv/bin/python -m bench.email            # the full run (about 10 minutes)
    .venv/bin/python -m bench.email --quick    # a fifth of the sizes and of the time
"""

from __future__ import annotations

import argparse
import contextlib
import email
import http.cookiejar
import math
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select, update

from bench.seed import bench_config, recreate_database

ROOT = Path(__file__).resolve().parent.parent
BENCH_URL = os.environ.get(
    "BENCH_EMAIL_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/coop_bench_email"
)
SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.MULTILINE | re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the SMTP server, in a process of its own ---------------------------------------------------


def _smtp_server(port: int, directory: str, ready: Any) -> None:
    """aiosmtpd; for each message one line "arrival rcpt message-id offset length" in
    arrivals.log, and its bytes in messages.bin."""
    import asyncio

    from aiosmtpd.controller import Controller

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    arrivals = open(os.path.join(directory, "arrivals.log"), "a", buffering=1)  # noqa: SIM115
    contents = open(os.path.join(directory, "messages.bin"), "ab")  # noqa: SIM115

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            content = envelope.original_content or envelope.content
            offset = contents.tell()
            contents.write(content)
            contents.flush()
            found = MESSAGE_ID.search(content)
            message_id = found.group(1).decode() if found else "-"
            arrivals.write(
                f"{time.time():.6f} {envelope.rcpt_tos[0]} {message_id} {offset} {len(content)}\n"
            )
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        asyncio.run(asyncio.sleep(10**9))
    finally:
        controller.stop()


@dataclass
class Arrival:
    at: float
    rcpt: str
    message_id: str
    offset: int
    length: int


class Mailbox:
    """Reads what the SMTP server process noted, as it comes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.log = os.path.join(directory, "arrivals.log")
        self.arrivals: list[Arrival] = []
        self._position = 0

    def poll(self) -> list[Arrival]:
        new: list[Arrival] = []
        with open(self.log) as f:
            f.seek(self._position)
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break
                self._position = f.tell()
                at, rcpt, message_id, offset, length = line.split()
                new.append(Arrival(float(at), rcpt, message_id, int(offset), int(length)))
        self.arrivals.extend(new)
        return new

    def content(self, arrival: Arrival) -> bytes:
        with open(os.path.join(self.directory, "messages.bin"), "rb") as f:
            f.seek(arrival.offset)
            return f.read(arrival.length)


# --- the data -----------------------------------------------------------------------------------


@dataclass
class World:
    action_id: int
    slug: str
    measure_id: int
    staff_id: int
    segment_small: int  # residents with status "assigned" (the throughput runs' segment)
    segment_all: int  # every resident taking part


def seed_world(app: Any, small: int, large: int) -> World:
    """``large`` residents taking part in one action, ``small`` of them "assigned"."""
    from bench.seed import _bulk, _setting
    from coop.accounts.models import Role, User
    from coop.actions.models import Action, ActionMeasure
    from coop.extensions import db
    from coop.registrations.models import Registration, RegistrationStatus

    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        seeded = _setting(app.config["SQLALCHEMY_DATABASE_URI"])
        _bulk(seeded, math.ceil(large / 0.9) + 1, __import__("random").Random(7))
        ids = list(
            db.session.scalars(
                select(Registration.id)
                .where(Registration.action_id == seeded.action_id)
                .order_by(Registration.id)
            )
        )
        keep, drop = ids[:large], ids[large:]
        db.session.execute(
            update(Registration)
            .where(Registration.id.in_(keep[:small]))
            .values(status=RegistrationStatus.ASSIGNED)
        )
        db.session.execute(
            update(Registration)
            .where(Registration.id.in_(keep[small:]))
            .values(status=RegistrationStatus.CONFIRMED)
        )
        if drop:
            db.session.execute(
                update(Registration)
                .where(Registration.id.in_(drop))
                .values(status=RegistrationStatus.WITHDRAWN)
            )
        db.session.commit()
        action = db.session.get(Action, seeded.action_id)
        assert action is not None
        measure = db.session.scalars(
            select(ActionMeasure.id)
            .where(ActionMeasure.action_id == action.id)
            .order_by(ActionMeasure.position)
        ).first()
        staff = db.session.scalar(select(User.id).where(User.role == Role.STAFF))
        assert measure is not None and staff is not None
        world = World(action.id, action.slug, measure, staff, small, large)
        db.session.remove()
        return world


def send_update(app: Any, world: World, status: str | None, label: str) -> tuple[int, set[str]]:
    """Compose and send an update through the desk's service; returns its id and the
    Message-IDs its messages will carry."""
    from coop.accounts.models import User
    from coop.actions.models import Action
    from coop.core.mail import message_id_for
    from coop.desk import updates
    from coop.desk.models import UpdateDelivery
    from coop.extensions import db
    from coop.registrations.models import RegistrationStatus

    with app.app_context():
        action = db.session.get(Action, world.action_id)
        staff = db.session.get(User, world.staff_id)
        assert action is not None and staff is not None
        draft = updates.compose(
            staff,
            updates.UpdateInput(
                action=action,
                measure_id=None,
                status=RegistrationStatus(status) if status else None,
                pc4=None,
                subject_nl=f"Nieuws over de actie ({label})",
                subject_en=f"News about the action ({label})",
                body_nl="Beste bewoner,\n\nDe installateurs zijn gekozen. "
                "In de komende weken plannen zij de opnames.\n\nMet vriendelijke groet,",
                body_en="Dear resident,\n\nThe installers have been chosen. "
                "In the coming weeks they plan the surveys.\n\nKind regards,",
            ),
        )
        update_id = draft.id
        updates.send_now(draft, staff)
        users = db.session.scalars(
            select(UpdateDelivery.user_id).where(UpdateDelivery.update_id == update_id)
        ).all()
        message_ids = {message_id_for(f"update:{update_id}:{user_id}") for user_id in users}
        db.session.remove()
        return update_id, message_ids


# --- the processes ------------------------------------------------------------------------------


@dataclass
class Stack:
    directory: str
    smtp_port: int
    redis_url: str
    web_url: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    smtp: multiprocessing.Process | None = None

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.smtp is not None:
            self.smtp.terminate()
            self.smtp.join(10)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port}")


@contextlib.contextmanager
def stack(database_url: str, redis_url: str | None, workers: int = 1) -> Iterator[Stack]:
    directory = tempfile.mkdtemp(prefix="coop-bench-email-")
    smtp_port, web_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    if redis_url is None:
        redis_port = free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        processes.append(
            start(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                dict(os.environ),
                Path(directory) / "redis.log",
            )
        )
        wait_for_port(redis_port)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "SECRET_KEY": SECRET,
        "BASE_URL": "http://localhost",
        "RATELIMIT_SIGNUP": "100000 per hour",
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    ready = multiprocessing.Event()
    smtp = multiprocessing.Process(
        target=_smtp_server, args=(smtp_port, directory, ready), daemon=True
    )
    smtp.start()
    ready.wait(30)
    bench = Stack(directory, smtp_port, redis_url, f"http://127.0.0.1:{web_port}", env, processes)
    bench.smtp = smtp
    try:
        bench.processes.append(
            start(
                [
                    str(ROOT / ".venv/bin/gunicorn"),
                    *("-w", "2", "-b", f"127.0.0.1:{web_port}"),
                    "coop:create_app()",
                ],
                {**env, "PGAPPNAME": "coop-web"},
                Path(directory) / "web.log",
            )
        )
        for number in range(workers):
            bench.processes.append(
                start(
                    [sys.executable, str(ROOT / "worker.py")],
                    {**env, "PGAPPNAME": "coop-worker"},
                    Path(directory) / f"worker-{number}.log",
                )
            )
        wait_for_port(web_port)
        yield bench
    finally:
        bench.stop()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


# --- (1) throughput -----------------------------------------------------------------------------


def wait_for_messages(
    mailbox: Mailbox, message_ids: set[str], seconds: float
) -> tuple[list[Arrival], float]:
    """The arrivals of ``message_ids`` (all of them, or what came within ``seconds``)."""
    found: list[Arrival] = []
    deadline = time.monotonic() + seconds
    while len(found) < len(message_ids) and time.monotonic() < deadline:
        found.extend(a for a in mailbox.poll() if a.message_id in message_ids)
        time.sleep(0.01)
    return found, time.time()


def sending_cpu(bench: Stack) -> dict[str, dict[int, int]]:
    """CPU clock ticks used so far by each process that sends: the worker processes (with
    RQ's scheduler), their PostgreSQL connections, and the SMTP server."""
    from bench.serve import cpu_ticks

    workers = [p.pid for p in bench.processes if "worker.py" in str(p.args)]
    children: list[int] = []
    for pid in workers:
        with contextlib.suppress(FileNotFoundError):
            children += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as db:
        backends = [
            pid
            for (pid,) in db.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'coop-worker'"
            )
        ]

    def ticks(pids: list[int]) -> dict[int, int]:
        found = {}
        for pid in pids:
            with contextlib.suppress(FileNotFoundError):
                found[pid] = cpu_ticks(pid)
        return found

    smtp = [bench.smtp.pid] if bench.smtp is not None and bench.smtp.pid else []
    return {
        "worker": ticks([*workers, *children]),
        "its PostgreSQL": ticks(backends),
        "SMTP server": ticks(smtp),
    }


def used(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks used between two readings; a process that started meanwhile counts whole."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def outbox_run(app: Any, world: World, mailbox: Mailbox, label: str) -> tuple[float, list[Arrival]]:
    mailbox.poll()
    started = time.time()
    _, message_ids = send_update(app, world, "assigned", label)
    found, _ = wait_for_messages(mailbox, message_ids, 600)
    if len(found) != len(message_ids):
        raise SystemExit(f"outbox run {label}: {len(found)} of {len(message_ids)} arrived")
    duplicates = len(found) - len({a.message_id for a in found})
    if duplicates:
        raise SystemExit(f"outbox run {label}: {duplicates} message(s) arrived twice")
    return max(a.at for a in found) - started, found


def smtplib_run(
    bench: Stack, mailbox: Mailbox, messages: list[tuple[str, bytes]], as_objects: bool
) -> float:
    """The same messages over one connection: the bytes as received (``sendmail``), or parsed
    into message objects beforehand, which ``send_message`` turns into bytes again."""
    mailbox.poll()
    sender = "noreply@coop.localhost"
    parsed = [(rcpt, email.message_from_bytes(content)) for rcpt, content in messages]
    started = time.time()
    connection = smtplib.SMTP("127.0.0.1", bench.smtp_port, timeout=20)
    if as_objects:
        for rcpt, message in parsed:
            connection.send_message(message, sender, [rcpt])
    else:
        for rcpt, content in messages:
            connection.sendmail(sender, [rcpt], content)
    connection.quit()
    # The same end as the outbox run: the last message noted by the server.
    deadline = time.monotonic() + 60
    arrived: list[Arrival] = []
    while len(arrived) < len(messages) and time.monotonic() < deadline:
        arrived.extend(mailbox.poll())
        time.sleep(0.01)
    return max(a.at for a in arrived) - started


# --- (2) sign-ups during an update --------------------------------------------------------------


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def sign_up(bench: Stack, world: World, number: int) -> tuple[str, float, int]:
    """GET the form, POST it; returns (email, time just before the POST, status)."""
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    url = f"{bench.web_url}/actions/{world.slug}/register"
    page = opener.open(url, timeout=60).read().decode()
    token = CSRF.search(page)
    if token is None:
        raise SystemExit("no CSRF token on the sign-up form")
    email = f"signup-{number}@example.nl"
    form = {
        "csrf_token": token.group(1),
        "name": "Nieuwe Bewoner " + "".join(chr(97 + int(d)) for d in str(number)),  # letters
        "email": email,
        "phone": "06 12345678",
        "postcode": "3511 ZZ",
        "house_number": str(1 + number),
        "house_number_addition": "Z",
        "street": "Benchstraat",
        "city": "Utrecht",
        "dwelling_type": "terraced",
        "build_year": "1978",
        "ownership": "owner",
        "energy_label": "D",
        f"measure_{world.measure_id}": "y",
        f"quantity_{world.measure_id}": "45",
        "consent": "y",
    }
    body = urllib.parse.urlencode(form).encode()
    posted = time.time()
    try:
        answer = opener.open(url, data=body, timeout=60)
        status = answer.status
        if status != 302:
            page = answer.read().decode()
            Path(bench.directory, f"refused-{number}.html").write_text(page)
    except urllib.error.HTTPError as exc:
        status = exc.code
    return email, posted, status


class ConnectionCounter(threading.Thread):
    """Samples pg_stat_activity for the bench database every second, per application_name."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.peak: dict[str, int] = {}
        self.samples: list[dict[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(
            "host=127.0.0.1 user=postgres dbname=postgres application_name=bench",
            autocommit=True,
        ) as connection:
            while not self.stop.wait(1):
                rows = connection.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name <> 'bench' GROUP BY 1",
                    (self.database,),
                ).fetchall()
                sample = {name or "(none)": int(count) for name, count in rows}
                self.samples.append(sample)
                for name, count in sample.items():
                    self.peak[name] = max(self.peak.get(name, 0), count)


def sessions_opened(database: str) -> int:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        row = c.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
        return int(row[0]) if row else 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the sizes and the time")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per side")
    parser.add_argument("--redis-url", default=None, help="default: a redis-server of its own")
    parser.add_argument("--skip-signups", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker.py processes (the targets are for one)"
    )
    args = parser.parse_args(argv)
    # Stopped (a timeout, ^C): the finally clauses stop the processes this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale = 0.2 if args.quick else 1.0
    emails = int(2000 * scale)
    large = int(10000 * scale)
    signups = int(1000 * scale)
    window = 300 * scale

    database = BENCH_URL.rsplit("/", 1)[1]
    # This process's connections, told apart from the web's and the worker's (PGAPPNAME is
    # set for each of those).
    os.environ["PGAPPNAME"] = "bench-client"
    recreate_database(BENCH_URL)
    from coop import create_app

    print(f"load before: {loadavg()} on {os.cpu_count()} cores")
    seed_app = create_app(bench_config(BENCH_URL))
    world = seed_world(seed_app, emails, large)
    with stack(BENCH_URL, args.redis_url, args.workers) as bench:
        app = create_app(
            {
                **bench_config(BENCH_URL),
                "REDIS_URL": bench.redis_url,
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": bench.smtp_port,
                "MAIL_SUPPRESS_SEND": False,
            }
        )
        mailbox = Mailbox(bench.directory)
        # A warm-up: the worker has started and sent one message.
        time.sleep(3)
        print(
            f"\n(1) {emails} emails: outbox + {args.workers} worker.py against smtplib over one "
            "connection"
        )
        print(
            "  outbox: from send_now() to the last message at the server; smtplib: the same\n"
            "  messages (the bytes the server got) over one connection, as bytes (sendmail)\n"
            "  and as message objects (send_message, which serialises each)"
        )
        ratios: dict[str, list[float]] = {"bytes": [], "objects": []}
        for run in range(1, args.runs + 1):
            before = sending_cpu(bench)
            took, found = outbox_run(app, world, mailbox, f"run {run}")
            after = sending_cpu(bench)
            same = [(a.rcpt, mailbox.content(a)) for a in sorted(found, key=lambda a: a.at)]
            plain = smtplib_run(bench, mailbox, same, as_objects=False)
            objects = smtplib_run(bench, mailbox, same, as_objects=True)
            ratios["bytes"].append(plain / took)
            ratios["objects"].append(objects / took)
            print(
                f"  run {run}: outbox {emails / took:6.1f}/s ({took:.2f} s)   smtplib bytes "
                f"{emails / plain:6.1f}/s, objects {emails / objects:6.1f}/s   ratios "
                f"{plain / took:.2f}, {objects / took:.2f}"
            )
            tick = 1000 / os.sysconf("SC_CLK_TCK")
            print(
                "         CPU per email: "
                + ", ".join(
                    f"{kind} {used(before[kind], after[kind]) * tick / emails:.2f} ms"
                    for kind in after
                )
            )
        for kind, values in ratios.items():
            if values:
                print(
                    f"  outbox / smtplib ({kind}): median {statistics.median(values):.2f}, worst "
                    f"{min(values):.2f} (target >= 0.3: "
                    f"{'met' if min(values) >= 0.3 else 'NOT met'})"
                )
        if args.skip_signups:
            return 0

        print(
            f"\n(2) {signups} sign-ups over {window:.0f} s through gunicorn (2 workers) while an "
            f"update goes to {large} residents; {args.workers} worker.py"
        )
        counter = ConnectionCounter(database)
        counter.start()
        sessions_before = sessions_opened(database)
        mailbox.poll()
        update_started = time.time()
        _, update_ids = send_update(app, world, None, "large")
        update_sent = time.time() - update_started
        results: list[tuple[str, float, int]] = []
        with ThreadPoolExecutor(8) as pool:
            futures = []
            begin = time.time()
            for number in range(signups):
                at = begin + number * window / signups
                time.sleep(max(0.0, at - time.time()))
                futures.append(pool.submit(sign_up, bench, world, number))
            results = [f.result() for f in futures]
        refused = [r for r in results if r[2] != 302]
        if refused:
            raise SystemExit(f"{len(refused)} sign-up(s) refused, e.g. {refused[:3]}")
        posted = {email: at for email, at, _ in results}
        latencies: dict[str, float] = {}
        update_done: float | None = None
        update_arrived = 0
        # Long enough for the update to drain; what has not come by then counts as never.
        deadline = time.monotonic() + 600 * scale + 60
        while time.monotonic() < deadline:
            for arrival in mailbox.poll():
                if arrival.rcpt in posted and arrival.rcpt not in latencies:
                    latencies[arrival.rcpt] = arrival.at - posted[arrival.rcpt]
                elif arrival.message_id in update_ids:
                    update_arrived += 1
                    if update_arrived == len(update_ids):
                        update_done = arrival.at - update_started
            if len(latencies) == len(posted) and update_done is not None:
                break
            time.sleep(0.05)
        counter.stop.set()
        counter.join(5)
        sessions = sessions_opened(database) - sessions_before
        missing = len(posted) - len(latencies)
        values = list(latencies.values()) + [float("inf")] * missing
        p95 = percentile(values, 0.95)
        print(
            f"  the update: {len(update_ids)} deliveries written and handed over in "
            f"{update_sent:.1f} s; the last arrived {update_done or float('nan'):.1f} s after "
            f"send_now (while sign-ups went on)"
        )
        print(
            f"  sign-up -> confirmation at the server: {len(latencies)} of {signups}; median "
            f"{statistics.median(values):.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s "
            f"(target p95 < 30 s: {'met' if p95 < 30 and len(values) == signups else 'NOT met'})"
        )
        print(
            "  PostgreSQL connections (peak, per process kind): "
            + ", ".join(f"{name} {count}" for name, count in sorted(counter.peak.items()))
            + f"; sessions opened during (2): {sessions}"
        )
    print(f"load after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
