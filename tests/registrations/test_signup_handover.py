"""A sign-up with the queue in Redis (production): its transaction writes the confirmation's
outbox row and names the RQ job that carries it, in one commit. The hand-over used to mark the
row in a second transaction after the commit (a second pool check-out with its ping, an UPDATE
and a commit that waits for the disk: about 3 ms of a sign-up), over a Redis connection opened
for that one hand-over."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from coop.core import jobs
from coop.core.models import OutboxJob
from coop.extensions import db
from tests import factories


@pytest.fixture
def app_config(redis_url: str) -> dict[str, Any]:
    return {"REDIS_URL": redis_url}


@pytest.fixture
def commits(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "commit", commit)
    yield seen
    event.remove(engine, "before_cursor_execute", note)
    event.remove(engine, "commit", commit)


def an_action(app: Flask) -> tuple[str, dict[str, str]]:
    with app.app_context():
        act = factories.action()
        return f"/actions/{act.slug}/register", factories.registration_form(act)


def sign_up(client: FlaskClient, url: str, form: dict[str, str], number: int) -> None:
    form = dict(form)
    form["email"] = f"handover-{number}@example.nl"
    form["house_number"] = str(100 + number)
    page = client.get(url)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    assert token is not None
    response = client.post(url, data={**form, "csrf_token": token.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_a_sign_up_commits_once_and_its_row_names_its_rq_job(
    app: Flask, client: FlaskClient, commits: list[str]
) -> None:
    from rq import Queue

    url, form = an_action(app)
    commits.clear()
    sign_up(client, url, form, 1)

    assert commits.count("COMMIT") == 1, commits
    marks = [s for s in commits if s.startswith("UPDATE outbox_jobs")]
    assert len(marks) == 1 and commits.index(marks[0]) < commits.index("COMMIT")
    with app.app_context():
        [row] = db.session.scalars(select(OutboxJob)).all()
        assert row.handed_as is not None and row.dispatched_at is not None
        queue = Queue(jobs.queue_names(app)[jobs.URGENT], connection=jobs.dispatcher().connection())
        [carrier] = queue.get_jobs()
        assert carrier.id == row.handed_as and carrier.args == ([row.id],)


def test_hand_overs_share_one_redis_client(app: Flask, client: FlaskClient) -> None:
    url, form = an_action(app)
    with app.app_context():
        first = jobs.dispatcher().connection()
    sign_up(client, url, form, 1)
    sign_up(client, url, form, 2)
    with app.app_context():
        assert jobs.dispatcher().connection() is first
        assert len(db.session.scalars(select(OutboxJob.handed_as)).all()) == 2
