"""The production shape on this machine: a PostgreSQL database of the test's own, a redis-server
of its own (stopped and started by the test), the SMTP recorder, and coop's processes as
docker-compose runs them: gunicorn with ``--preload`` and two workers, ``python worker.py``
(two), ``coop scheduler``, and the ``coop`` commands of a first deployment. Every process gets
the environment a deployment sets (``COOP_ENV=production``), pointed at these services."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.conftest import PG_URL, ROOT, ControllableRedis, free_port

BIN = Path(sys.executable).parent


def create_database(name: str) -> str:
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Process:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopping it stops its children
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pause(self) -> None:
        """SIGSTOP to its group: a machine that hangs (the process keeps its connections)."""
        os.killpg(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.popen.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGCONT)  # in case it was paused
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Deployment:
    """coop deployed on this machine; ``env`` is what docker-compose's x-app sets."""

    def __init__(
        self, workdir: Path, redis: ControllableRedis, smtp_port: int, **settings: str
    ) -> None:
        self.workdir = workdir
        self.redis = redis
        self.database_name = f"coop_accept_{os.getpid()}"
        self.database_url = create_database(self.database_name)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABASE_", "REDIS_", "MAIL_", "SECRET_", "COOP_", "STRIPE_"))
                and k not in {"RATELIMIT_ENABLED", "RATELIMIT_STORAGE_URI", "BASE_URL"}
            },
            "COOP_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": redis.url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_port),
            "MAIL_DEFAULT_SENDER": "coop <noreply@coop.localhost>",
            "BASE_URL": self.base,
            "TRUST_PROXY": "false",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        self.processes: list[Process] = []
        self._engine: Engine | None = None

    # --- commands and processes --------------------------------------------------------------

    def coop(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A ``coop`` command, as ``docker compose run --rm web coop ...`` runs it."""
        result = subprocess.run(
            [str(BIN / "coop"), *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"coop {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def start(self, name: str, command: list[str]) -> Process:
        process = Process(name, command, self.env, self.workdir / f"{name}.log")
        self.processes.append(process)
        return process

    def start_web(self) -> Process:
        # The Dockerfile's CMD, with two workers and bound to this machine.
        web = self.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "--preload",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "-",
                "coop:create_app()",
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert web.alive(), f"gunicorn exited:\n{web.output()[-3000:]}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return web
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer /healthz:\n{web.output()[-3000:]}")

    def start_worker(self, number: int) -> Process:
        return self.start(
            f"worker-{number}",
            [sys.executable, "worker.py", "--maintenance-interval", "5", "--name", f"w{number}"],
        )

    def start_scheduler(self, every: int = 1) -> Process:
        return self.start("scheduler", [str(BIN / "coop"), "scheduler", "--every", str(every)])

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self._engine is not None:
            self._engine.dispose()
        drop_database(self.database_name)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in self.processes)

    # --- looking (reading only), and the one kind of write the test declares -----------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            url = self.database_url
            self._engine = create_engine(url, pool_pre_ping=True)
        return self._engine

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def time_passes(self, sql: str, **params: Any) -> int:
        """The one thing the test writes directly: a deadline moved into the past (or near
        it), as the clock would. Returns how many rows it moved."""
        assert sql.lstrip().upper().startswith("UPDATE"), sql
        with self.engine.begin() as connection:
            return int(connection.execute(text(sql), params).rowcount)

    def health(self) -> tuple[int, dict[str, Any]]:
        response = requests.get(self.base + "/healthz", timeout=10)
        return response.status_code, json.loads(response.text)

    def wait(self, condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
