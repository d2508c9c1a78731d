"""What one sign-up costs the database: the form page and the POST, statement by statement.

Measured with a profiler on the real request path (bench/signup.py, README "Benchmarks"): a
sign-up made 29 statements, 14 of them wasted: the action was loaded with everything its public
page shows (five queries, on the form and again on the POST), the household looked up twice,
and after the commit the registration, its action (five queries more) and its resident were
read again only to log an id and show the email address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from coop.core import jobs
from coop.extensions import db
from coop.registrations.models import Registration
from tests import factories


@pytest.fixture
def statements(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements the requests run; the jobs they enqueue (here run in the process
    after the response) are left out, as a worker runs them in production."""
    monkeypatch.setattr(jobs.InlineDispatcher, "run_pending", lambda self: 0)
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture(params=["no lookup", "lookup"])
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """With the address lookup configured, as in production (its default is PDOK's), the form
    asks the desk's switch for it: once on the page, twice on a POST. Nothing is looked up
    here: the form is posted with street and town filled in."""
    if request.param == "lookup":
        return {"ADDRESS_LOOKUP_URL": "http://127.0.0.1:9/nowhere"}
    return {}


def test_a_sign_up_runs_only_the_statements_it_needs(
    app: Flask, client: FlaskClient, statements: list[str]
) -> None:
    with app.app_context():
        act = factories.action()
        url = f"/actions/{act.slug}/register"
        form = factories.registration_form(act)
    statements.clear()
    page = client.get(url)
    assert page.status_code == 200
    on_the_form = list(statements)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    assert token is not None
    statements.clear()
    flushes: list[object] = []

    def flushed(session: object, _context: object) -> None:
        flushes.append(session)

    event.listen(Session, "after_flush", flushed)
    try:
        response = client.post(url, data={**form, "csrf_token": token.group(1)})
    finally:
        event.remove(Session, "after_flush", flushed)
    assert response.status_code == 302, response.get_data(as_text=True)
    on_the_post = list(statements)
    # Three units of work: the resident, household, registration, its measure and status
    # change together; then the link (the job's key names it); then the job.
    assert len(flushes) == 3

    # The form page: the action with its measures and its desk (whose address-lookup switch
    # the form asks).
    assert len(on_the_form) == 1, on_the_form
    # The POST: the action with its measures and desk, the household and the resident looked
    # up, the seven rows written (resident, household, registration, its measure, its status
    # change, the confirmation link, the email job; the job's key is not looked up: it names
    # the link, made just now).
    assert len(on_the_post) == 10, on_the_post
    with app.app_context():
        assert db.session.scalar(select(Registration.id)) is not None


def test_the_form_class_is_made_once_per_action_language_and_measures(app: Flask) -> None:
    """The sign-up form's class (a box and a quantity per measure) is kept between requests,
    and made anew when the desk changes a measure or the page is in the other language."""
    from coop.actions.models import Action
    from coop.registrations.forms import registration_form_for

    with app.app_context():
        action_id = factories.action().id

    def form_class(language: str) -> type:
        with app.test_request_context(headers={"Accept-Language": language}):
            act = db.session.get(Action, action_id)
            assert act is not None
            return type(registration_form_for(act))

    dutch = form_class("nl")
    assert form_class("nl") is dutch
    assert form_class("en") is not dutch  # the measures' names are in the class
    with app.app_context():
        act = db.session.get(Action, action_id)
        assert act is not None
        first = act.measures[0]
        first.measure.name_nl = "Dakisolatie (nieuw)"
        first.measure.max_quantity = 7
        db.session.commit()
        first_id = first.id
    changed = form_class("nl")
    assert changed is not dutch
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        form = changed()
        assert getattr(form, f"measure_{first_id}").label.text == "Dakisolatie (nieuw)"
        limits = [v for v in getattr(form, f"quantity_{first_id}").validators if hasattr(v, "max")]
        assert [v.max for v in limits] == [7]
