"""The job outbox: work recorded with the state change, run once, never lost.

Embedded mode (no REDIS_URL) runs jobs in-process after the request; with Redis the outbox id is
handed to RQ after the commit. The Redis-outage test stops a real redis-server mid-way.
"""

from __future__ import annotations

import signal
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import User
from coop.core import execution, jobs
from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations import services as registrations
from coop.registrations.models import DwellingType, Ownership, Registration
from coop.residents import services as residents
from tests import factories
from tests.conftest import ControllableRedis, SMTPRecorder, smtp_config

# --- a job handler of our own, so failures can be switched on and off ---------------------

calls: list[str] = []
failures_left: dict[str, int] = {}


@jobs.job("tests.core.record")
def record(label: str) -> None:
    calls.append(label)
    if failures_left.get(label, 0) > 0:
        failures_left[label] -= 1
        raise RuntimeError(f"{label} is not possible right now")


@pytest.fixture(autouse=True)
def _clean_handler_state() -> Iterator[None]:
    calls.clear()
    failures_left.clear()
    yield
    calls.clear()
    failures_left.clear()


def outbox_rows() -> list[OutboxJob]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxJob).order_by(OutboxJob.id)))


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def later(minutes: int = 1) -> Any:
    """A sweep time past the hand-over grace period of every row made in the test."""
    return utcnow() + timedelta(minutes=minutes)


def registration_input(email: str = "anna@example.nl") -> registrations.RegistrationInput:
    return registrations.RegistrationInput(
        name="Anna de Vries",
        email=email,
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
        measures={},
        consent=True,
    )


def register_anna(act: Any) -> Registration:
    data = registration_input()
    data.measures = {act.measures[0].id: 45}
    return registrations.register(act, data)


# --- embedded mode: jobs run in this process after the request ----------------------------


def test_registration_request_runs_its_confirmation_job_after_the_request(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        data = factories.registration_form(act)
    response = factories.post_form(client, f"/actions/{act.slug}/register", data)
    assert response.status_code == 302
    with app.app_context():
        [row] = outbox_rows()
        assert row.name == "registrations.send_confirmation"
        assert row.status is JobStatus.DONE
        assert row.attempts == 1
        assert row.finished_at is not None
        [email] = db.session.scalars(select(EmailLog)).all()
        assert email.key == row.key
        assert email.recipient == "anna@example.nl"
        assert email.status is EmailStatus.SENT


def test_job_waits_for_the_commit_and_runs_only_when_handed_over(ctx: Flask) -> None:
    jobs.enqueue("tests.core.record", "record:1", label="one")
    assert calls == []
    db.session.commit()
    # Committed and handed to the in-process queue, but not run inside the service call.
    assert calls == []
    assert [r.status for r in outbox_rows()] == [JobStatus.PENDING]
    assert jobs.dispatcher().run_pending() == 1
    assert calls == ["one"]
    assert [r.status for r in outbox_rows()] == [JobStatus.DONE]


def test_same_key_twice_stores_one_row_and_runs_once(ctx: Flask) -> None:
    first = jobs.enqueue("tests.core.record", "record:twice", label="a")
    second = jobs.enqueue("tests.core.record", "record:twice", label="b")
    assert first is second
    db.session.commit()
    # The key is also unique across transactions (a double click, a retried request).
    jobs.enqueue("tests.core.record", "record:twice", label="c")
    db.session.commit()
    assert jobs.enqueue_once("tests.core.record", "record:twice", label="d") is not None
    jobs.dispatcher().run_pending()
    assert len(outbox_rows()) == 1
    assert calls == ["a"]


def test_a_new_key_is_not_looked_up_but_still_stored_once(ctx: Flask) -> None:
    """``new_key``: the caller has just written the row the key names (a sign-up's confirmation
    link), so the key is not looked up first; the unique index still refuses a second row."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        jobs.enqueue("tests.core.record", "record:new", new_key=True, label="a")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in seen] == ["INSERT"], seen
    db.session.commit()
    with pytest.raises(IntegrityError):
        jobs.enqueue("tests.core.record", "record:new", new_key=True, label="b")
    db.session.rollback()
    jobs.dispatcher().run_pending()
    assert len(outbox_rows()) == 1
    assert calls == ["a"]


def test_many_at_once_store_each_key_once_and_run_after_the_commit(ctx: Flask) -> None:
    jobs.enqueue("tests.core.record", "record:m1", label="earlier")
    db.session.commit()
    jobs.dispatcher().run_pending()
    rows = jobs.enqueue_many(
        "tests.core.record",
        [
            ("record:m1", {"label": "again"}),
            ("record:m2", {"label": "two"}),
            ("record:m3", {"label": "three"}),
        ],
    )
    assert [r.key for r in rows] == ["record:m1", "record:m2", "record:m3"]
    assert jobs.dispatcher().run_pending() == 0  # nothing before the commit
    db.session.commit()
    assert jobs.dispatcher().run_pending() == 2
    assert calls == ["earlier", "two", "three"]
    assert len(outbox_rows()) == 3
    with pytest.raises(KeyError):
        jobs.enqueue_many("tests.core.no_such_job", [("x:1", {})])


def test_enqueue_refuses_an_unknown_job_name(ctx: Flask) -> None:
    with pytest.raises(KeyError):
        jobs.enqueue("tests.core.no_such_job", "nothing:1")


def test_failing_job_stays_pending_with_its_error_and_the_sweep_retries_it(ctx: Flask) -> None:
    failures_left["flaky"] = 1
    jobs.enqueue("tests.core.record", "record:flaky", label="flaky")
    db.session.commit()
    assert jobs.dispatcher().run_pending() == 1
    [row] = outbox_rows()
    assert row.status is JobStatus.PENDING
    assert row.attempts == 1
    assert row.last_error == "RuntimeError: flaky is not possible right now"
    assert row.finished_at is None

    # Within the grace period the sweep leaves a just-written row to its own hand-over.
    assert jobs.sweep(now=utcnow()) == 0
    assert jobs.sweep(now=later()) == 1
    [row] = outbox_rows()
    assert row.status is JobStatus.DONE
    assert row.attempts == 2
    assert row.last_error is None
    assert calls == ["flaky", "flaky"]
    # Done is done: later sweeps leave it alone.
    assert jobs.sweep(now=later(60)) == 0
    assert calls == ["flaky", "flaky"]


def test_job_failing_every_time_is_failed_after_the_last_attempt(ctx: Flask) -> None:
    ctx.config["OUTBOX_MAX_ATTEMPTS"] = 3
    failures_left["broken"] = 99
    jobs.enqueue("tests.core.record", "record:broken", label="broken")
    db.session.commit()
    jobs.dispatcher().run_pending()
    assert jobs.sweep(now=later()) == 1
    [row] = outbox_rows()
    assert (row.status, row.attempts) == (JobStatus.PENDING, 2)
    assert jobs.sweep(now=later()) == 1
    [row] = outbox_rows()
    assert (row.status, row.attempts) == (JobStatus.FAILED, 3)
    assert "broken is not possible" in (row.last_error or "")
    # Failed for good: no endless retry, and executing it directly does nothing.
    assert jobs.sweep(now=later(60)) == 0
    assert jobs.execute(row.id) == "already-failed"
    assert len(calls) == 3


def test_execute_twice_runs_the_handler_once(ctx: Flask) -> None:
    row = jobs.enqueue("tests.core.record", "record:once", label="once")
    db.session.commit()
    job_id = row.id
    assert jobs.execute(job_id) == "done"
    assert jobs.execute(job_id) == "already-done"
    # The in-process queue still holds the id from the commit: a third run, still nothing.
    jobs.dispatcher().run_pending()
    assert calls == ["once"]


def test_job_not_due_yet_waits(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    row = jobs.enqueue(
        "tests.core.record", "record:later", run_after=utcnow() + timedelta(hours=1), label="x"
    )
    db.session.commit()
    assert jobs.execute(row.id) == "not-due"
    assert jobs.dispatcher().run_pending() == 1  # the commit's hand-over: still not due
    assert jobs.sweep(now=later()) == 0
    assert calls == []
    # An hour later the sweep finds it due and it runs.
    an_hour_later = later(61)
    monkeypatch.setattr(jobs, "utcnow", lambda: an_hour_later)
    monkeypatch.setattr(execution, "utcnow", lambda: an_hour_later)
    assert jobs.sweep() == 1
    assert calls == ["x"]
    assert [r.status for r in outbox_rows()] == [JobStatus.DONE]


def test_job_for_an_erased_resident_does_nothing(ctx: Flask) -> None:
    act = factories.action()
    registration = register_anna(act)
    [row] = outbox_rows()
    assert row.status is JobStatus.PENDING  # handed over, waiting for the end of the "request"
    user = db.session.get(User, registration.user_id)
    assert user is not None
    residents.erase_resident(user)
    assert jobs.dispatcher().run_pending() == 1
    [row] = outbox_rows()
    assert row.status is JobStatus.DONE
    assert row.last_error is None
    assert count(EmailLog) == 0


def test_rolled_back_transaction_hands_nothing_over(ctx: Flask) -> None:
    jobs.enqueue("tests.core.record", "record:rolled-back", label="ghost")
    db.session.rollback()
    # A later, unrelated commit must not hand over the id of the row that never existed.
    factories.organisation()
    assert jobs.dispatcher().run_pending() == 0
    assert outbox_rows() == []
    assert calls == []


def test_failed_registration_commit_hands_nothing_over(ctx: Flask) -> None:
    act = factories.action()
    register_anna(act)
    jobs.dispatcher().run_pending()
    # Same address again: the rule refuses it before anything is enqueued or committed.
    with pytest.raises(registrations.RegistrationError):
        register_anna(act)
    assert jobs.dispatcher().run_pending() == 0
    assert len(outbox_rows()) == 1


# --- with Redis: the outbox id goes to RQ after the commit --------------------------------


def run_rq_burst(app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the queue empty with a real RQ worker, as worker.py does (in this process)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from coop.core.worker import PromptStop

    class BurstWorker(PromptStop, SimpleWorker):  # ends without RQ's wait of up to a minute
        pass

    monkeypatch.setattr(jobs, "_worker_app", app)
    # The worker installs its own SIGINT/SIGTERM handlers; give pytest its own back afterwards.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    connection = Redis.from_url(redis_url)
    try:
        queues = [Queue(name, connection=connection) for name in jobs.queue_names(app).values()]
        BurstWorker(queues, connection=connection).work(burst=True)
    finally:
        connection.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def rq_queue(app: Flask, redis_url: str, lane: str = jobs.URGENT) -> Any:
    """The RQ queue of a lane (a sign-up's confirmation goes to the urgent one)."""
    from redis import Redis
    from rq import Queue

    return Queue(jobs.queue_names(app)[lane], connection=Redis.from_url(redis_url))


class TestWithRedis:
    @pytest.fixture
    def smtp(self, smtp_server: tuple[SMTPRecorder, int]) -> SMTPRecorder:
        return smtp_server[0]

    @pytest.fixture
    def app_config(self, redis_url: str, smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
        return {"REDIS_URL": redis_url, **smtp_config(smtp_server[1])}

    def test_commit_hands_only_the_outbox_id_to_rq_and_a_worker_sends_once(
        self,
        app: Flask,
        client: FlaskClient,
        redis_url: str,
        smtp: SMTPRecorder,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        with app.app_context():
            act = factories.action()
            data = factories.registration_form(act)
        response = factories.post_form(client, f"/actions/{act.slug}/register", data)
        assert response.status_code == 302
        with app.app_context():
            [row] = outbox_rows()
            assert row.status is JobStatus.PENDING
            assert row.dispatched_at is not None
            outbox_id = row.id

        queue = rq_queue(app, redis_url)
        [rq_job] = queue.get_jobs()
        assert rq_job.id.startswith(f"coop-outbox-{outbox_id}-1-")
        assert rq_job.func_name == "coop.core.jobs.run_jobs"
        assert rq_job.args == ([outbox_id],)
        assert rq_job.kwargs == {}
        assert rq_job.retries_left == len(jobs.RQ_RETRY_INTERVALS)
        assert rq_job.retry_intervals == jobs.RQ_RETRY_INTERVALS
        # Nothing personal in Redis: not in the job's (compressed) payload, not anywhere else.
        stored = b"".join(
            value
            for key in queue.connection.keys("*")
            if queue.connection.type(key) == b"hash"
            for value in queue.connection.hgetall(key).values()
        )
        payload = zlib.decompress(queue.connection.hget(rq_job.key, "data"))
        for personal in (b"anna@example.nl", b"Anna de Vries", b"Hondsrug"):
            assert personal not in stored
            assert personal not in payload
        assert smtp.messages == []  # nothing ran in the web process

        run_rq_burst(app, redis_url, monkeypatch)
        rq_job.refresh()
        assert rq_job.return_value(refresh=True) == {"done": 1}
        with app.app_context():
            [row] = outbox_rows()
            assert row.status is JobStatus.DONE
            [email] = db.session.scalars(select(EmailLog)).all()
            assert email.status is EmailStatus.SENT
            assert email.attempts == 1
        assert len(smtp.to("anna@example.nl")) == 1

        # The same RQ job delivered again (a retry, a re-queued job of a dead worker).
        queue.enqueue_job(rq_job)
        run_rq_burst(app, redis_url, monkeypatch)
        rq_job.refresh()
        assert rq_job.return_value(refresh=True) == {"already-done": 1}
        with app.app_context():
            [row] = outbox_rows()
            assert row.attempts == 1
            [email] = db.session.scalars(select(EmailLog)).all()
            assert email.attempts == 1
        assert len(smtp.messages) == 1


class TestRedisOutage:
    @pytest.fixture
    def app_config(
        self, own_redis: ControllableRedis, smtp_server: tuple[SMTPRecorder, int]
    ) -> dict[str, Any]:
        return {"REDIS_URL": own_redis.url, **smtp_config(smtp_server[1])}

    def test_redis_outage_loses_nothing(
        self,
        app: Flask,
        client: FlaskClient,
        own_redis: ControllableRedis,
        smtp_server: tuple[SMTPRecorder, int],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        smtp = smtp_server[0]
        own_redis.start()
        with app.app_context():
            act = factories.action()
            data = factories.registration_form(act)
        token = factories.csrf_token(client, f"/actions/{act.slug}/register")
        own_redis.stop()

        response = client.post(f"/actions/{act.slug}/register", data={**data, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        assert client.get("/healthz").status_code == 503  # on call, someone can see it
        with app.app_context():
            [row] = outbox_rows()
            assert row.status is JobStatus.PENDING
            assert row.dispatched_at is None
            assert row.attempts == 0
            assert count(EmailLog) == 0
            # While Redis is still down a sweep loses nothing either.
            assert jobs.sweep(now=later()) == 1
            [row] = outbox_rows()
            assert row.dispatched_at is None

        own_redis.start()  # same port, empty: everything it held before is gone
        with app.app_context():
            assert jobs.sweep(now=later()) == 1
            [row] = outbox_rows()
            assert row.dispatched_at is not None
            # Handed over: the next sweep waits for the worker instead of handing it again.
            assert jobs.sweep(now=later(2)) == 0
        run_rq_burst(app, own_redis.url, monkeypatch)

        with app.app_context():
            [row] = outbox_rows()
            assert row.status is JobStatus.DONE
            [email] = db.session.scalars(select(EmailLog)).all()
            assert email.status is EmailStatus.SENT
            assert email.recipient == "anna@example.nl"
            message_id = email.message_id
            # Even a sweep long after (past OUTBOX_REDISPATCH_AFTER) hands nothing again.
            assert jobs.sweep(now=later(60)) == 0
        assert rq_queue(app, own_redis.url).count == 0
        assert len(smtp.envelopes) == 1
        [message] = smtp.to("anna@example.nl")
        assert message["Message-ID"] == message_id

    def test_a_sweep_right_after_an_outage_hands_over_what_redis_lost(
        self,
        app: Flask,
        client: FlaskClient,
        own_redis: ControllableRedis,
        smtp_server: tuple[SMTPRecorder, int],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        smtp = smtp_server[0]
        own_redis.start()
        with app.app_context():
            act = factories.action()
            data = factories.registration_form(act)
        response = factories.post_form(client, f"/actions/{act.slug}/register", data)
        assert response.status_code == 302
        with app.app_context():
            [row] = outbox_rows()
            assert row.dispatched_at is not None  # in Redis, waiting for a worker
            handed_at = row.dispatched_at
            # While Redis holds it, the sweep leaves it to the worker.
            assert jobs.sweep(now=later()) == 0

        # Redis goes away before a worker took the job, and comes back without its data.
        own_redis.stop()
        with app.app_context():
            assert jobs.sweep(now=later()) == 0  # cannot ask, cannot hand over: it waits
        own_redis.start()
        with app.app_context():
            # Long before OUTBOX_REDISPATCH_AFTER has passed, the job is handed over again.
            assert jobs.sweep(now=later()) == 1
            [row] = outbox_rows()
            assert row.dispatched_at is not None and row.dispatched_at > handed_at
            assert jobs.sweep(now=later()) == 0  # Redis holds it again
        assert rq_queue(app, own_redis.url).count == 1
        run_rq_burst(app, own_redis.url, monkeypatch)
        with app.app_context():
            [row] = outbox_rows()
            assert row.status is JobStatus.DONE
            assert jobs.sweep(now=later()) == 0
        assert len(smtp.to("anna@example.nl")) == 1


# --- keys never repeat: SQLite gives no id twice -------------------------------------------


class TestKeysAfterAnErasure:
    """Outbox keys are made of ids ("login-link:<id>"). SQLite would give the next row the id of
    a deleted last row, and the new resident's emails would be skipped as already sent."""

    @pytest.fixture
    def app_config(self, smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
        return smtp_config(smtp_server[1])

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    def test_next_resident_after_an_erasure_gets_the_confirmation_and_the_login_link(
        self, app: Flask, client: FlaskClient, smtp_server: tuple[SMTPRecorder, int]
    ) -> None:
        from coop.accounts.models import LoginToken
        from tests.conftest import link_in, message_text

        smtp = smtp_server[0]
        with app.app_context():
            act = factories.action()
            slug = act.slug
            anna = factories.registration_form(act)
            bert = factories.registration_form(
                act, name="Bert Bos", email="bert@example.nl", house_number="14"
            )

        def sign_up_confirm_and_ask_a_login_link(form: dict[str, Any]) -> list[int]:
            address = form["email"]
            assert factories.post_form(client, f"/actions/{slug}/register", form).status_code == 302
            assert len(smtp.to(address)) == 1, "no confirmation"
            [confirmation] = smtp.to(address)
            link = link_in(message_text(confirmation)).removeprefix("http://localhost")
            assert factories.post_form(client, link, {}).status_code == 302
            factories.post_form(client, "/logout", {}, token_from="/my")
            assert factories.post_form(client, "/login", {"email": address}).status_code == 302
            assert len(smtp.to(address)) == 2, "no login link"
            with app.app_context():
                return list(db.session.scalars(select(LoginToken.id).order_by(LoginToken.id)))

        anna_tokens = sign_up_confirm_and_ask_a_login_link(anna)
        # Anna logs in again by her link and erases her account: her rows are deleted.
        [_, login_link] = smtp.to("anna@example.nl")
        path = link_in(message_text(login_link)).removeprefix("http://localhost")
        assert factories.post_form(client, path, {}).status_code == 302
        assert factories.post_form(client, "/my/erase", {"confirm": "y"}).status_code == 302
        with app.app_context():
            assert count(User) == 0
            erased_keys = set(db.session.scalars(select(OutboxJob.key)))

        bert_tokens = sign_up_confirm_and_ask_a_login_link(bert)
        assert min(bert_tokens) > max(anna_tokens)
        subjects = [m["Subject"] for m in smtp.to("bert@example.nl")]
        assert len(subjects) == 2
        with app.app_context():
            bert_keys = set(db.session.scalars(select(OutboxJob.key))) - erased_keys
            # The confirmation and the login link; the login form's own request job (the same
            # work for every address typed) carries a random key of its own.
            emails = {key for key in bert_keys if not key.startswith("login-request:")}
            assert len(emails) == 2, bert_keys
            assert all(r.status is JobStatus.DONE for r in outbox_rows())


def test_one_job_for_each_selected_id_written_by_the_database(ctx: Flask) -> None:
    """``enqueue_for_each``: keys and arguments from the ids, a key stored before left as it
    is, and the new rows run after the commit, in the order of the ids."""
    users = [User(email=f"elk-{n}@example.nl", name=f"Elk {n}") for n in range(4)]
    db.session.add_all(users)
    db.session.commit()
    ids = sorted(user.id for user in users)
    jobs.enqueue("tests.core.record", f"record:{ids[1]}", label="before")
    db.session.commit()
    jobs.dispatcher().run_pending()
    calls.clear()

    new = jobs.enqueue_for_each(
        "tests.core.record", "record:", "label", select(User.id).where(User.id.in_(ids))
    )
    assert len(new) == 3
    assert jobs.dispatcher().run_pending() == 0  # nothing before the commit
    db.session.commit()
    assert jobs.dispatcher().run_pending() == 3
    assert calls == [ids[0], ids[2], ids[3]]
    rows = {row.key: row for row in outbox_rows()}
    assert rows[f"record:{ids[0]}"].args == {"label": ids[0]}
    assert rows[f"record:{ids[1]}"].args == {"label": "before"}
    assert {row.status for row in rows.values()} == {JobStatus.DONE}
    with pytest.raises(KeyError):
        jobs.enqueue_for_each("tests.core.no_such_job", "x:", "y", select(User.id))


# --- writes sent with the job's end ----------------------------------------------------------

_LOG = EmailLog.__table__
_NOTE_STATUS = (
    update(_LOG)
    .where(_LOG.c.key == bindparam("note_key"))
    .values(error=bindparam("note_error", type_=_LOG.c.error.type))
)
_NOTE_ATTEMPTS = (
    update(_LOG)
    .where(_LOG.c.key == bindparam("other_key"))
    .values(attempts=bindparam("other_attempts", type_=_LOG.c.attempts.type))
)


@jobs.job("tests.core.note")
def note(label: str, fail: bool = False) -> None:
    """Two writes left for the job's end (of two rows: one statement may not change a row
    twice), and a failure after them when asked."""
    calls.append(label)
    jobs.write_with_done(_NOTE_STATUS, {"note_key": "noted", "note_error": label})
    jobs.write_with_done(_NOTE_ATTEMPTS, {"other_key": "noted-too", "other_attempts": 7})
    if fail:
        raise RuntimeError("after the writes")


def noted_logs(ctx: Flask) -> tuple[tuple[str | None, int], tuple[str | None, int]]:
    """(error, attempts) of the two rows the job writes."""
    db.session.expire_all()
    rows = {row.key: row for row in db.session.scalars(select(EmailLog))}
    return (rows["noted"].error, rows["noted"].attempts), (
        rows["noted-too"].error,
        rows["noted-too"].attempts,
    )


@pytest.fixture
def noted(ctx: Flask) -> Iterator[None]:
    for key in ("noted", "noted-too"):
        db.session.add(
            EmailLog(
                key=key,
                recipient="anna@example.nl",
                subject="s",
                template="login_link",
                language="nl",
                message_id=f"<{key}@coop>",
                status=EmailStatus.SENT,
                attempts=1,
            )
        )
    db.session.commit()
    yield


def test_writes_left_for_the_end_are_one_statement_with_the_row_done(
    ctx: Flask, noted: None
) -> None:
    """On PostgreSQL the job's writes and its row's DONE go as one statement (a round trip
    each less per email); on SQLite one after the other. Either way all of them are made."""
    row = jobs.enqueue("tests.core.note", "note:1", label="first")
    db.session.commit()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert jobs.execute(row.id) == "done"
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "WITH"))]
    if db.engine.dialect.name == "postgresql":
        [combined] = writes
        assert combined.count("UPDATE email_log") == 2 and "UPDATE outbox_jobs" in combined
    else:
        assert len(writes) == 3
    assert noted_logs(ctx) == (("first", 1), (None, 7))
    [job_row] = outbox_rows()
    assert (job_row.status, job_row.attempts) == (JobStatus.DONE, 1)


def test_writes_left_for_the_end_of_a_job_that_fails_are_not_made(ctx: Flask, noted: None) -> None:
    row = jobs.enqueue("tests.core.note", "note:2", label="second", fail=True)
    db.session.commit()
    with pytest.raises(RuntimeError, match="after the writes"):
        jobs.execute(row.id)
    assert noted_logs(ctx) == ((None, 1), (None, 1))
    [job_row] = outbox_rows()
    assert (job_row.status, job_row.attempts) == (JobStatus.PENDING, 1)
    # The next attempt does not carry the failed one's writes along.
    failures_left.clear()
    job = db.session.get(OutboxJob, row.id)
    assert job is not None
    job.args = {"label": "third"}
    db.session.commit()
    assert jobs.execute(row.id) == "done"
    assert noted_logs(ctx) == (("third", 1), (None, 7))


def test_a_write_left_for_the_end_outside_a_job_is_made_at_once(ctx: Flask, noted: None) -> None:
    note("direct")
    db.session.commit()
    assert noted_logs(ctx) == (("direct", 1), (None, 7))


def _note_giving_up(error: str, label: str) -> None:
    jobs.write_with_done(_NOTE_STATUS, {"note_key": "noted", "note_error": f"gave up: {label}"})


@jobs.job("tests.core.note_failing", on_give_up=_note_giving_up)
def note_failing(label: str) -> None:
    note(label, fail=True)


def test_a_give_up_hook_that_writes_with_done_writes_at_once(ctx: Flask, noted: None) -> None:
    """The hook runs after the failed job's writes were dropped: its own are made, not left in
    the dropped job's list."""
    ctx.config["OUTBOX_MAX_ATTEMPTS"] = 1
    row = jobs.enqueue("tests.core.note_failing", "note:gives-up", label="last")
    db.session.commit()
    with pytest.raises(RuntimeError, match="after the writes"):
        jobs.execute(row.id)
    assert noted_logs(ctx) == (("gave up: last", 1), (None, 1))
    [job_row] = outbox_rows()
    assert job_row.status is JobStatus.FAILED
