"""Issue 12, defect 12 (the limiter's half): with Redis down, sign-up and login keep working.

Flask-Limiter keeps its counts in Redis; its storage errors used to reach the request, so every
sign-up and login answered 500 while Redis was away. Now the limits are kept in the process's
memory until Redis answers again (and still limit), and jobs wait in the outbox. The test runs a
redis-server of its own and stops it in the middle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop import create_app
from coop.core.models import JobStatus, OutboxJob
from coop.extensions import db
from coop.registrations.models import Registration
from tests import factories
from tests.conftest import ControllableRedis, base_config


@pytest.fixture
def app(database_url: str, own_redis: ControllableRedis) -> Iterator[Flask]:
    own_redis.start()
    application = create_app(
        base_config(
            database_url,
            REDIS_URL=own_redis.url,
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI=own_redis.url,
            RATELIMIT_SIGNUP="100 per minute",
            RATELIMIT_LOGIN="4 per minute",
        )
    )
    if database_url.startswith("postgresql"):
        from tests.conftest import _truncate_postgres

        _truncate_postgres(application)
    with application.app_context():
        from coop.actions.catalogue import ensure_catalogue

        ensure_catalogue()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def sign_up(client: FlaskClient, slug: str, form: dict[str, Any]) -> int:
    return int(factories.post_form(client, f"/actions/{slug}/register", form).status_code)


def staff_login(client: FlaskClient, password: str = factories.PASSWORD) -> int:
    response = factories.post_form(
        client, "/staff/login", {"email": "staff@example.nl", "password": password}
    )
    return int(response.status_code)


def test_sign_up_and_login_keep_working_while_redis_is_down(
    app: Flask, own_redis: ControllableRedis
) -> None:
    with app.app_context():
        act = factories.action()
        factories.staff(act.organisation)
        slug = act.slug
        forms = [
            factories.registration_form(act, house_number=str(n), email=f"r{n}@example.nl")
            for n in range(1, 8)
        ]
    client = app.test_client()
    assert sign_up(client, slug, forms[0]) == 302
    assert staff_login(app.test_client()) == 302

    own_redis.stop()  # Redis goes away in the middle of the evening
    for form in forms[1:6]:
        assert sign_up(app.test_client(), slug, form) == 302
    assert staff_login(app.test_client()) == 302
    assert (
        factories.post_form(app.test_client(), "/login", {"email": "r2@example.nl"}).status_code
        == 302
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 6
        # The confirmation emails wait in the outbox for Redis.
        waiting = db.session.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.status == JobStatus.PENDING, OutboxJob.dispatched_at.is_(None))
        )
        assert waiting and waiting >= 5
    # The limits still hold, counted in memory: failed logins from one address.
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    for _ in range(4):
        assert staff_login(guesser, "wrong") == 200
    assert staff_login(guesser) == 429

    own_redis.start()  # and comes back
    assert sign_up(app.test_client(), slug, forms[6]) == 302
    assert staff_login(app.test_client()) == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 7
