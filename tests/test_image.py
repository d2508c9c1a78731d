"""The container image's layout, without Docker: the Dockerfile's steps replayed in a temporary
``/app`` with a fresh virtualenv, then each docker-compose service's command run there against
PostgreSQL (an empty database), Redis and the SMTP server.

The Dockerfile and docker-compose.yml are read, not copied into this file: the COPY and RUN
steps run as written (``--no-cache-dir`` dropped, so pip's cache is used; the ``useradd`` step,
which needs root, is left out), the web service runs the image's CMD bound to a free port, the
worker ``--burst`` and the scheduler one round (``--rounds 1``). It takes a minute or two (a
fresh install of every dependency), so ``make test`` leaves it out (marker ``image``) and
``.ci/run`` runs it: ``make test-image``.
"""

from __future__ import annotations

import fnmatch
import http.cookiejar
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import (
    PG_URL,
    ROOT,
    ControllableRedis,
    SMTPRecorder,
    _postgres_reachable,
    base_config,
    free_port,
    message_text,
    unavailable,
)

pytestmark = pytest.mark.image

TIMINGS: dict[str, float] = {}


# --- reading the Dockerfile and the compose file ----------------------------------------------


def dockerfile_steps(source: str) -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in source.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    steps = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        steps.append((instruction.upper(), arguments.strip()))
    return steps


def compose_commands(source: str) -> dict[str, list[str]]:
    """Each service's ``command:`` (the file writes them as JSON arrays)."""
    commands: dict[str, list[str]] = {}
    service = None
    in_services = False
    for line in source.splitlines():
        if re.match(r"^services:\s*$", line):
            in_services = True
            continue
        if re.match(r"^\S", line):
            in_services = False
        if not in_services:
            continue
        named = re.match(r"^  ([a-z][a-z0-9_-]*):\s*$", line)
        if named:
            service = named.group(1)
            continue
        command = re.match(r"^    command:\s*(\[.*\])\s*$", line)
        if command and service:
            commands[service] = json.loads(command.group(1))
    return commands


def dockerignore_patterns() -> list[str]:
    path = ROOT / ".dockerignore"
    patterns = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line.removeprefix("**/"))
    return patterns


def copy_into(app_dir: Path, arguments: str) -> None:
    """COPY src... dest, relative to the build context (this worktree) and WORKDIR."""
    *sources, dest = shlex.split(arguments)
    patterns = dockerignore_patterns()

    def ignored(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}

    target = app_dir / dest
    for source in sources:
        origin = ROOT / source
        destination = target / origin.name if dest.endswith("/") else target
        if origin.is_dir():
            shutil.copytree(origin, destination, ignore=ignored, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination)


# --- the layout, built once for the module ----------------------------------------------------


class Image:
    def __init__(self, app_dir: Path, venv: Path, env: dict[str, str], cmd: list[str]) -> None:
        self.app_dir = app_dir
        self.venv = venv
        self.env = env  # the image's environment: its ENV lines, its PATH
        self.cmd = cmd
        self.compose = compose_commands((ROOT / "docker-compose.yml").read_text())

    def run(
        self, command: list[str], env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.app_dir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _clean_environment(venv: Path) -> dict[str, str]:
    """This process's environment without its own virtualenv or source tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
        and not k.startswith(("DATABASE_", "REDIS_", "MAIL_", "SECRET_", "COOP_", "STRIPE_"))
    }
    own_bin = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != own_bin]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    started = time.monotonic()
    base = tmp_path_factory.mktemp("image")
    venv = base / "venv"
    interpreter = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=120)
    env = _clean_environment(venv)
    app_dir = base / "app"
    app_dir.mkdir()
    cmd: list[str] = []
    for instruction, arguments in dockerfile_steps((ROOT / "Dockerfile").read_text()):
        if instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(arguments)))
        elif instruction == "WORKDIR":
            assert arguments == "/app", "the check lays out /app only"
        elif instruction == "COPY":
            copy_into(app_dir, arguments)
        elif instruction == "RUN":
            if arguments.startswith("useradd"):
                (app_dir / "instance").mkdir(exist_ok=True)  # the part that needs no root
                continue
            # pip's cache makes the check fast; the image keeps no cache (--no-cache-dir).
            command = arguments.replace("--no-cache-dir", "")
            step_started = time.monotonic()
            result = subprocess.run(
                ["sh", "-c", command],
                cwd=app_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            TIMINGS[f"RUN {command[:40]}..."] = time.monotonic() - step_started
            assert result.returncode == 0, (
                f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        elif instruction == "CMD":
            cmd = json.loads(arguments)
    TIMINGS["image layout (venv, install, compile, warm-up)"] = time.monotonic() - started
    assert cmd, "the Dockerfile has no CMD"
    yield Image(app_dir, venv, env, cmd)
    shutil.rmtree(base, ignore_errors=True)  # 800 MB of virtualenv


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    if not _postgres_reachable():
        unavailable("PostgreSQL on 127.0.0.1:5432")
    url = PG_URL.rsplit("/", 1)[0] + f"/coop_image_{os.getpid()}"
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = url.rsplit("/", 1)[1]
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- HTTP against the running gunicorn --------------------------------------------------------


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        # COOP_ENV=production marks the session cookie Secure; this is plain HTTP on loopback.
        jar = http.cookiejar.CookieJar(policy=_SecureOverHTTP())
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), _NoRedirect()
        )

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


class _SecureOverHTTP(http.cookiejar.DefaultCookiePolicy):
    def return_ok_secure(self, cookie: Any, request: Any) -> bool:
        return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def wait_for_health(
    browser: Browser, server: subprocess.Popen[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        try:
            status, _, body = browser.get("/healthz")
            last = (status, body)
            if status == 200:
                report: dict[str, Any] = json.loads(body)
                return report
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"/healthz did not answer 200: {last}")


# --- the check --------------------------------------------------------------------------------


def test_every_compose_service_runs_in_the_images_layout(
    image: Image,
    empty_database: str,
    own_redis: ControllableRedis,
    smtp_server: tuple[SMTPRecorder, int],
    tmp_path: Path,
) -> None:
    recorder, smtp_port = smtp_server
    own_redis.start()
    web_port = free_port()
    env = {
        # As docker-compose.yml's x-app environment, pointed at this machine's services.
        "COOP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": empty_database,
        "REDIS_URL": own_redis.url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEFAULT_SENDER": "coop <noreply@coop.localhost>",
        "BASE_URL": f"http://127.0.0.1:{web_port}",
        "TRUST_PROXY": "false",
    }
    # One copy of coop: the one in /app, whichever way it is imported.
    where = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", "import coop; print(coop.__file__)"],
        cwd=tmp_path,
        env=image.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == image.app_dir / "coop" / "__init__.py"

    # migrate: the schema and the measure catalogue, on an empty database.
    started = time.monotonic()
    migrate = image.run(image.compose["migrate"], env)
    TIMINGS["migrate"] = time.monotonic() - started
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert "measures in the catalogue" in migrate.stdout

    # web: the image's CMD (compose's web service has no command of its own).
    assert "web" not in image.compose
    bind = image.cmd.index("--bind") + 1
    command = [*image.cmd[:bind], f"127.0.0.1:{web_port}", *image.cmd[bind + 1 :]]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log_file:
        started = time.monotonic()
        server = subprocess.Popen(
            command,
            cwd=image.app_dir,
            env={**image.env, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            browser = Browser(f"http://127.0.0.1:{web_port}")
            health = wait_for_health(browser, server, timeout=60)
            TIMINGS["web up"] = time.monotonic() - started
            assert health["database"] == {"ok": True, "backend": "postgresql"}
            assert health["queue"]["ok"] is True
            assert health["periodic"] == {"ok": True, "last_round": None, "failing": []}

            # A page from a template, in Dutch from the compiled catalogue, with its stylesheet.
            status, _, page = browser.get("/")
            assert status == 200, page[-2000:]
            assert '<html lang="nl">' in page
            assert "Inloggen" in page
            assert browser.get("/static/css/coop.css")[0] == 200

            # A sign-up through the web process: its job goes to Redis for the worker.
            slug, form = _an_open_action(empty_database)
            status, _, form_page = browser.get(f"/actions/{slug}/register")
            assert status == 200
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form_page)
            assert token
            status, headers, body = browser.post(
                f"/actions/{slug}/register", {**form, "csrf_token": token.group(1)}
            )
            assert status == 302, body[-2000:]
            assert headers["Location"].endswith(f"/actions/{slug}/registered")

            # worker: runs what the web process handed over, and sends it over SMTP.
            started = time.monotonic()
            worker = image.run([*image.compose["worker"], "--burst"], env)
            TIMINGS["worker --burst"] = time.monotonic() - started
            assert worker.returncode == 0, worker.stderr[-3000:]
            [message] = recorder.to("anna@example.nl")
            assert message["Subject"].startswith("Bevestig je aanmelding")
            assert f"http://127.0.0.1:{web_port}/login/" in message_text(message)

            # scheduler: one round of every periodic task, recorded for /healthz.
            started = time.monotonic()
            scheduler = image.run([*image.compose["scheduler"], "--rounds", "1"], env)
            TIMINGS["scheduler, one round"] = time.monotonic() - started
            assert scheduler.returncode == 0, scheduler.stderr[-3000:]
            assert "scheduler round" in scheduler.stderr
            health = wait_for_health(browser, server, timeout=10)
            assert health["periodic"]["ok"] is True
            assert health["periodic"]["last_round"] is not None
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    assert "Booting worker" in log_path.read_text()
    print("\nimage check timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def _an_open_action(database_url: str) -> tuple[str, dict[str, Any]]:
    """The desk would create it on its pages; the test writes it directly. Its slug and a
    sign-up for it, as the form posts it."""
    from coop import create_app
    from coop.extensions import db
    from tests import factories

    app = create_app(base_config(database_url))
    with app.app_context():
        action = factories.action()
        slug, form = action.slug, factories.registration_form(action)
        db.session.remove()
        db.engine.dispose()
    return slug, form
