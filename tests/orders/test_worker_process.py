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
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.orders.models import (
    Batch,
    MatchingRun,
    Order,
    OrderLine,
    ProposedAssignment,
    Quote,
    RunStatus,
    RunTrigger,
)
from coop.registrations.models import Registration, RegistrationStatus
from coop.tenders.models import TenderRound
from tests import factories
from tests.conftest import ROOT, SMTPRecorder, smtp_config
from tests.orders.world import act_as

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


def test_the_whole_chain_from_registrations_to_installed_work(
    app: Flask,
    client: FlaskClient,
    worker: WorkerProcess,
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    """Registrations -> close -> batches -> tender -> matching -> approval -> one installer
    accepts, another declines -> re-matching -> approval -> survey -> quote -> the resident
    accepts -> installed -> confirmed; every job in the worker, every email over SMTP once."""
    smtp = smtp_server[0]
    with app.app_context():
        org = factories.organisation()
        factories.staff(org)
        act = factories.action(org)
        local = factories.installer(
            org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)}
        )
        wide = factories.installer(
            org,
            "Warmte en Dak Utrecht",
            area="3500-3599",
            offers={"roof": (4500, 5)},
            kvk="55500001",
        )
        south = factories.installer(
            org, "Isolatie Zuid", area="3524", offers={"roof": (4700, 5)}, kvk="55500002"
        )
        users = {i.id: factories.installer_user(i).id for i in (local, wide, south)}
        lunetten = [
            factories.confirmed_registration(act, postcode="3521 AB", number=n) for n in (1, 2, 3)
        ]
        hondsrug = [
            factories.confirmed_registration(act, postcode="3524 BA", number=n, street="Hondsrug")
            for n in (4, 5)
        ]
        ids = {
            "action": act.id,
            "local": local.id,
            "wide": wide.id,
            "south": south.id,
            "resident": lunetten[0].user_id,
            "registration": lunetten[0].id,
            "hondsrug": [r.id for r in hondsrug],
            "roof": act.measures[0].id,
        }
    log_in(client, "staff@example.nl")
    worker.start()
    desk = f"/desk/actions/{ids['action']}"

    # Registration closes: the worker groups the demand.
    assert factories.post_form(client, f"{desk}/close", {}, token_from=desk).status_code == 302
    wait_for(lambda: all_jobs_done(app), "the batches", worker)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Batch)) == 2

    # A tender round: the three installers bid on their portal.
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()
    response = factories.post_form(
        client,
        f"{desk}/tender/new",
        {
            "installers": [ids["local"], ids["wide"], ids["south"]],
            "deadline_on": tomorrow,
            "deadline_at": "17:00",
            "step": "send",  # the confirmation's button: whom it goes to was checked
        },
    )
    assert response.status_code == 302
    with app.app_context():
        tender = db.session.scalars(select(TenderRound)).one()
        invitations = {i.installer_id: i.id for i in tender.invitations}
    bidder = app.test_client()
    for installer_id, price in (
        (ids["local"], "39,00"),
        (ids["wide"], "41,00"),
        (ids["south"], "43,00"),
    ):
        act_as(bidder, users[installer_id])
        url = f"/installer/tenders/{invitations[installer_id]}"
        response = factories.post_form(
            bidder, url, {f"price_{ids['roof']}": price, f"capacity_{ids['roof']}": "10"}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
    wait_for(lambda: all_jobs_done(app), "the invitations", worker)

    # The deadline passes; the scheduler's next round starts matching with the bids.
    with app.test_request_context():
        tender = db.session.scalars(select(TenderRound)).one()
        tender.deadline = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.run_periodic_tasks()["orders.start_after_tenders"] == 1
        db.session.remove()
    wait_for(lambda: all_jobs_done(app), "the first matching", worker)
    with app.app_context():
        run = db.session.scalars(select(MatchingRun)).one()
        assert run.status is RunStatus.PROPOSED and run.homes_covered == 5
        run_id = run.id
        db.session.remove()
    run_url = f"{desk}/matching/{run_id}"
    assert (
        factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url).status_code == 302
    )
    wait_for(lambda: all_jobs_done(app), "the orders and the residents' emails", worker)

    with app.app_context():
        by_installer = {o.installer_id: o.id for o in db.session.scalars(select(Order))}
        # The cheapest local roofer takes Lunetten; the cheaper of the two in 3524 the Hondsrug.
        assert set(by_installer) == {ids["local"], ids["wide"]}
    installer = app.test_client()
    act_as(installer, users[ids["local"]])
    order_url = f"/installer/orders/{by_installer[ids['local']]}"
    assert (
        factories.post_form(installer, f"{order_url}/accept", {}, token_from=order_url).status_code
        == 302
    )
    act_as(installer, users[ids["wide"]])
    declined_url = f"/installer/orders/{by_installer[ids['wide']]}"
    response = factories.post_form(
        installer, f"{declined_url}/decline", {"reason": "Geen ploeg vrij"}, token_from=declined_url
    )
    assert response.status_code == 302
    wait_for(lambda: all_jobs_done(app), "the re-matching", worker)
    with app.app_context():
        rematch = db.session.scalars(select(MatchingRun).order_by(MatchingRun.id.desc())).first()
        assert rematch is not None and rematch.trigger is RunTrigger.ORDER_DECLINED
        assert rematch.status is RunStatus.PROPOSED and rematch.homes_total == 2
        assert {
            r.status
            for r in db.session.scalars(
                select(Registration).where(Registration.id.in_(ids["hondsrug"]))
            )
        } == {RegistrationStatus.CONFIRMED}
        rematch_url = f"{desk}/matching/{rematch.id}"
        db.session.remove()
    assert (
        factories.post_form(
            client, f"{rematch_url}/approve", {}, token_from=rematch_url
        ).status_code
        == 302
    )
    wait_for(lambda: all_jobs_done(app), "the second orders", worker)
    with app.app_context():
        new_order = db.session.scalars(
            select(Order).where(Order.installer_id == ids["south"])
        ).one()
        assert len(new_order.lines) == 2
        db.session.remove()

    # The survey, the quote, the resident's yes, the installation and the confirmation.
    act_as(installer, users[ids["local"]])
    with app.app_context():
        line = db.session.scalars(
            select(OrderLine).where(OrderLine.registration_id == ids["registration"])
        ).one()
        line_id = line.id
    in_three_days = (utcnow() + timedelta(days=3)).astimezone(AMSTERDAM).date().isoformat()
    in_two_weeks = (utcnow() + timedelta(days=14)).astimezone(AMSTERDAM).date().isoformat()
    today = utcnow().astimezone(AMSTERDAM).date().isoformat()
    survey_url = f"/installer/lines/{line_id}/survey"
    assert (
        factories.post_form(
            installer, survey_url, {"day": in_three_days, "at": "10:00", "duration": "60"}
        ).status_code
        == 302
    )
    quote_url = f"/installer/lines/{line_id}/quote"
    response = factories.post_form(
        installer,
        quote_url,
        {
            "description_0": "Dakisolatie",
            "quantity_0": "40",
            "price_0": "39,00",
            "vat_0": "9",
            "valid_until": in_two_weeks,
            "send": "1",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        quote = db.session.scalars(select(Quote)).one()
        quote_id = quote.id
    resident = app.test_client()
    act_as(resident, ids["resident"])
    quote_page = f"/my/quotes/{quote_id}"
    assert (
        factories.post_form(resident, f"{quote_page}/accept", {}, token_from=quote_page).status_code
        == 302
    )
    assert (
        factories.post_form(
            installer, f"/installer/lines/{line_id}/installed", {"day": today}
        ).status_code
        == 302
    )
    assert (
        factories.post_form(resident, f"/my/lines/{line_id}/confirm", {"rating": "5"}).status_code
        == 302
    )
    wait_for(lambda: all_jobs_done(app), "the last emails", worker)

    with app.app_context():
        registration = db.session.get(Registration, ids["registration"])
        assert registration is not None and registration.status is RegistrationStatus.COMPLETED
        assert [c.to_status.value for c in registration.history] == [
            "pending_confirmation",
            "confirmed",
            "assigned",
            "survey_planned",
            "quoted",
            "accepted",
            "installed",
            "completed",
        ]
        sent = db.session.scalars(select(EmailLog)).all()
        assert {e.status for e in sent} == {EmailStatus.SENT}
        templates = [e.template for e in sent if e.recipient.startswith("resident-3521ab-1@")]
        for template in (
            "registration_assigned",
            "survey_planned",
            "quote_sent",
            "quote_accepted_resident",
            "work_installed",
        ):
            assert templates.count(template) == 1, (template, templates)
        assert len(smtp.envelopes) == len(sent)
    message_ids = [m["Message-ID"] for m in smtp.messages]
    assert len(message_ids) == len(set(message_ids))
