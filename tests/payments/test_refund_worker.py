"""A refund on the production shape: PostgreSQL, real Redis and a real `python worker.py`, with
the stand-in for Stripe on loopback.

The worker is killed (SIGKILL, work-horse included) after Stripe has created the refund and
before the worker could record it. The job runs again in a new worker: it asks Stripe with the
same idempotency key, gets the refund that exists, and records it. One refund, one email.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from coop.core import jobs
from coop.core.models import EmailLog, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.payments import services
from coop.payments.models import Payment, PaymentStatus, StripeEvent
from tests.orders.test_worker_process import WorkerProcess, wait_for
from tests.payments.conftest import accept, quote_for, stripe_config, world_of
from tests.payments.stripe_standin import StripeStandIn, signed_event

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only: the worker is a separate process, as in production."""
    return postgres_url


@pytest.fixture
def app_config(redis_url: str, standin: StripeStandIn) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_url,
        **stripe_config(standin),
        # A job handed over a second ago and not finished may be handed over again.
        "OUTBOX_REDISPATCH_AFTER": 1,
    }


@pytest.fixture
def worker(app: Flask, tmp_path: Path, standin: StripeStandIn) -> Iterator[WorkerProcess]:
    process = WorkerProcess(app, tmp_path)
    process.env.update(
        STRIPE_SECRET_KEY=app.config["STRIPE_SECRET_KEY"],
        STRIPE_WEBHOOK_SECRET=app.config["STRIPE_WEBHOOK_SECRET"],
        STRIPE_API_BASE=standin.url,
    )
    process.env.pop("MAIL_SERVER")  # email goes to the log; this test is about the refund
    yield process
    if process.process is not None:
        process.kill()  # the test is over: no need to wait for a warm shutdown


def paid_deposit(app: Flask, standin: StripeStandIn) -> tuple[int, int]:
    """A deposit paid through Checkout, its webhook processed here: (payment id, staff id)."""
    with app.test_request_context():
        world = world_of()
        payment = accept(quote_for(world))
        url = services.start_checkout(payment.registration.user, payment)
        session = standin.complete_session(url.rsplit("/", 1)[1])
        event = signed_event("checkout.session.completed", session)
        assert services.receive_webhook(event.body, event.headers["Stripe-Signature"]) == "stored"
        row = db.session.scalars(select(StripeEvent)).one()
        assert services.process_event(row.id) == "paid"
        ids = payment.id, world.staff.id
        db.session.remove()
    return ids


def test_a_worker_killed_between_creating_and_recording_a_refund_makes_no_second_one(
    app: Flask, standin: StripeStandIn, worker: WorkerProcess
) -> None:
    payment_id, staff_id = paid_deposit(app, standin)

    def kill_the_worker(refund: dict[str, Any]) -> bool:
        # Stripe has made the refund; the worker that asked for it dies before the answer.
        worker.kill()
        return True

    standin.on_refund_created = kill_the_worker
    with app.test_request_context():
        from coop.accounts.models import User

        staff = db.session.get(User, staff_id)
        payment = db.session.get(Payment, payment_id)
        assert staff is not None and payment is not None
        services.refund_by_staff(staff, payment)  # the job goes to Redis after the commit
        db.session.remove()
    worker.start()
    wait_for(lambda: standin.refunds and worker.process is None, "the refund and the kill", worker)

    with app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        assert payment.status is PaymentStatus.REFUNDING and payment.stripe_refund_id is None
        job = db.session.scalars(
            select(OutboxJob).where(OutboxJob.name == "payments.create_refund")
        ).one()
        assert job.status is JobStatus.PENDING
        db.session.remove()

    # A new worker; the outbox sweep hands the unfinished job over again.
    standin.on_refund_created = None
    worker.start()
    with app.test_request_context():
        assert jobs.sweep(now=utcnow() + timedelta(seconds=30)) >= 1
        db.session.remove()

    def refunded() -> bool:
        with app.app_context():
            payment = db.session.get(Payment, payment_id)
            done = payment is not None and payment.status is PaymentStatus.REFUNDED
            db.session.remove()
            return done

    wait_for(refunded, "the rerun to record the refund", worker)
    [refund_id] = standin.refunds
    requests = standin.created_refunds()
    assert len(requests) == 2, worker.output()  # the first (lost) and the rerun
    assert {r.idempotency_key for r in requests} == {f"refund:{payment_id}:1"}
    with app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        assert payment.stripe_refund_id == refund_id and payment.refunded_cents == 25000
        wait_for(
            lambda: db.session.scalar(
                select(EmailLog).where(EmailLog.key == f"deposit-refunded:{payment_id}")
            ),
            "the refund email",
            worker,
        )
        db.session.remove()
