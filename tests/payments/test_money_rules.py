"""The money rules of deposits, each through the real path: the resident presses "pay", Stripe
(the stand-in) answers in its documented shapes, webhooks signed as Stripe signs them are posted
to the real endpoint and processed by the real job, staff act through the desk's pages.

Each test here fails when its rule is broken on purpose (``python -m tests.mutations`` breaks
them one at a time): a late payment event never turns a refunded deposit back to paid; another
amount than asked, more or less, is flagged and not paid; one Stripe event is processed once,
however often it or its job arrives; a refund of part of the deposit in Stripe's dashboard is
not a refund of the deposit.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.core import jobs
from coop.core.models import EmailLog, JobStatus, OutboxJob
from coop.extensions import db
from coop.payments.models import (
    EventStatus,
    FlagReason,
    Payment,
    PaymentChange,
    PaymentStatus,
    StripeEvent,
)
from tests import factories
from tests.payments.conftest import World, accept, log_in, post_event, quote_for, run_jobs
from tests.payments.stripe_standin import SignedEvent, StripeStandIn, sign, signed_event


def refreshed(payment: Payment) -> Payment:
    db.session.expire_all()
    fresh = db.session.get(Payment, payment.id)
    assert fresh is not None
    return fresh


def pay_button(app: Flask, world: World, standin: StripeStandIn) -> tuple[Payment, dict[str, Any]]:
    """A resident accepts a quote and presses "pay": the deposit and Stripe's open session."""
    payment = accept(quote_for(world))
    client = app.test_client()
    log_in(client, payment.registration.user)
    response = factories.post_form(
        client, f"/my/payments/{payment.id}/pay", {}, token_from=f"/my/payments/{payment.id}"
    )
    assert response.status_code == 303, response.status_code
    return payment, standin.sessions[response.headers["Location"].rsplit("/", 1)[1]]


def paid_by_checkout(app: Flask, world: World, standin: StripeStandIn) -> Payment:
    payment, session = pay_button(app, world, standin)
    standin.complete_session(session["id"])
    response = post_event(app.test_client(), signed_event("checkout.session.completed", session))
    assert response.status_code == 200 and response.json["outcome"] == "stored"
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.PAID
    return fresh


def event_row(event_id: str) -> StripeEvent:
    row = db.session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
    assert row is not None
    return row


def emails(key: str) -> int:
    return int(
        db.session.scalar(select(func.count()).select_from(EmailLog).where(EmailLog.key == key))
        or 0
    )


def staff_client(app: Flask, world: World) -> FlaskClient:
    client = app.test_client()
    log_in(client, world.staff)
    return client


# --- (a) a refunded deposit stays refunded ------------------------------------------------------


def test_a_late_payment_event_does_not_turn_a_refunded_deposit_back_to_paid(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    payment = paid_by_checkout(app, world, standin)
    intent = standin.intents[payment.payment_intent_id]
    session = standin.sessions[payment.checkout_session_id]
    # Staff refund it on the desk's page; the job asks Stripe, which refunds at once (a card).
    staff = staff_client(app, world)
    url = f"/desk/payments/{payment.id}"
    assert factories.post_form(staff, f"{url}/refund", {}, token_from=url).status_code == 302
    refunded = refreshed(payment)
    assert refunded.status is PaymentStatus.REFUNDED and refunded.refunded_cents == 25000
    changes_before = len(refunded.changes)

    # Stripe's events about the payment arrive late, after the refund (Stripe does not promise
    # any order). Re-read from Stripe the payment still "succeeded": that is no news.
    client = app.test_client()
    late = [
        signed_event("payment_intent.succeeded", intent),
        signed_event("checkout.session.async_payment_succeeded", session),
        signed_event("checkout.session.completed", session),
    ]
    for event in late:
        response = post_event(client, event)
        assert response.status_code == 200 and response.json["outcome"] == "stored"
        row = event_row(event.id)
        # Processed (not left failing in the outbox), and it says why nothing changed.
        assert row.status is EventStatus.PROCESSED, (event.id, row.status)
        assert row.outcome == "already refunded", row.outcome
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.REFUNDED
    assert fresh.refunded_cents == 25000 and fresh.refunded_at is not None
    assert len(fresh.changes) == changes_before
    assert [c.to_status for c in fresh.changes][-1] is PaymentStatus.REFUNDED
    run_jobs()
    assert emails(f"deposit-paid:{payment.id}") == 1  # the first time only
    assert not db.session.scalar(select(OutboxJob).where(OutboxJob.status == JobStatus.FAILED))
    # The resident's page and the desk's page say refunded.
    resident = app.test_client()
    log_in(resident, fresh.registration.user)
    page = resident.get(f"/my/payments/{payment.id}").get_data(as_text=True)
    assert 'data-status="refunded"' in page
    assert 'data-status="refunded"' in staff.get(url).get_data(as_text=True)


# --- (b) only what was asked is paid ------------------------------------------------------------


def test_paying_more_than_asked_through_stripe_is_flagged_not_paid(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    payment, session = pay_button(app, world, standin)
    standin.complete_session(session["id"], amount=30000)  # € 300 where € 250 was asked
    event = signed_event("checkout.session.completed", session)
    assert post_event(app.test_client(), event).status_code == 200
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.FLAGGED
    assert fresh.flag_reason is FlagReason.AMOUNT_MISMATCH
    assert fresh.received_cents == 30000 and fresh.amount_cents == 25000
    assert event_row(event.id).outcome == "flagged: amount"
    # The same news from the PaymentIntent changes nothing.
    intent = standin.intents[session["payment_intent"]]
    post_event(app.test_client(), signed_event("payment_intent.succeeded", intent))
    assert refreshed(payment).status is PaymentStatus.FLAGGED
    run_jobs()
    assert emails(f"deposit-paid:{payment.id}") == 0  # the resident is not told "paid"
    staff_mail = db.session.scalars(
        select(EmailLog).where(EmailLog.key.like(f"deposit-flagged:{payment.id}:%"))
    ).all()
    assert [m.recipient for m in staff_mail] == [world.staff.email]
    page = staff_client(app, world).get(f"/desk/payments/{payment.id}").get_data(as_text=True)
    assert 'data-status="flagged"' in page


@pytest.mark.parametrize("app_config", [{}], ids=["offline"])
def test_a_bank_transfer_of_more_than_asked_is_flagged_not_paid(app: Flask, world: World) -> None:
    payment = accept(quote_for(world))
    staff = staff_client(app, world)
    url = f"/desk/payments/{payment.id}"
    response = factories.post_form(staff, f"{url}/received", {"amount": "250,01"}, token_from=url)
    assert response.status_code == 302
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.FLAGGED
    assert fresh.flag_reason is FlagReason.AMOUNT_MISMATCH and fresh.received_cents == 25001
    run_jobs()
    assert emails(f"deposit-paid:{payment.id}") == 0


# --- (c) one event, processed once --------------------------------------------------------------


def test_the_same_stripe_event_is_processed_once_however_often_it_arrives(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    payment, session = pay_button(app, world, standin)
    standin.complete_session(session["id"])
    event = signed_event("checkout.session.completed", session)
    client = app.test_client()
    assert post_event(client, event).json["outcome"] == "stored"
    row = event_row(event.id)
    first = (row.status, row.outcome, row.processed_at, row.payment_id)
    assert first[:2] == (EventStatus.PROCESSED, "paid") and first[3] == payment.id
    reads = len(standin.requests)

    # Stripe sends it again (it did not hear our 200 in time): answered, not stored again.
    again = post_event(client, signed_event_again(event))
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"

    # The job is delivered again: RQ runs a job at least once, and a worker that died after the
    # job's work was committed but before the outbox row was marked done runs it a second time.
    job = db.session.scalar(select(OutboxJob).where(OutboxJob.key == f"stripe-event:{event.id}"))
    assert job is not None and job.status is JobStatus.DONE
    job.status = JobStatus.PENDING
    db.session.commit()
    assert jobs.execute(job.id) == "done"

    row = event_row(event.id)
    assert (row.status, row.outcome, row.processed_at, row.payment_id) == first
    assert len(standin.requests) == reads  # Stripe was not asked again
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.PAID
    changes = db.session.scalars(
        select(PaymentChange).where(PaymentChange.payment_id == payment.id)
    ).all()
    assert [c.to_status for c in changes] == [PaymentStatus.PENDING, PaymentStatus.PAID]
    assert [c.stripe_event_id for c in changes] == [None, event.id]
    run_jobs()
    assert emails(f"deposit-paid:{payment.id}") == 1


def signed_event_again(event: SignedEvent) -> SignedEvent:
    """The same event, delivered again: the same body with a fresh signature, as Stripe's retries
    are."""
    return SignedEvent(
        body=event.body,
        headers={**event.headers, "Stripe-Signature": sign(event.body)},
        id=event.id,
    )


# --- (d) part of a deposit refunded in Stripe's dashboard ---------------------------------------


def test_a_partial_refund_in_stripes_dashboard_is_not_recorded_as_a_full_refund(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    payment = paid_by_checkout(app, world, standin)
    intent_id = payment.payment_intent_id
    assert intent_id is not None
    charge_id = standin.intents[intent_id]["latest_charge"]
    client = app.test_client()

    # Someone refunds € 100 of the € 250 in Stripe's dashboard. Stripe sends refund.created
    # (a Refund without our metadata) and charge.refunded (the Charge, now with
    # amount_refunded 10000 and refunded false: "including partial refunds").
    part = standin.refund_in_dashboard(intent_id, 10000)
    charge = standin.charges[charge_id]
    assert (charge["amount_refunded"], charge["refunded"]) == (10000, False)
    for event in (
        signed_event("refund.created", part),
        signed_event("charge.refunded", charge),
    ):
        assert post_event(client, event).status_code == 200
        row = event_row(event.id)
        assert row.status is EventStatus.PROCESSED and row.payment_id == payment.id
        assert "10000" in (row.outcome or ""), row.outcome
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.PAID
    assert fresh.refunded_cents is None and fresh.refunded_at is None
    assert [c.to_status for c in fresh.changes][-1] is PaymentStatus.PAID
    run_jobs()
    assert emails(f"deposit-refunded:{payment.id}") == 0  # nobody is told "refunded"
    page = staff_client(app, world).get(f"/desk/payments/{payment.id}").get_data(as_text=True)
    assert 'data-status="paid"' in page and "10000" in page  # the events say what happened

    # The rest is refunded in the dashboard too: now the charge is refunded in full, and the
    # deposit is refunded, with what Stripe refunded in all.
    rest = standin.refund_in_dashboard(intent_id)
    assert rest["amount"] == 15000 and standin.charges[charge_id]["refunded"] is True
    post_event(client, signed_event("refund.created", rest))
    assert refreshed(payment).status is PaymentStatus.PAID  # € 150 alone is not all of it
    post_event(client, signed_event("charge.refunded", standin.charges[charge_id]))
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.REFUNDED
    assert fresh.refunded_cents == 25000
    run_jobs()
    assert emails(f"deposit-refunded:{payment.id}") == 1
