"""The pieces that run coop outside the test process: worker.py on real Redis and PostgreSQL,
and the docker-compose file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from tests import factories
from tests.conftest import ROOT, ControllableRedis, SMTPRecorder, smtp_config, unavailable

# How long Redis is away in the outage tests (the issue saw the worker exit within 20 s).
OUTAGE_SECONDS = 8


def test_compose_file_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("docker-compose (Debian package docker-compose) to validate the compose file")
    assert binary is not None
    env = {**os.environ, "SECRET_KEY": "x" * 40}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for service in ("postgres", "redis", "web", "worker", "scheduler", "mailcatcher"):
        assert f"  {service}:" in result.stdout
    # Without a secret key the file refuses to start rather than run with a default.
    env.pop("SECRET_KEY")
    refused = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "SECRET_KEY" in refused.stderr


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_config", [{}], indirect=True)
def test_worker_process_sends_the_confirmation_email(app, client, redis_url, smtp_server) -> None:
    """A real `python worker.py` process picks the job from Redis and sends over real SMTP."""
    recorder, port = smtp_server
    app.config.update(
        {
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "MAIL_SUPPRESS_SEND": False,
        }
    )
    from coop.core.jobs import init_app

    init_app(app)  # switch the dispatcher to RQ for this app
    with app.app_context():
        act = factories.action()
        data = factories.registration_form(act)
    response = factories.post_form(client, f"/actions/{act.slug}/register", data)
    assert response.status_code == 302

    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BASE_URL": "http://localhost",
    }
    worker = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    deadline = time.monotonic() + 10
    while not recorder.envelopes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.rcpt_tos for e in recorder.envelopes] == [["anna@example.nl"]]
    with app.app_context():
        job = db.session.scalars(select(OutboxJob)).one()
        assert job.status is JobStatus.DONE
        assert db.session.scalars(select(EmailLog)).one().status is EmailStatus.SENT


def _wait_until(condition: Any, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_process_waits_out_a_redis_outage(
    app: Flask,
    client: FlaskClient,
    own_redis: ControllableRedis,
    smtp_server: tuple[SMTPRecorder, int],
    tmp_path: Path,
) -> None:
    """Redis stops for a while and starts again empty: the same `python worker.py` process is
    still there and sends what the sweep hands over after the outage; SIGTERM ends it at once."""
    recorder, port = smtp_server
    own_redis.start()
    app.config.update({"REDIS_URL": own_redis.url, **smtp_config(port)})
    from coop.core import jobs

    jobs.init_app(app)
    with app.app_context():
        act = factories.action()
        anna = factories.registration_form(act)
        bert = factories.registration_form(act, email="bert@example.nl", house_number="14")
    output = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--maintenance-interval", "5"],
        env={
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": own_redis.url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(port),
            "SECRET_KEY": app.config["SECRET_KEY"],
            "BASE_URL": "http://localhost",
        },
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    log = tmp_path / "worker.log"
    try:
        # Redis goes away while the worker is sending Anna's confirmation.
        recorder.hold = threading.Event()
        assert factories.post_form(client, f"/actions/{act.slug}/register", anna).status_code == 302
        assert _wait_until(lambda: recorder.holding == 1, 30), log.read_text()[-3000:]
        own_redis.stop()
        recorder.hold.set()
        assert _wait_until(lambda: recorder.to("anna@example.nl"), 10)
        time.sleep(OUTAGE_SECONDS)
        assert worker.poll() is None, "the worker exited:\n" + log.read_text()[-3000:]
        token = factories.csrf_token(client, f"/actions/{act.slug}/register")
        response = client.post(f"/actions/{act.slug}/register", data={**bert, "csrf_token": token})
        assert response.status_code == 302  # the outbox row waits for Redis

        own_redis.start()  # empty: what it held is gone
        with app.app_context():
            assert jobs.sweep(now=utcnow() + timedelta(minutes=1)) == 1
        assert _wait_until(lambda: recorder.to("bert@example.nl"), 60), log.read_text()[-3000:]
        assert worker.poll() is None
        assert [m["To"] for m in recorder.messages] == ["anna@example.nl", "bert@example.nl"]
    finally:
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
        output.close()
    assert code == 0, log.read_text()[-3000:]
    assert time.monotonic() - started < 10, "the worker took long to stop"
