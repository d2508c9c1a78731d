"""Fixtures: an app per test on a clean database (SQLite and PostgreSQL), real Redis, real SMTP.

Under CI=true a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from coop import create_app
from coop.extensions import db

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# A database and a Redis db of this test session's own, so that test runs side by side (several
# developers' runs, or pytest-xdist workers) never clean up each other's data.
PG_URL = os.environ.get(
    "TEST_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/coop_test_{os.getpid()}"
)


def _redis_db() -> int:
    """Redis has 16 numbered databases; 0 is left alone. The workers of one pytest-xdist run
    get neighbouring numbers so that they never share one (each flushes its own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        run = int.from_bytes(os.environ.get("PYTEST_XDIST_TESTRUNUID", "").encode()[-4:] or b"0")
        return 1 + (run % 3) * 5 + int(worker[2:]) % 5
    return 1 + os.getpid() % 15


REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_redis_db()}")


class ClosingClient(FlaskClient):
    """Flask's test client, reading each response whole and closing it, as a WSGI server does
    once the response has gone out: what the app runs then (the embedded default's jobs) has
    run when the call returns, as the tests expect."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


Flask.test_client_class = ClosingClient


def unavailable(what: str) -> None:
    """Skip on a developer machine without ``what``; fail under CI, where it must be there."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available here")


def base_config(database_url: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": None,
        "MAIL_SERVER": None,
        "MAIL_SUPPRESS_SEND": True,
        "DEV_MAILBOX": True,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "BASE_URL": "http://localhost",
        "SERVER_NAME": None,
        # No calls to PDOK from the tests: a test that wants the address lookup points it at
        # its stand-in (tests/core/test_address_lookup.py).
        "ADDRESS_LOOKUP_URL": "",
    }
    if database_url.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    else:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    config.update(extra)
    return config


def migrate(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))


# --- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    migrate(create_app(base_config(f"sqlite:///{path}")))
    return path


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not _postgres_reachable():
        unavailable("PostgreSQL on 127.0.0.1:5432")
    database = PG_URL.rsplit("/", 1)[1]
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    migrate(create_app(base_config(PG_URL)))
    yield PG_URL
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(app: Flask) -> None:
    """Empty the tables the previous test wrote to. Truncating all of them costs a quarter of a
    second a test; asking first which hold rows, in one query, costs a few milliseconds."""
    with app.app_context():
        names = [t.name for t in db.metadata.sorted_tables]
        probe = " UNION ALL ".join(
            f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in names
        )
        with db.engine.begin() as connection:
            used = [row[0] for row in connection.execute(text(probe))]
            if used:
                tables = ", ".join(f'"{name}"' for name in used)
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses the app runs on the embedded SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "coop.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a test module to change the configuration of ``app``."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(base_config(database_url, **app_config))
    if database_url.startswith("postgresql"):
        _truncate_postgres(application)
    with application.app_context():
        from coop.actions.catalogue import ensure_catalogue

        ensure_catalogue()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An app context for tests that call services directly."""
    with app.test_request_context():
        yield app


# --- Redis -------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    from redis import Redis
    from redis.exceptions import RedisError

    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except RedisError:
        unavailable("Redis on 127.0.0.1:6379")
    connection.flushdb()
    yield REDIS_URL
    connection.flushdb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("the redis-server program")
    assert binary is not None
    return binary


class ControllableRedis:
    """A redis-server of our own on a free port, so a test can stop it and start it again."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from redis import Redis

        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        connection = Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                connection.ping()
                return
            except Exception:
                import time

                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(redis_server_binary: str, tmp_path: Path) -> Iterator[ControllableRedis]:
    server = ControllableRedis(redis_server_binary, tmp_path)
    yield server
    server.stop()


# --- SMTP --------------------------------------------------------------------------------


class SMTPRecorder:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.reply: str | None = None  # set to e.g. "451 try later" to refuse messages
        # Set to an unset Event to keep senders waiting at DATA (``holding`` counts them) until
        # it is set: a job caught in the middle of sending.
        self.hold: threading.Event | None = None
        self.holding = 0
        # The client's (address, port) per message received: one port, one connection.
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold is not None:
            self.holding += 1
            while not self.hold.is_set():
                await asyncio.sleep(0.02)
            self.holding -= 1
        if self.reply:
            return self.reply
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Message]:
        return [message_from_bytes(e.content) for e in self.envelopes]

    def to(self, address: str) -> list[Message]:
        return [
            m for m, e in zip(self.messages, self.envelopes, strict=True) if address in e.rcpt_tos
        ]


@pytest.fixture
def smtp_server() -> Iterator[tuple[SMTPRecorder, int]]:
    from aiosmtpd.controller import Controller

    recorder = SMTPRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


def smtp_config(port: int) -> dict[str, Any]:
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_TIMEOUT": 5,
    }


def message_text(message: Message) -> str:
    """The plain text part of an email, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


def link_in(text_body: str) -> str:
    match = re.search(r"https?://\S+/login/\S+", text_body)
    assert match, f"no login link in: {text_body}"
    return match.group(0)
