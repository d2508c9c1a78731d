"""The pieces that run coop outside the test process: worker.py on real Redis and PostgreSQL,
and the docker-compose file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.extensions import db
from tests import factories
from tests.conftest import ROOT, unavailable


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
