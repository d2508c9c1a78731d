"""Every periodic task runs on PostgreSQL, with data that makes it do its work, as a scheduler
round runs it; and a task that fails shows on /healthz until a round of it succeeds.

SQLite ignores ``FOR UPDATE``, so a lock PostgreSQL refuses (an outer join from an eager load)
only shows here. A new periodic task must get a scenario in ``SCENARIOS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from coop.actions import services as actions
from coop.core import jobs
from coop.core.models import JobStatus, OutboxJob, PeriodicTaskState
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.desk.models import SegmentUpdate, UpdateStatus
from coop.extensions import db
from coop.orders.models import Order, Quote
from coop.participation import meetings
from coop.participation.models import Meeting
from coop.registrations import services as registrations
from coop.registrations.models import DwellingType, Ownership, Registration
from coop.tenders import services as tenders
from coop.tenders.services import BidInput
from tests import factories
from tests.orders import world as order_world

# --- one scenario per task: data that gives it work to do now ---------------------------------


def _action_past_its_closing_time() -> None:
    factories.action(closes_in_days=-0.01)


def _tender_past_its_deadline() -> None:
    org = factories.organisation()
    staff = factories.staff(org)
    act = factories.action(org)
    company = factories.installer(org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)})
    fitter = factories.installer_user(company)
    for number in (1, 2):
        factories.confirmed_registration(act, postcode="3521 AB", number=number)
    then = utcnow() - timedelta(hours=3)
    actions.close_action(staff, act, now=then)
    jobs.dispatcher().run_pending()  # the batches
    tender = tenders.open_round(
        staff, act, [company.id], deadline=then + timedelta(hours=2), now=then
    )
    roof = next(m.id for m in act.measures if m.measure.code == "roof")
    tenders.submit_bid(fitter, tender.invitations[0], {roof: BidInput(3900, 10)}, now=then)


def _orders_world(respond_in: timedelta) -> order_world.World:
    world = order_world.build()
    db.session.execute(
        update(Order).where(Order.id == world.order_y).values(respond_by=utcnow() + respond_in)
    )
    db.session.commit()
    return world


def _order_past_its_deadline() -> None:
    _orders_world(-timedelta(hours=1))


def _order_due_a_reminder() -> None:
    _orders_world(timedelta(hours=12))


def _quote_valid_until(days_from_today: int) -> None:
    world = order_world.build()
    quote = order_world.quote_sent(world, world.registrations_x[0])
    db.session.execute(
        update(Quote)
        .where(Quote.id == quote.id)
        .values(valid_until=local_today(utcnow()) + timedelta(days=days_from_today))
    )
    db.session.commit()


def _quote_expired() -> None:
    _quote_valid_until(-1)


def _quote_due_a_reminder() -> None:
    _quote_valid_until(1)


def _unconfirmed_registration(hours_ago: int, reminded_hours_ago: int | None = None) -> None:
    act = factories.action()
    registration = registrations.register(
        act,
        registrations.RegistrationInput(
            name="Anna de Vries",
            email="anna@example.nl",
            phone=None,
            address=registrations.Address(
                postcode="3524 BA", house_number=12, addition="", street="Hondsrug", city="Utrecht"
            ),
            dwelling=registrations.Dwelling(
                dwelling_type=DwellingType.TERRACED,
                build_year=1978,
                ownership=Ownership.OWNER,
                energy_label="D",
            ),
            measures={act.measures[0].id: 45},
            consent=True,
        ),
    )
    jobs.dispatcher().run_pending()  # the confirmation email
    now = utcnow()
    db.session.execute(
        update(Registration)
        .where(Registration.id == registration.id)
        .values(
            created_at=now - timedelta(hours=hours_ago),
            reminder_sent_at=(
                None if reminded_hours_ago is None else now - timedelta(hours=reminded_hours_ago)
            ),
        )
    )
    db.session.commit()


def _registration_due_a_reminder() -> None:
    _unconfirmed_registration(hours_ago=49)


def _registration_past_confirmation() -> None:
    _unconfirmed_registration(hours_ago=24 * 8, reminded_hours_ago=48)


def _scheduled_update_due() -> None:
    org = factories.organisation()
    staff = factories.staff(org)
    act = factories.action(org)
    factories.confirmed_registration(act)
    item = SegmentUpdate(
        organisation_id=org.id,
        action_id=act.id,
        created_by_id=staff.id,
        subject_nl="Nieuws",
        subject_en="News",
        body_nl="De informatieavond is op dinsdag.",
        body_en="The information evening is on Tuesday.",
        segment={},
        status=UpdateStatus.SCHEDULED,
        send_at=utcnow() - timedelta(minutes=1),
    )
    db.session.add(item)
    db.session.commit()


def _meeting_tomorrow() -> None:
    meeting = factories.meeting(factories.organisation(), capacity=5, starts_in_days=0.5)
    meetings.rsvp(
        meeting, name="Anna de Vries", email="anna@example.nl", language="nl", consent=True
    )
    jobs.dispatcher().run_pending()


def _meeting_long_past() -> None:
    meeting = factories.meeting(factories.organisation(), capacity=5)
    meetings.rsvp(
        meeting, name="Anna de Vries", email="anna@example.nl", language="nl", consent=True
    )
    jobs.dispatcher().run_pending()
    starts = utcnow() - timedelta(days=40)
    db.session.execute(
        update(Meeting)
        .where(Meeting.id == meeting.id)
        .values(starts_at=starts, ends_at=starts + timedelta(hours=2))
    )
    db.session.commit()


@jobs.job("tests.core.periodic_noop")
def _noop() -> None:
    pass


def _job_that_never_reached_a_worker() -> None:
    jobs.enqueue("tests.core.periodic_noop", "periodic-noop:1")
    db.session.commit()
    jobs.dispatcher().run_pending()  # nothing: not due for a minute
    db.session.execute(
        update(OutboxJob).values(
            status=JobStatus.PENDING, created_at=utcnow() - timedelta(minutes=5)
        )
    )
    db.session.commit()


def _login_request_left_behind() -> None:
    # A request whose job failed for good keeps the address someone typed; after a day it goes.
    from coop.accounts.models import LoginLinkRequest

    db.session.add(
        LoginLinkRequest(email="typed@example.nl", created_at=utcnow() - timedelta(days=2))
    )
    db.session.commit()


SCENARIOS: dict[str, Callable[[], None]] = {
    "accounts.forget_login_requests": _login_request_left_behind,
    "actions.close_ended": _action_past_its_closing_time,
    "orders.start_after_tenders": _tender_past_its_deadline,
    "orders.expire_orders": _order_past_its_deadline,
    "orders.remind_orders": _order_due_a_reminder,
    "orders.expire_quotes": _quote_expired,
    "orders.remind_quotes": _quote_due_a_reminder,
    "registrations.remind_unconfirmed": _registration_due_a_reminder,
    "registrations.expire_unconfirmed": _registration_past_confirmation,
    "desk.send_scheduled_updates": _scheduled_update_due,
    "participation.meeting_reminders": _meeting_tomorrow,
    "participation.erase_past_rsvps": _meeting_long_past,
    jobs.SWEEP_TASK: _job_that_never_reached_a_worker,
}


# Tasks whose work is all in their own transaction (no email or other job after it).
WITHOUT_FOLLOW_UP = {
    "accounts.forget_login_requests",
    "registrations.expire_unconfirmed",
    "participation.erase_past_rsvps",
    jobs.SWEEP_TASK,
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_periodic_task_has_a_scenario(app: Flask) -> None:
    registered = {*jobs._periodic, jobs.SWEEP_TASK}
    missing = sorted(registered - set(SCENARIOS))
    assert missing == [], f"periodic tasks no test runs with work to do: {missing}"
    assert sorted(set(SCENARIOS) - registered) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("task", sorted(SCENARIOS))
def test_a_scheduler_round_does_the_work_of_each_task_on_postgresql(
    app: Flask, client: FlaskClient, task: str
) -> None:
    with app.test_request_context():
        SCENARIOS[task]()
        before = {row.id for row in db.session.scalars(select(OutboxJob))}
        db.session.remove()

        done = jobs.run_periodic_tasks()

        assert done[task] >= 1, done
        assert [name for name, did in done.items() if did < 0] == []
        # The jobs the round wrote ran too, on the same database, without an error.
        made = [r for r in db.session.scalars(select(OutboxJob)) if r.id not in before]
        if task not in WITHOUT_FOLLOW_UP:
            assert made, f"{task} did its work but asked for no follow-up"
        assert [(r.key, r.last_error) for r in made if r.status is not JobStatus.DONE] == []
        states = {s.name: s for s in db.session.scalars(select(PeriodicTaskState))}
        assert states[task].last_success_at is not None
        assert [s.name for s in states.values() if s.failing_since is not None] == []
    health = client.get("/healthz").get_json()
    assert health["periodic"]["ok"] is True
    assert health["periodic"]["last_round"] is not None


# --- a failing task shows on /healthz until it succeeds ---------------------------------------


@pytest.fixture
def flaky_task(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A periodic task of the test's own, that fails while ``state["fail"]`` is set."""
    state: dict[str, Any] = {"fail": True, "runs": 0}

    def task() -> int:
        state["runs"] += 1
        if state["fail"]:
            raise RuntimeError("the database said no")
        return 1

    monkeypatch.setitem(jobs._periodic, "tests.flaky", task)
    yield state


def test_a_failing_task_turns_healthz_503_by_name_until_a_round_of_it_succeeds(
    app: Flask, client: FlaskClient, flaky_task: dict[str, Any]
) -> None:
    assert client.get("/healthz").status_code == 200
    runner = app.test_cli_runner()
    for _ in range(2):
        # `coop sweep` is one round, as `coop scheduler` runs them (another process: the state
        # is in the database).
        result = runner.invoke(args=["sweep"])
        assert result.exit_code == 0, result.output
        assert "tests.flaky=-1" in result.output

    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["periodic"]["ok"] is False
    [failing] = body["periodic"]["failing"]
    assert failing["task"] == "tests.flaky"
    assert failing["rounds"] == 2
    assert failing["error"] == "RuntimeError"
    assert "database said no" not in response.get_data(as_text=True)  # a public page
    # The other tasks ran in the same rounds, and are fine.
    assert body["database"]["ok"] is True

    flaky_task["fail"] = False
    result = runner.invoke(args=["scheduler", "--rounds", "1", "--every", "0"])
    assert result.exit_code == 0, result.output
    assert client.get("/healthz").status_code == 200
    assert flaky_task["runs"] == 3
    with app.app_context():
        state = db.session.get(PeriodicTaskState, "tests.flaky")
        assert state is not None
        assert (state.failing_since, state.failures, state.last_error) == (None, 0, None)


def test_a_task_no_longer_in_the_code_does_not_keep_healthz_red(
    app: Flask, client: FlaskClient, flaky_task: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        jobs.run_periodic_tasks()
    assert client.get("/healthz").status_code == 503
    monkeypatch.delitem(jobs._periodic, "tests.flaky")  # renamed or removed in a new version
    assert client.get("/healthz").status_code == 200
