"""Paying a deposit through Stripe Checkout, against the stand-in for Stripe: what coop asks
Stripe for, the page that says the truth after Checkout, and the webhooks that move a payment
on (valid, duplicate, out of order, bad signature, too old, unknown type, wrong amount)."""

from __future__ import annotations

import json
import time

from flask import Flask
from sqlalchemy import func, select

from coop.core.models import EmailLog, OutboxJob
from coop.extensions import db
from coop.payments import services
from coop.payments.models import (
    EventStatus,
    FlagReason,
    Payment,
    PaymentChange,
    PaymentMode,
    PaymentStatus,
    StripeEvent,
)
from tests import factories
from tests.payments.conftest import World, accept, log_in, post_event, quote_for, run_jobs
from tests.payments.stripe_standin import StripeStandIn, event_payload, sign, signed_event


def start_paying(app: Flask, world: World, standin: StripeStandIn, language: str = "nl"):
    """Accept a quote and press the pay button: the payment and Stripe's session."""
    quote = quote_for(world, language=language)
    payment = accept(quote)
    client = app.test_client()
    log_in(client, payment.registration.user)
    if language == "en":
        client.get("/language/en")
    token = factories.csrf_token(client, f"/my/payments/{payment.id}")
    response = client.post(f"/my/payments/{payment.id}/pay", data={"csrf_token": token})
    assert response.status_code == 303, (
        response.status_code,
        response.get_data(as_text=True)[-1500:],
    )
    session_id = response.headers["Location"].rsplit("/", 1)[1]
    return client, payment, token, standin.sessions[session_id]


def refreshed(payment: Payment) -> Payment:
    db.session.expire_all()
    fresh = db.session.get(Payment, payment.id)
    assert fresh is not None
    return fresh


def test_accepting_a_quote_asks_the_deposit_and_checkout_gets_what_it_needs(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    client, payment, token, session = start_paying(app, world, standin, language="en")
    assert payment.mode is PaymentMode.STRIPE
    assert payment.status is PaymentStatus.PENDING
    assert payment.amount_cents == 25000
    assert payment.reference == services.reference_for(payment.id)
    # The email that says how to pay is in the outbox, written with the acceptance.
    assert db.session.scalar(
        select(OutboxJob).where(OutboxJob.key == f"deposit-requested:{payment.id}")
    )

    [created] = standin.created_sessions()
    assert created.idempotency_key == f"checkout:{payment.id}:1"
    assert created.authorization == "Bearer sk_test_standin_0123456789"
    params = created.params
    assert params["mode"] == "payment"
    assert params["payment_method_types"] == ["ideal", "card"]
    assert params["locale"] == "en"  # the resident reads coop in English
    [item] = params["line_items"]
    assert item["price_data"]["currency"] == "eur"
    assert item["price_data"]["unit_amount"] == "25000"
    assert item["quantity"] == "1"
    assert params["metadata"]["payment_id"] == str(payment.id)
    assert params["payment_intent_data"]["metadata"]["payment_id"] == str(payment.id)
    assert params["client_reference_id"] == str(payment.id)
    assert params["success_url"] == f"http://localhost/my/payments/{payment.id}?from=checkout"
    assert params["customer_email"] == payment.registration.user.email

    # A second press while Stripe's page is still open reuses it: no second session.
    again = client.post(f"/my/payments/{payment.id}/pay", data={"csrf_token": token})
    assert again.status_code == 303
    assert again.headers["Location"] == session["url"]
    assert len(standin.created_sessions()) == 1

    # Back from Stripe the page does not pretend: it waits for the webhook.
    page = client.get(f"/my/payments/{payment.id}?from=checkout").get_data(as_text=True)
    assert 'id="waiting"' in page and "waiting for confirmation" in page
    assert 'data-status="pending"' in page

    # Stripe unreachable: a message on the page, nothing recorded, no error page.
    other = accept(quote_for(world))
    client = app.test_client()
    log_in(client, other.registration.user)
    token = factories.csrf_token(client, f"/my/payments/{other.id}")
    standin.outage = True
    response = client.post(
        f"/my/payments/{other.id}/pay", data={"csrf_token": token}, follow_redirects=True
    )
    assert response.status_code == 200
    assert 'class="notice notice-error"' in response.get_data(as_text=True)
    fresh = refreshed(other)
    assert fresh.checkout_attempts == 0 and fresh.checkout_session_id is None


def test_a_verified_webhook_marks_it_paid_once_whatever_arrives_twice(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    client, payment, _token, session = start_paying(app, world, standin)
    standin.complete_session(session["id"])
    completed = signed_event("checkout.session.completed", session)
    assert post_event(client, completed).status_code == 200
    assert refreshed(payment).status is PaymentStatus.PAID
    # Stripe sends the same event again (it retries when unsure we got it).
    again = post_event(client, completed)
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"
    fresh = refreshed(payment)
    assert fresh.status is PaymentStatus.PAID
    assert fresh.received_cents == 25000 and fresh.payment_intent_id
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
    paid_changes = db.session.scalar(
        select(func.count())
        .select_from(PaymentChange)
        .where(
            PaymentChange.payment_id == payment.id, PaymentChange.to_status == PaymentStatus.PAID
        )
    )
    assert paid_changes == 1
    # The resident hears once, in their language.
    run_jobs()
    [mail] = db.session.scalars(
        select(EmailLog).where(EmailLog.key == f"deposit-paid:{payment.id}")
    )
    assert "aanbetaling" in mail.subject.lower()
    page = client.get(f"/my/payments/{payment.id}?from=checkout").get_data(as_text=True)
    assert 'data-status="paid"' in page and 'id="waiting"' not in page


def test_events_out_of_order_end_as_in_order(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    """payment_intent.succeeded before checkout.session.completed, and the reverse."""
    outcomes = []
    for first, second in (
        ("payment_intent.succeeded", "checkout.session.completed"),
        ("checkout.session.completed", "payment_intent.succeeded"),
    ):
        client, payment, _token, session = start_paying(app, world, standin)
        standin.complete_session(session["id"])
        intent = standin.intents[standin.sessions[session["id"]]["payment_intent"]]
        objects = {"payment_intent.succeeded": intent, "checkout.session.completed": session}
        for event_type in (first, second):
            assert (
                post_event(client, signed_event(event_type, objects[event_type])).status_code == 200
            )
        fresh = refreshed(payment)
        outcomes.append(
            (
                fresh.status,
                fresh.received_cents,
                fresh.payment_intent_id == intent["id"],
                len(fresh.changes),
            )
        )
    assert outcomes[0] == outcomes[1] == (PaymentStatus.PAID, 25000, True, 2)

    # An event is a trigger: one claiming "paid" for a session Stripe says is open changes
    # nothing, because the session is read again from Stripe.
    client, payment, _token, session = start_paying(app, world, standin)
    claimed = {**session, "payment_status": "paid", "status": "complete"}
    response = post_event(client, signed_event("checkout.session.completed", claimed))
    assert response.status_code == 200
    assert refreshed(payment).status is PaymentStatus.PENDING
    event = db.session.scalars(select(StripeEvent).order_by(StripeEvent.id.desc())).first()
    assert event is not None and event.status is EventStatus.PROCESSED
    assert "open" in (event.outcome or "")


def test_the_webhook_refuses_what_stripe_did_not_sign_and_ignores_what_it_does_not_need(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    client, payment, _token, session = start_paying(app, world, standin)
    standin.complete_session(session["id"])
    wrong_secret = signed_event("checkout.session.completed", session, secret="whsec_someone_else")
    assert post_event(client, wrong_secret).status_code == 400
    too_old = signed_event("checkout.session.completed", session, timestamp=int(time.time()) - 301)
    assert post_event(client, too_old).status_code == 400
    no_header = client.post("/payments/stripe/webhook", data=b"{}")
    assert no_header.status_code == 400
    # A signed body that was changed on the way no longer verifies.
    good = signed_event("checkout.session.completed", session)
    tampered = good.body.replace(b'"livemode": false', b'"livemode": true ')
    assert (
        client.post("/payments/stripe/webhook", data=tampered, headers=good.headers).status_code
        == 400
    )
    # Signed, but not JSON: refused, no 500.
    garbage = b"\xff\xfe not json"
    headers = {"Stripe-Signature": sign(garbage)}
    assert client.post("/payments/stripe/webhook", data=garbage, headers=headers).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert refreshed(payment).status is PaymentStatus.PENDING

    # A type we do not act on: answered 200 (else Stripe retries for days), stored as ignored.
    unknown = signed_event("customer.created", {"id": "cus_123", "object": "customer"})
    response = post_event(client, unknown)
    assert response.status_code == 200 and response.json["outcome"] == "ignored"
    row = db.session.scalars(select(StripeEvent)).one()
    assert row.status is EventStatus.IGNORED and row.event_id == unknown.id
    assert not db.session.scalar(
        select(OutboxJob).where(OutboxJob.name == "payments.process_stripe_event")
    )

    # Without Stripe configured there is no webhook at all.
    app.config["STRIPE_SECRET_KEY"] = None
    body = json.dumps(event_payload("checkout.session.completed", session)).encode()
    gone = client.post(
        "/payments/stripe/webhook", data=body, headers={"Stripe-Signature": sign(body)}
    )
    assert gone.status_code == 404


def test_another_amount_or_currency_is_not_paid_but_flagged_for_staff(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    for change, reason in (
        ({"amount": 100}, FlagReason.AMOUNT_MISMATCH),
        ({"currency": "usd"}, FlagReason.CURRENCY_MISMATCH),
    ):
        client, payment, _token, session = start_paying(app, world, standin)
        standin.complete_session(session["id"], **change)
        post_event(client, signed_event("checkout.session.completed", session))
        fresh = refreshed(payment)
        assert fresh.status is PaymentStatus.FLAGGED and fresh.flag_reason is reason
        assert fresh.paid_at is not None and fresh.status is not PaymentStatus.PAID
    run_jobs()
    staff_mails = db.session.scalars(
        select(EmailLog).where(EmailLog.recipient == world.staff.email)
    ).all()
    assert len(staff_mails) == 2
    assert not db.session.scalar(select(EmailLog).where(EmailLog.key.like("deposit-paid:%")))


def test_a_failed_bank_payment_can_be_tried_again_and_late_news_does_not_undo_it(
    app: Flask, world: World, standin: StripeStandIn
) -> None:
    client, payment, token, session = start_paying(app, world, standin)
    standin.complete_session(session["id"], delayed=True)
    post_event(client, signed_event("checkout.session.completed", session))
    assert refreshed(payment).status is PaymentStatus.PENDING  # on its way, not paid
    standin.settle_delayed(session["id"], succeeded=False)
    failed = signed_event("checkout.session.async_payment_failed", session)
    post_event(client, failed)
    assert refreshed(payment).status is PaymentStatus.FAILED
    page = client.get(f"/my/payments/{payment.id}").get_data(as_text=True)
    assert 'id="payment-failed"' in page

    retry = client.post(f"/my/payments/{payment.id}/pay", data={"csrf_token": token})
    assert retry.status_code == 303
    assert [r.idempotency_key for r in standin.created_sessions()] == [
        f"checkout:{payment.id}:1",
        f"checkout:{payment.id}:2",
    ]
    second = standin.sessions[retry.headers["Location"].rsplit("/", 1)[1]]
    assert refreshed(payment).status is PaymentStatus.PENDING
    # The first attempt's failure arrives again late: the new attempt stays open.
    post_event(client, signed_event("checkout.session.async_payment_failed", session))
    assert refreshed(payment).status is PaymentStatus.PENDING
    standin.complete_session(second["id"])
    post_event(client, signed_event("checkout.session.completed", second))
    assert refreshed(payment).status is PaymentStatus.PAID
    post_event(client, signed_event("checkout.session.async_payment_failed", session))
    assert refreshed(payment).status is PaymentStatus.PAID
