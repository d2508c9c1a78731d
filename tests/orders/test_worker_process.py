"""Matching and orders on the production shape: PostgreSQL, real Redis, real SMTP (aiosmtpd)
and real `python worker.py` processes. Staff work through the web pages; the jobs (matching,
every email) run in the worker.

The worker is killed with SIGKILL in the middle of a matching run: a restart completes the run
with one proposal, and approval then sends each order and each email once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from coop.actions import services as actions
from coop.core import jobs
from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import Batch, MatchingRun, Order, ProposedAssignment, RunStatus
from tests import factories
from tests.conftest import ROOT, SMTPRecorder, smtp_config

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only: the worker is a separate process, as in production."""
    return postgres_url


@pytest.fixture
def app_config(redis_url: str, smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_url,
        **smtp_config(smtp_server[1]),
        # A job handed over a second ago and not finished may be handed over again.
        "OUTBOX_REDISPATCH_AFTER": 1,
    }


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: RQ's work-horse puts itself in a session of its own, so a
    signal to the worker's process group does not reach it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class WorkerProcess:
    """`python worker.py`; ``kill`` takes the worker and every process it started with it
    (the work-horse running the job, the scheduler), as when a machine or container dies."""

    def __init__(self, app: Flask, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(app.config["MAIL_PORT"]),
            "SECRET_KEY": app.config["SECRET_KEY"],
            "BASE_URL": "http://localhost",
            "MATCHING_TIME_LIMIT": "5",
        }
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0

    def start(self) -> None:
        self.started += 1
        log = open(self.log_dir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--maintenance-interval", "5"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))


@pytest.fixture
def worker(app: Flask, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(app, tmp_path)
    yield process
    process.stop()


def wait_for(
    condition: Callable[[], Any], what: str, worker: WorkerProcess, seconds: float = 60
) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{worker.output()}")


def all_jobs_done(app: Flask) -> bool:
    with app.app_context():
        states = set(db.session.scalars(select(OutboxJob.status)))
        db.session.remove()
        return states <= {JobStatus.DONE}


def log_in(client: FlaskClient, email: str) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302


@pytest.fixture
def closed_action(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """A closed action with 14 roofs and 2 heat pumps in two postcode areas, and three
    installers from the registry."""
    with app.app_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act = factories.action(org)
        installers = [
            factories.installer(org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 4)}),
            factories.installer(
                org,
                "Warmte en Dak Utrecht",
                area="3500-3599",
                offers={"roof": (4600, 4), "hybrid_heat_pump": (310000, 2)},
            ),
            factories.installer(
                org, "Isolatie Zuid", area="3524", offers={"roof": (4300, 3)}, kvk="55512345"
            ),
        ]
        for number in range(1, 11):
            factories.confirmed_registration(act, postcode="3521 AB", number=number)
        for number in range(1, 5):
            factories.confirmed_registration(
                act, postcode="3524 BA", number=number, street="Hondsrug"
            )
        for number in range(20, 22):
            factories.confirmed_registration(
                act,
                postcode="3524 BA",
                number=number,
                street="Hondsrug",
                measures={"hybrid_heat_pump": 1},
            )
        actions.close_action(staff, act)
        ids = {"action": act.id, "installers": [i.id for i in installers]}
    log_in(client, "staff@example.nl")
    return ids


def test_a_worker_killed_during_matching_is_restarted_and_finishes_with_one_proposal(
    app: Flask,
    client: FlaskClient,
    closed_action: dict[str, Any],
    worker: WorkerProcess,
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    smtp = smtp_server[0]
    action_id = closed_action["action"]
    response = factories.post_form(
        client,
        f"/desk/actions/{action_id}/matching",
        {"use_registry_prices": "y", "registry_weeks": "4"},
    )
    assert response.status_code == 302
    run_url = response.headers["Location"]
    run_id = int(run_url.rsplit("/", 1)[1])

    # Someone else holds the action's row (an approval, say): the run can batch and solve,
    # but must wait to store its proposal. That is where the worker will die.
    with app.app_context():
        holder = db.engine.connect()
        transaction = holder.begin()
        holder.execute(
            text("SELECT id FROM actions WHERE id = :id FOR NO KEY UPDATE"), {"id": action_id}
        )

        def stage() -> str | None:
            with db.engine.connect() as connection:
                return connection.execute(
                    text("SELECT stage FROM matching_runs WHERE id = :id"), {"id": run_id}
                ).scalar()

        worker.start()
        wait_for(lambda: stage() == "storing", "the run to reach its last step", worker)
        progress = client.get(f"{run_url}/status").get_json()
        assert progress == {
            "status": "running",
            "stage": "storing",
            "label": progress["label"],
            "progress": 90,
            "finished": False,
        }
        worker.kill()
        transaction.rollback()
        holder.close()

        # The batches were committed before the kill; the proposal was not.
        assert db.session.scalar(select(func.count()).select_from(Batch)) == 3
        assert db.session.scalar(select(func.count()).select_from(ProposedAssignment)) == 0
        run = db.session.get(MatchingRun, run_id)
        assert run is not None and run.status is RunStatus.RUNNING and run.attempts == 1
        db.session.remove()

    # A new worker, and the outbox sweep hands the unfinished job over again.
    worker.start()
    with app.test_request_context():
        # As the scheduler's sweep would, a little later (the job is older than the grace the
        # sweep gives a job just handed over).
        assert jobs.sweep(now=utcnow() + timedelta(seconds=30)) >= 1
        db.session.remove()
    wait_for(lambda: all_jobs_done(app), "the run and its emails", worker)
    with app.app_context():
        run = db.session.get(MatchingRun, run_id)
        assert run is not None and run.status is RunStatus.PROPOSED
        assert run.attempts == 2, worker.output()
        assert (run.homes_total, run.homes_covered) == (16, 16)
        assert db.session.scalar(select(func.count()).select_from(Batch)) == 3
        proposals = db.session.scalars(select(ProposedAssignment)).all()
        assert sum(p.homes for p in proposals) == 16
        assert len({(p.batch_id, p.installer_id) for p in proposals}) == len(proposals)
        db.session.remove()
    page = client.get(run_url).get_data(as_text=True)
    assert 'data-status="proposed"' in page

    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 302
    wait_for(lambda: all_jobs_done(app), "the order and assignment emails", worker)
    with app.app_context():
        orders = db.session.scalars(select(Order)).all()
        assert sum(len(o.lines) for o in orders) == 16
        assert len({(o.batch_id, o.installer_id) for o in orders}) == len(orders)
        sent = db.session.scalars(select(EmailLog).where(EmailLog.status == EmailStatus.SENT)).all()
        keys = [e.key for e in sent]
        assert len(keys) == len(set(keys))
        residents = [e for e in sent if e.template == "registration_assigned"]
        assert len(residents) == 16
        expected = len(sent)
        db.session.remove()

    # Every job delivered again (a retry after the kill, a re-queued job): nothing is sent twice.
    with app.test_request_context():
        ids = list(db.session.scalars(select(OutboxJob.id)))
        db.session.remove()
        jobs.dispatcher().hand_over(ids)
    wait_for(lambda: all_jobs_done(app), "the repeated jobs", worker)
    time.sleep(1)
    assert len(smtp.envelopes) == expected
    message_ids = [m["Message-ID"] for m in smtp.messages]
    assert len(message_ids) == len(set(message_ids))
