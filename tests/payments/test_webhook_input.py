"""Stripe's webhook and unusual input, signed with the right secret (ASVS 5.1, 13.1): a body
that is a JSON list or string, an event id longer than the column or not an id, a timestamp in
the future beyond the tolerance. Each answers 400 and is logged; nothing is stored; no 500 on
either database."""

from __future__ import annotations

import json
import logging
import time

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.extensions import db
from coop.payments.models import StripeEvent
from tests.payments.stripe_standin import event_payload, sign, signed_event

CUSTOMER = {"id": "cus_123", "object": "customer"}


def post(client: object, body: bytes, *, timestamp: int | None = None) -> object:
    return client.post(  # type: ignore[attr-defined]
        "/payments/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": sign(body, timestamp=timestamp)},
    )


def stored() -> int:
    return int(db.session.scalar(select(func.count()).select_from(StripeEvent)) or 0)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"[1, 2]",
        json.dumps([event_payload("customer.created", CUSTOMER)]).encode(),
        b'"x"',
        b"null",
        b"42",
    ],
)
def test_a_signed_body_that_is_not_one_json_object_is_refused(
    app: Flask, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    with app.app_context():
        response = post(client, body)
        assert response.status_code == 400  # type: ignore[attr-defined]
        assert stored() == 0
    assert "stripe webhook refused" in caplog.text


@pytest.mark.parametrize(
    "event_id",
    ["evt_" + "x" * 252, "evt_" + "x" * 300, "evt_" + "x" * 5000, "evt_1; DROP", "evt_é"],
)
def test_a_signed_event_whose_id_is_too_long_or_not_an_id_is_refused(
    app: Flask, event_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    body = json.dumps(event_payload("customer.created", CUSTOMER, event_id=event_id)).encode()
    with app.app_context():
        response = post(client, body)
        assert response.status_code == 400  # type: ignore[attr-defined]
        assert stored() == 0
    assert "event id" in caplog.text
    # The longest id that fits is taken.
    longest = "evt_" + "x" * 251
    ok = json.dumps(event_payload("customer.created", CUSTOMER, event_id=longest)).encode()
    with app.app_context():
        assert post(client, ok).status_code == 200  # type: ignore[attr-defined]
        assert db.session.scalars(select(StripeEvent.event_id)).one() == longest


def test_a_signature_dated_in_the_future_beyond_the_tolerance_is_refused(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = app.test_client()
    tolerance = app.config["STRIPE_WEBHOOK_TOLERANCE"]
    early = signed_event("customer.created", CUSTOMER, timestamp=int(time.time()) + tolerance + 60)
    with app.app_context():
        response = client.post("/payments/stripe/webhook", data=early.body, headers=early.headers)
        assert response.status_code == 400
        assert stored() == 0
    assert "timestamp in the future" in caplog.text
    # A clock a little ahead, within the tolerance, is fine.
    near = signed_event("customer.created", CUSTOMER, timestamp=int(time.time()) + 30)
    with app.app_context():
        response = client.post("/payments/stripe/webhook", data=near.body, headers=near.headers)
        assert response.status_code == 200
