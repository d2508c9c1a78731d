"""Email at volume through the outbox: rows committed together reach a worker in chunks and go
out over one SMTP connection and one database connection, urgent mail (a sign-up's link) before
bulk mail, and a worker killed in the middle of a chunk is replaced within a minute, with each
message sent once. Real Redis, real SMTP (aiosmtpd), real ``python worker.py`` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from coop.accounts.models import LoginPurpose, Role, User
from coop.accounts.services import issue_login_token
from coop.core import jobs
from coop.core.mail import message_id_for, send_email
from coop.core.models import EmailLog, EmailStatus, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.core.worker import run_worker
from coop.extensions import db
from tests.conftest import ROOT, SMTPRecorder, free_port, smtp_config

SMTPServer = tuple[SMTPRecorder, int]


@jobs.job("tests.core.bulk_mail", lane=jobs.BULK)
def bulk_mail(user_id: int) -> None:
    """A mass mailing's message, as a segment update sends one."""
    user = db.session.get(User, user_id)
    assert user is not None
    send_email(
        key=f"bulk:{user_id}",
        to=user.email,
        template="login_link",
        language=user.language,
        user_id=user.id,
        name=user.name,
        link="http://localhost/login/bulk",
        expires_at=utcnow(),
    )


@pytest.fixture
def smtp(smtp_server: SMTPServer) -> SMTPRecorder:
    return smtp_server[0]


@pytest.fixture
def app_config(redis_url: str, smtp_server: SMTPServer) -> dict[str, Any]:
    return {"REDIS_URL": redis_url, **smtp_config(smtp_server[1])}


def residents(count: int, prefix: str = "bewoner") -> list[int]:
    users = [
        User(
            email=f"{prefix}-{n}@example.nl",
            name=f"Bewoner {n}",
            role=Role.RESIDENT,
            language="en" if n % 3 == 0 else "nl",
        )
        for n in range(count)
    ]
    db.session.add_all(users)
    db.session.commit()
    return [user.id for user in users]


def login_links(user_ids: list[int]) -> list[str]:
    """Login links for ``user_ids``, their tokens and jobs in one transaction; returns the keys."""
    keys = []
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        assert user is not None
        token = issue_login_token(user, LoginPurpose.LOGIN)
        db.session.flush()
        key = f"login-link:{token.id}"
        jobs.enqueue("accounts.send_login_link", key, token_id=token.id)
        keys.append(key)
    db.session.commit()
    return keys


def rq_jobs(app: Flask, lane: str) -> list[Any]:
    from redis import Redis
    from rq import Queue

    queue = Queue(jobs.queue_names(app)[lane], connection=Redis.from_url(app.config["REDIS_URL"]))
    return list(queue.get_jobs())


@contextlib.contextmanager
def own_signal_handlers() -> Iterator[None]:
    """The worker installs its own SIGINT/SIGTERM handlers; give pytest its own back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def work_in_process(app: Flask) -> None:
    """The queues empty with the worker `worker.py` runs, in this process."""
    with own_signal_handlers():
        assert run_worker(app, burst=True) == 0


def email_logs() -> list[EmailLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(EmailLog).order_by(EmailLog.id)))


# --- chunks and one connection -------------------------------------------------------------------


def test_rows_committed_together_reach_a_worker_in_chunks_and_go_out_over_one_connection(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    ctx.config["OUTBOX_BATCH_SIZE"] = 50
    ctx.config["OUTBOX_SENDERS"] = 2
    keys = login_links(residents(120))

    handed = rq_jobs(ctx, jobs.URGENT)
    assert [len(job.args[0]) for job in handed] == [50, 50, 20]
    assert all(job.func_name == "coop.core.jobs.run_jobs" for job in handed)
    rows = list(db.session.scalars(select(OutboxJob).order_by(OutboxJob.id)))
    assert {row.handed_as for row in rows} == {job.id for job in handed}
    assert sorted(i for job in handed for i in job.args[0]) == [row.id for row in rows]

    work_in_process(ctx)

    assert len(smtp.envelopes) == 120
    # One SMTP connection for all of them; on PostgreSQL one per sender thread, each kept from
    # one chunk to the next.
    assert len(set(smtp.peers)) == (2 if db.engine.dialect.name == "postgresql" else 1)
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(
        message_id_for(key) for key in keys
    )
    assert {(e.status, e.attempts) for e in email_logs()} == {(EmailStatus.SENT, 1)}
    db.session.expire_all()
    assert set(db.session.scalars(select(OutboxJob.status))) == {JobStatus.DONE}


def test_a_refused_address_fails_its_message_only_and_the_connection_goes_on(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    async def handle_RCPT(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == "bewoner-1@example.nl":
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    keys = login_links(residents(3))
    work_in_process(ctx)

    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == [
        "bewoner-0@example.nl",
        "bewoner-2@example.nl",
    ]
    assert len(set(smtp.peers)) == 1
    status = {e.key: e.status for e in email_logs()}
    assert status == {
        keys[0]: EmailStatus.SENT,
        keys[1]: EmailStatus.FAILED,
        keys[2]: EmailStatus.SENT,
    }


def test_an_unreachable_server_stops_the_chunk_and_the_retry_sends_each_once(
    ctx: Flask, smtp: SMTPRecorder, smtp_server: SMTPServer
) -> None:
    """Each message would wait out the timeout; the first one's failure tells for the rest,
    which wait for the chunk's retry without an attempt counted."""
    ctx.config["MAIL_PORT"] = free_port()  # nothing listens there
    ctx.extensions["mail"].port = ctx.config["MAIL_PORT"]
    login_links(residents(5))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    ids = chunk.args[0]
    with pytest.raises(jobs.ChunkError):
        jobs.execute_chunk(ids)
    db.session.expire_all()
    rows = list(db.session.scalars(select(OutboxJob).order_by(OutboxJob.id)))
    assert [row.attempts for row in rows] == [1, 0, 0, 0, 0]
    assert (rows[0].last_error or "").startswith("TemporaryMailError")
    assert {row.status for row in rows} == {JobStatus.PENDING}

    ctx.config["MAIL_PORT"] = ctx.extensions["mail"].port = smtp_server[1]
    assert jobs.execute_chunk(ids) == {"done": 5}
    assert jobs.execute_chunk(ids) == {"already-done": 5}  # RQ's retry of a finished chunk
    assert len(smtp.envelopes) == 5
    assert {e.status for e in email_logs()} == {EmailStatus.SENT}


def test_a_chunk_cut_off_after_the_servers_250_sends_only_that_message_again(
    ctx: Flask, smtp: SMTPRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's one duplicate, in a chunk: the second message went out but its commit did
    not happen. The chunk goes on; its retry sends only that one again, with the same
    Message-ID. Rows before and after it are not sent twice."""
    from sqlalchemy.exc import OperationalError

    keys = login_links(residents(3))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    real_commit = db.session.commit
    commits = {"n": 0}

    def second_commit_cut() -> None:
        commits["n"] += 1
        if commits["n"] == 2:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        real_commit()

    monkeypatch.setattr(db.session, "commit", second_commit_cut)
    with pytest.raises(jobs.ChunkError):
        jobs.execute_chunk(chunk.args[0])
    monkeypatch.undo()
    assert len(smtp.envelopes) == 3
    assert sorted(e.key for e in email_logs()) == sorted([keys[0], keys[2]])

    assert jobs.execute_chunk(chunk.args[0]) == {"already-done": 2, "done": 1}
    sent = [m["Message-ID"] for m in smtp.messages]
    assert sent.count(message_id_for(keys[1])) == 2
    assert sent.count(message_id_for(keys[0])) == sent.count(message_id_for(keys[2])) == 1
    assert len(email_logs()) == 3


# --- urgent before bulk --------------------------------------------------------------------------


def test_a_login_link_goes_out_before_a_mass_mailing_that_was_queued_first(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    ctx.config["OUTBOX_BATCH_SIZE"] = 20
    bulk = residents(100, prefix="update")
    jobs.enqueue_many("tests.core.bulk_mail", [(f"bulk:{i}", {"user_id": i}) for i in bulk])
    db.session.commit()
    assert len(rq_jobs(ctx, jobs.BULK)) == 5
    [anna] = residents(1, prefix="anna")
    login_links([anna])

    work_in_process(ctx)

    recipients = [e.rcpt_tos[0] for e in smtp.envelopes]
    assert len(recipients) == 101
    assert recipients[0] == "anna-0@example.nl"


# --- real worker processes -----------------------------------------------------------------------


def worker_env(app: Flask) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(app.config["MAIL_PORT"]),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BASE_URL": "http://localhost",
    }


def sessions_opened(app: Flask) -> int:
    """Connections ever opened to the test database (PostgreSQL counts them)."""
    database = app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    with db.engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        opened = connection.execute(
            text("SELECT sessions FROM pg_stat_database WHERE datname = :name"), {"name": database}
        ).scalar_one()
    return int(opened)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_runs_its_jobs_over_one_database_and_one_smtp_connection(
    app: Flask, smtp: SMTPRecorder
) -> None:
    """Thirty sign-ups' worth of emails, each committed on its own (thirty RQ jobs): RQ's
    forking worker opened a database session per job and never closed it."""
    with app.app_context():
        user_ids = residents(30)
        for user_id in user_ids:
            login_links([user_id])
        assert len(rq_jobs(app, jobs.URGENT)) == 30
        db.session.remove()
        db.engine.dispose()
    with app.app_context():
        before = sessions_opened(app)
    worker = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        env=worker_env(app),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert len(smtp.envelopes) == 30
    with app.app_context():
        # The stats of a session that ended are counted within a moment.
        deadline = time.monotonic() + 5
        opened = sessions_opened(app) - before
        while opened < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            opened = sessions_opened(app) - before
        # The worker's one connection, plus this test's to ask.
        assert 1 <= opened <= 3, f"{opened} database sessions for 30 jobs"
    assert len(set(smtp.peers)) == 1, f"{len(set(smtp.peers))} SMTP connections for 30 emails"


def descendants(pid: int) -> list[int]:
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


def start_worker(app: Flask, log: Path) -> subprocess.Popen[bytes]:
    """`python worker.py` with the production defaults."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        env=worker_env(app),
        cwd=ROOT,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the worker and every process it started, as when a machine dies."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill(process)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_in_the_middle_of_a_chunk_is_taken_up_within_a_minute(
    app: Flask, smtp: SMTPRecorder, tmp_path: Path
) -> None:
    """The worker dies while the server holds its first message at DATA (no 250 yet). The
    worker that takes its place (as the supervisor starts one) runs the chunk again within a
    minute, not after the outbox's five-minute re-dispatch; every message arrives once."""
    with app.app_context():
        keys = login_links(residents(5))
        expected = sorted(message_id_for(key) for key in keys)
        assert app.config["OUTBOX_REDISPATCH_AFTER"] == 300
    smtp.hold = threading.Event()
    first = start_worker(app, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while smtp.holding < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert smtp.holding == 1, (tmp_path / "first.log").read_text()[-3000:]
        kill(first)
        killed_at = time.monotonic()
        smtp.hold.set()  # the killed worker's message is lost with its connection
        second = start_worker(app, tmp_path / "second.log")

        deadline = killed_at + 60
        while len(smtp.envelopes) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        took = time.monotonic() - killed_at
        assert len(smtp.envelopes) == 5, (
            f"{len(smtp.envelopes)} of 5 after {took:.0f} s\n"
            + (tmp_path / "second.log").read_text()[-3000:]
        )
        print(f"all five arrived {took:.1f} s after the kill")
        time.sleep(1)
        assert sorted(m["Message-ID"] for m in smtp.messages) == expected
        with app.app_context():
            assert {(e.status, e.attempts) for e in email_logs()} == {(EmailStatus.SENT, 1)}
            db.session.expire_all()
            assert set(db.session.scalars(select(OutboxJob.status))) == {JobStatus.DONE}
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop(process)


def test_rows_name_their_rq_job_before_a_worker_can_take_it(
    ctx: Flask, smtp: SMTPRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker can take a chunk the moment it is in Redis. Were the rows still being marked
    then (their row locks held by the hand-over), the worker would skip them as another
    worker's, and the sign-up's link would wait for the five-minute re-dispatch."""
    from rq import Queue

    seen: list[tuple[str, set[str | None]]] = []
    real = Queue.enqueue_many

    def enqueue_and_look(self: Any, job_datas: Any, *args: Any, **kwargs: Any) -> Any:
        datas = list(job_datas)
        for data in datas:
            with db.engine.connect() as other:  # as the worker would see the rows
                carriers = set(
                    other.scalars(select(OutboxJob.handed_as).where(OutboxJob.id.in_(data.args[0])))
                )
            seen.append((data.job_id, carriers))
        return real(self, datas, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue_many", enqueue_and_look)
    login_links(residents(3))
    assert seen
    for rq_id, carriers in seen:
        assert carriers == {rq_id}


def test_the_message_on_the_wire(ctx: Flask) -> None:
    """Built without Flask-Mail's Message: the same structure and headers, CRLF line ends,
    extra headers (List-Unsubscribe) as given, and no header injection."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    from coop.core.mail import mime_message

    raw = mime_message(
        subject="Je aanmelding bij Wärmtepomp-actie",
        sender="coop <noreply@coop.localhost>",
        to="anna@exämple.nl",
        text="Hallo Anna,\n\nklik hier.",
        html='<html lang="nl"><p>Hallo Anna</p></html>',
        message_id="<abc@coop.localhost>",
        attachments=[("opname.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")],
        headers={"List-Unsubscribe": "<http://localhost/unsubscribe/x>"},
    )
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = message_from_bytes(raw)
    assert str(make_header(decode_header(message["Subject"]))) == (
        "Je aanmelding bij Wärmtepomp-actie"
    )
    assert message["From"] == "coop <noreply@coop.localhost>"
    assert message["To"] == "anna@xn--exmple-cua.nl"
    assert message["Message-ID"] == "<abc@coop.localhost>"
    assert message["List-Unsubscribe"] == "<http://localhost/unsubscribe/x>"
    assert message["Date"]
    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    [calendar] = [part for part in message.walk() if part.get_filename()]
    assert calendar.get_filename() == "opname.ics"
    assert calendar.get_payload(decode=True).startswith(b"BEGIN:VCALENDAR")
    with pytest.raises(ValueError):
        mime_message(
            subject="Hallo",
            sender="coop <noreply@coop.localhost>",
            to="anna@example.nl",
            text="x",
            html="x",
            message_id="<abc@coop.localhost>",
            headers={"X-Evil": "a\r\nBcc: everyone@example.nl"},
        )


def test_an_update_left_sending_after_its_last_chunk_is_marked_sent_by_the_scheduler(
    ctx: Flask,
) -> None:
    """The last chunk marks its update sent after its messages; a worker that died in between
    leaves it "sending" with nothing queued, which the scheduler's round settles."""
    from coop.desk import updates
    from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
    from tests import factories

    org = factories.organisation()
    staff = factories.staff(org)
    act = factories.action(org)
    [resident_id] = residents(1)
    stalled = SegmentUpdate(
        organisation_id=org.id,
        action_id=act.id,
        created_by_id=staff.id,
        subject_nl="Nieuws",
        subject_en="News",
        body_nl="Tekst",
        body_en="Text",
        segment={},
        status=UpdateStatus.SENDING,
    )
    db.session.add(stalled)
    db.session.flush()
    db.session.add(
        UpdateDelivery(update_id=stalled.id, user_id=resident_id, status=DeliveryStatus.SENT)
    )
    db.session.commit()

    assert updates.finish_stalled() == 1
    db.session.expire_all()
    assert db.session.get(SegmentUpdate, stalled.id).status is UpdateStatus.SENT  # type: ignore[union-attr]
    assert updates.finish_stalled() == 0


def _stdlib_message(subject: str, to: str, text: str, html: str, headers: dict[str, str]) -> bytes:
    """The message as the standard library's generator writes it (what mime_message did for
    every message before it wrote messages without attachments itself)."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    from coop.core import mime as mail

    outer = MIMEMultipart(policy=mail._WIRE)
    alternative = MIMEMultipart("alternative", policy=mail._WIRE)
    alternative.attach(MIMEText(text, "plain", "utf-8", policy=mail._WIRE))
    alternative.attach(MIMEText(html, "html", "utf-8", policy=mail._WIRE))
    outer.attach(alternative)
    outer["Subject"] = mail._header(subject)
    outer["From"] = mail._address("Coöp <noreply@coop.localhost>")
    outer["To"] = mail._address(to)
    outer["Date"] = "Sat, 05 Dec 2026 01:13:08 +0000"
    outer["Message-ID"] = "<abc@coop.localhost>"
    for name, value in headers.items():
        outer[name] = value
    return outer.as_bytes()


@pytest.mark.parametrize(
    ("subject", "to", "text", "html"),
    [
        ("Hallo", "anna@example.nl", "Hallo Anna,\n\nklik hier.\n", "<p>Hallo</p>"),
        (
            "Je aanmelding bij de Wärmtepomp-actie, met een onderwerp dat gevouwen moet worden",
            "anna@exämple.nl",
            "Hällo\r\nwörld, " * 40,
            "<p>" + "xé " * 300 + "</p>",
        ),
        ("x", "a@example.nl", "a\rb\nc\r\n", ""),
    ],
)
def test_a_message_without_attachments_is_written_as_the_standard_library_writes_it(
    ctx: Flask, subject: str, to: str, text: str, html: str
) -> None:
    """Written directly (the generator took 1.5 ms a message), byte for byte what the
    generator writes, but for the random boundaries and the date."""
    import re

    from coop.core.mail import mime_message

    headers = {
        "List-Unsubscribe": "<http://localhost/unsubscribe/" + "t" * 80 + ">, <mailto:u@x.nl>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    raw = mime_message(
        subject=subject,
        sender="Coöp <noreply@coop.localhost>",
        to=to,
        text=text,
        html=html,
        message_id="<abc@coop.localhost>",
        headers=headers,
    )

    def same(message: bytes) -> bytes:
        message = re.sub(rb"Date: [^\r]*", b"Date: the date", message)
        return re.sub(rb"={15}\d+==", b"BOUNDARY", message)

    assert same(raw) == same(_stdlib_message(subject, to, text, html, headers))
    assert len(set(re.findall(rb"={15}\d+==", raw))) == 2


def test_a_line_longer_than_smtp_allows_goes_as_base64(ctx: Flask) -> None:
    from email import message_from_bytes

    from coop.core.mail import mime_message

    long_line = "x" * 1200
    raw = mime_message(
        subject="Hallo",
        sender="noreply@coop.localhost",
        to="anna@example.nl",
        text="kort",
        html=f"<p>{long_line}</p>",
        message_id="<abc@coop.localhost>",
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    [html] = [p for p in message_from_bytes(raw).walk() if p.get_content_type() == "text/html"]
    assert html["Content-Transfer-Encoding"] == "base64"
    assert html.get_payload(decode=True) == f"<p>{long_line}</p>".encode()


@pytest.mark.parametrize("flush_later", [True, False])
def test_the_rows_of_a_chunk_but_the_last_commit_without_waiting_for_the_disk(
    ctx: Flask, smtp: SMTPRecorder, flush_later: bool
) -> None:
    """On PostgreSQL the commits of a chunk's rows but the last do not wait for the write-ahead
    log's fsync (the last one does, and with it the earlier ones' log); each row is still
    committed on its own before the next message goes out."""
    from sqlalchemy import event

    ctx.config["OUTBOX_FLUSH_LATER"] = flush_later
    keys = login_links(residents(4))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert jobs.execute_chunk(chunk.args[0]) == {"done": 4}
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    relaxed = [s for s in statements if "synchronous_commit" in s]
    on_postgresql = db.engine.dialect.name == "postgresql"
    assert len(relaxed) == (3 if flush_later and on_postgresql else 0)
    assert sorted(e.key for e in email_logs()) == sorted(keys)
    assert len(smtp.envelopes) == 4


@pytest.mark.parametrize("subtype", ["mixed", "alternative"])
def test_a_multipart_content_type_is_folded_as_the_policy_folds_it(subtype: str) -> None:
    """Written without parsing it first; the boundary's length (1 to 19 digits) decides
    whether it fits one line."""
    from coop.core.mime import _WIRE, _multipart_type

    for digits in range(1, 20):
        boundary = "=" * 15 + "7" * digits + "=="
        value = f'multipart/{subtype}; boundary="{boundary}"'
        expected = _WIRE.fold_binary("Content-Type", _WIRE.header_factory("Content-Type", value))
        assert _multipart_type(subtype, boundary) == expected


def test_a_senders_rows_share_one_database_connection(ctx: Flask, smtp: SMTPRecorder) -> None:
    """On PostgreSQL a sender takes a connection from the pool (with its ping) once for its
    rows, not once per row: each check-out was a round trip per email."""
    from sqlalchemy import event

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs a chunk in the caller's session")
    ctx.config["OUTBOX_SENDERS"] = 1
    login_links(residents(30))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    checkouts: list[object] = []

    def note(*_args: Any) -> None:
        checkouts.append(object())

    event.listen(db.engine, "checkout", note)
    try:
        assert jobs.execute_chunk(chunk.args[0]) == {"done": 30}
    finally:
        event.remove(db.engine, "checkout", note)
    assert len(checkouts) <= 3  # the sender's one, and the chunk's after-batch work
    assert len(smtp.envelopes) == 30


def test_a_sender_whose_database_connection_breaks_goes_on_with_a_new_one(
    ctx: Flask, smtp: SMTPRecorder
) -> None:
    """A sender runs its rows' own statements on psycopg's connection directly
    (``coop.core.direct_sql``). When that connection breaks midway (here: its server process
    is ended before the fourth row's lock), the row in flight fails without an attempt
    counted, the connection is opened anew for the next rows, and the chunk's retry sends
    the one left: every message once."""
    from sqlalchemy import event

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs a chunk in the caller's session")
    ctx.config["OUTBOX_SENDERS"] = 1
    keys = login_links(residents(12))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    locks: list[str] = []

    def end_the_connection_at_the_fourth_lock(
        connection: Any, _cursor: Any, statement: str, *_args: Any
    ) -> None:
        if "FOR UPDATE SKIP LOCKED" not in statement:
            return
        locks.append(statement)
        if len(locks) == 4:
            backend = connection.connection.driver_connection.info.backend_pid
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

    event.listen(db.engine, "before_cursor_execute", end_the_connection_at_the_fourth_lock)
    try:
        with pytest.raises(jobs.ChunkError, match="1 of 12"):
            jobs.execute_chunk(chunk.args[0])
    finally:
        event.remove(db.engine, "before_cursor_execute", end_the_connection_at_the_fourth_lock)
    assert len(smtp.envelopes) == 11
    # RQ's retry of the chunk: the rows done cost a look each, the one left goes out.
    assert jobs.execute_chunk(chunk.args[0]) == {"done": 1, "already-done": 11}
    assert len(smtp.envelopes) == 12
    assert sorted(e.key for e in email_logs()) == sorted(keys)
    pending = db.session.scalars(select(OutboxJob).where(OutboxJob.status != JobStatus.DONE))
    assert list(pending) == []


def test_a_chunk_logs_one_line_and_a_lone_email_its_own(
    ctx: Flask, smtp: SMTPRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A line per email of a mass mailing was a twentieth of the worker's CPU; each message is
    in ``email_log`` anyway. A lone job (a confirmation, a login link) keeps its line."""
    import logging

    login_links(residents(12))
    [chunk] = rq_jobs(ctx, jobs.URGENT)
    with caplog.at_level(logging.INFO, logger="coop"):
        assert jobs.execute_chunk(chunk.args[0]) == {"done": 12}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [line for line in lines if line.startswith("email sent")]
    assert [line for line in lines if line.startswith("chunk of")] == [
        "chunk of 12 row(s) run: {'done': 12}"
    ]

    caplog.clear()
    [key] = login_links(residents(1, prefix="alleen"))
    row = db.session.scalar(select(OutboxJob).where(OutboxJob.key == key))
    assert row is not None
    with caplog.at_level(logging.INFO, logger="coop"):
        assert jobs.execute(row.id) == "done"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert [line for line in lines if line.startswith("email sent")] == [
        f"email sent key={key} message_id={message_id_for(key)}"
    ]
