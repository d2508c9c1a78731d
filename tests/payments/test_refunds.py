"""Getting the deposit back through Stripe (the stand-in): withdrawing within the cooling-off
period, staff refunding one deposit, a cancelled action refunding all of them with progress,
failed and pending refunds, and jobs that run twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from coop.actions import services as actions
from coop.core import jobs
from coop.core.models import EmailLog, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.payments import services
from coop.payments.models import FlagReason, Payment, PaymentStatus, RefundReason, RefundRun
from coop.registrations import services as registrations
from coop.registrations.models import RegistrationStatus
from coop.residents import services as residents
from tests import factories
from tests.payments.conftest import World, accept, log_in, post_event, quote_for, run_jobs
from tests.payments.stripe_standin import StripeStandIn, signed_event


def paid(app: Flask, world: World, standin: StripeStandIn, **quote: object) -> Payment:
    """A deposit paid through Checkout and confirmed by its webhook."""
    payment = accept(quote_for(world, **quote))  # type: ignore[arg-type]
    resident = payment.registration.user
    url = services.start_checkout(resident, payment)
    session_id = url.rsplit("/", 1)[1]
    standin.complete_session(session_id)
    response = post_event(
        app.test_client(), signed_event("checkout.session.completed", standin.sessions[session_id])
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert payment.status is PaymentStatus.PAID
    return payment


def test_withdrawing_within_the_cooling_off_period_refunds_the_deposit(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    payment = paid(app, world, standin)
    registration = payment.registration
    assert registration.status is RegistrationStatus.ACCEPTED
    assert residents.can_withdraw(registration)  # accepted, but within 14 days
    later = utcnow() + timedelta(days=15)
    assert not residents.can_withdraw(registration, later)
    with pytest.raises(registrations.RegistrationError):
        residents.withdraw(registration, "te laat", actor=registration.user, now=later)

    client = app.test_client()
    log_in(client, registration.user)
    page = client.get(f"/my/registrations/{registration.id}/withdraw").get_data(as_text=True)
    assert f'id="refund-{payment.id}"' in page  # it says the money comes back
    response = factories.post_form(
        client,
        f"/my/registrations/{registration.id}/withdraw",
        {"reason": "Toch te duur"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert registration.status is RegistrationStatus.WITHDRAWN
    assert payment.status is PaymentStatus.REFUNDED  # the job ran after the request
    assert payment.refund_reason is RefundReason.WITHDRAWN
    [refund] = standin.created_refunds()
    assert refund.idempotency_key == f"refund:{payment.id}:1"
    assert refund.params["payment_intent"] == payment.payment_intent_id
    assert refund.params["amount"] == "25000"
    assert refund.params["metadata"]["payment_id"] == str(payment.id)
    assert payment.stripe_refund_id == next(iter(standin.refunds))
    mail = db.session.scalar(
        select(EmailLog).where(EmailLog.key == f"deposit-refunded:{payment.id}")
    )
    assert mail is not None and mail.recipient == registration.user.email

    # The job runs again (a retry): nothing new at Stripe, nothing new in the mail.
    assert services.refund_one(payment.id, 1).startswith("nothing to do")
    assert len(standin.created_refunds()) == 1

    # Withdrawn with Stripe's page still open and nothing paid: the deposit is no longer due,
    # and its Checkout page is closed so that it cannot be paid any more.
    unpaid = accept(quote_for(world))
    url = services.start_checkout(unpaid.registration.user, unpaid)
    residents.withdraw(unpaid.registration, "Nee", actor=unpaid.registration.user)
    run_jobs()
    db.session.expire_all()
    assert unpaid.status is PaymentStatus.CANCELLED
    assert standin.sessions[url.rsplit("/", 1)[1]]["status"] == "expired"
    # Erasing the account keeps the deposits for the books, without the person.
    user_id = registration.user_id
    residents.erase_resident(registration.user)
    db.session.expire_all()
    assert payment.registration_id is None and payment.refunded_cents == 25000
    assert db.session.get(Payment, payment.id) is not None and user_id is not None


def test_a_retried_refund_job_reuses_its_key_and_gets_the_same_refund(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    """Stripe made the refund but its answer never arrived: the retry asks again with the same
    idempotency key, Stripe answers with the refund it made, and there is one refund."""
    payment = paid(app, world, standin)
    standin.on_refund_created = lambda refund: True  # the answer is lost on the way
    services.refund_by_staff(world.staff, payment)
    with pytest.raises(services.GatewayError):
        services.refund_one(payment.id, 1)
    db.session.expire_all()
    assert payment.status is PaymentStatus.REFUNDING and payment.stripe_refund_id is None
    standin.on_refund_created = None
    assert services.refund_one(payment.id, 1) == "refunded"
    assert len(standin.refunds) == 1
    keys = {r.idempotency_key for r in standin.created_refunds()}
    assert keys == {f"refund:{payment.id}:1"}
    db.session.expire_all()
    assert payment.status is PaymentStatus.REFUNDED

    # The same loss, but Stripe's refund.created arrives before the retry: the event records
    # the refund (found by its metadata), and the retry then has nothing to do.
    other = paid(app, world, standin)
    standin.on_refund_created = lambda refund: True
    services.refund_by_staff(world.staff, other)
    with pytest.raises(services.GatewayError):
        services.refund_one(other.id, 1)
    standin.on_refund_created = None
    refund = next(
        r for r in standin.refunds.values() if r["metadata"]["payment_id"] == str(other.id)
    )
    post_event(app.test_client(), signed_event("refund.created", refund))
    db.session.expire_all()
    assert other.status is PaymentStatus.REFUNDED and other.stripe_refund_id == refund["id"]
    assert services.refund_one(other.id, 1).startswith("nothing to do")
    assert len(standin.refunds) == 2


def test_a_pending_refund_is_settled_by_its_webhook_and_a_failed_one_is_flagged(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    first = paid(app, world, standin)
    second = paid(app, world, standin)
    standin.refund_status = "pending"
    for payment in (first, second):
        services.refund_by_staff(world.staff, payment)
    run_jobs()
    db.session.expire_all()
    assert (first.status, second.status) == (PaymentStatus.REFUNDING, PaymentStatus.REFUNDING)
    client = app.test_client()
    standin.settle_refund(first.stripe_refund_id, "succeeded")
    post_event(client, signed_event("refund.updated", standin.refunds[first.stripe_refund_id]))
    standin.settle_refund(second.stripe_refund_id, "failed")
    post_event(client, signed_event("refund.failed", standin.refunds[second.stripe_refund_id]))
    db.session.expire_all()
    assert first.status is PaymentStatus.REFUNDED
    assert second.status is PaymentStatus.FLAGGED and second.flag_reason is FlagReason.REFUND_FAILED
    # A late charge.refunded for the first one changes nothing more.
    charge = standin.charges[standin.intents[first.payment_intent_id]["latest_charge"]]
    post_event(client, signed_event("charge.refunded", charge))
    db.session.expire_all()
    assert first.status is PaymentStatus.REFUNDED and len(first.changes) == 4
    # Staff try the failed one again: a new attempt, so a new key.
    standin.refund_status = "succeeded"
    services.refund_by_staff(world.staff, second)
    run_jobs()
    db.session.expire_all()
    assert second.status is PaymentStatus.REFUNDED
    assert [r.idempotency_key for r in standin.created_refunds()][-1] == f"refund:{second.id}:2"


def test_cancelling_the_action_refunds_every_deposit_in_one_run_safe_to_run_twice(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    held = [paid(app, world, standin) for _ in range(3)]
    unpaid = accept(quote_for(world))
    actions.cancel_action(world.staff, world.action, "De gemeente stopt de actie")
    run = db.session.scalars(select(RefundRun)).one()
    progress = services.run_progress(run)
    assert (progress.total, progress.refunded, progress.waiting) == (3, 0, 3)
    db.session.expire_all()
    assert unpaid.status is PaymentStatus.CANCELLED

    # The run's worker dies waiting for Stripe's answer on the second deposit.
    created: list[str] = []

    def lose_the_second_answer(refund: dict) -> bool:
        created.append(refund["id"])
        return len(created) == 2

    standin.on_refund_created = lose_the_second_answer
    with pytest.raises(services.GatewayError):
        run_refunds_job(run.id)
    db.session.expire_all()
    assert services.run_progress(run).refunded == 1  # each refund is committed on its own
    # Run again (the outbox retries it): it continues, and the lost one is found by its key.
    standin.on_refund_created = None
    run_refunds_job(run.id)
    db.session.expire_all()
    progress = services.run_progress(run)
    assert (progress.total, progress.refunded, progress.percent) == (3, 3, 100)
    assert {p.status for p in held} == {PaymentStatus.REFUNDED}
    assert len(standin.refunds) == 3
    assert services.run_refunds(run.id) == "skipped"
    # Staff press "refund all" again: nothing is left to refund, and Stripe is asked nothing.
    with pytest.raises(services.PaymentError):
        services.refund_all_again(world.staff, world.action)
    assert len(standin.refunds) == 3

    client = app.test_client()
    log_in(client, world.staff)
    page = client.get(f"/desk/actions/{world.action.id}/payments").get_data(as_text=True)
    assert f'id="run-{run.id}" data-status="done"' in page


def run_refunds_job(run_id: int) -> None:
    """The refund run's job, as the outbox runs it."""
    job = db.session.scalar(select(OutboxJob).where(OutboxJob.key == f"refund-run:{run_id}"))
    assert job is not None
    try:
        jobs.execute(job.id)
    finally:
        db.session.rollback()
