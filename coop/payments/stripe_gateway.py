"""The thin adapter between coop and Stripe: the few API calls we make, and the verification
of webhooks. Services see plain data classes, never the library's objects.

Every call that creates something carries our own idempotency key (derived from our record), so
a retried job gets Stripe's first answer again instead of a second session or refund. Stripe
keeps a key for at least 24 hours. ``STRIPE_API_BASE`` points the library elsewhere (the tests'
stand-in for Stripe on loopback).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"  # pinned: the shapes below are read for this version
PAYMENT_METHOD_TYPES = ("ideal", "card")


class GatewayError(Exception):
    """Stripe could not be reached or refused the request. ``temporary`` says whether trying
    again later can help (network trouble, rate limits, Stripe's own errors)."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class WebhookRejectedError(Exception):
    """A webhook that is not from Stripe, or too old: answered with 400."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open, complete, expired
    payment_status: str  # paid, unpaid, no_payment_required
    amount_total: int | None
    currency: str | None
    payment_intent: str | None
    client_reference_id: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str  # succeeded, processing, requires_payment_method, canceled...
    amount: int
    amount_received: int
    currency: str
    latest_charge: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    currency: str
    payment_intent: str | None
    failure_reason: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Charge:
    id: str
    payment_intent: str | None
    amount: int
    amount_refunded: int
    refunded: bool
    currency: str


@dataclass(frozen=True)
class Event:
    """What we keep of a verified webhook event: which object it is about."""

    id: str
    type: str
    object_type: str
    object_id: str
    livemode: bool
    created: datetime | None


def _id(value: Any) -> str | None:
    """An expandable field holds an id, or the object when expanded."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value.get("id")) if hasattr(value, "get") else None


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    raw = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in dict(raw).items()}


class StripeGateway:
    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str | None,
        tolerance: int,
        api_base: str | None = None,
        timeout: int = 20,
        max_network_retries: int = 2,
    ) -> None:
        # Imported where Stripe is used, not by every web process (5 MiB, 60 ms at start-up):
        # without STRIPE_SECRET_KEY no gateway is ever made.
        import stripe

        options: dict[str, Any] = {}
        if api_base:
            options["base_addresses"] = {"api": api_base.rstrip("/")}
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            http_client=stripe.RequestsClient(timeout=timeout),
            # The library retries network errors itself with the same idempotency key.
            max_network_retries=max_network_retries,
            **options,
        )
        self.webhook_secret = webhook_secret
        self.tolerance = tolerance

    # --- calls --------------------------------------------------------------------------

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Make the call; the answer as plain dicts (the library's objects are not dicts)."""
        import stripe

        try:
            result = function(*args, **kwargs)
            return dict(result.to_dict())
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise GatewayError(f"{what}: {exc}", temporary=True) from exc
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None) or 0
            # Stripe's own trouble (5xx) and an idempotent request still in flight (409) pass.
            temporary = status >= 500 or status == 409
            raise GatewayError(f"{what}: {exc}", temporary=temporary) from exc

    def create_checkout_session(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        description: str,
        locale: str,
        customer_email: str | None,
        success_url: str,
        cancel_url: str,
        client_reference_id: str,
        metadata: Mapping[str, str],
    ) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": list(PAYMENT_METHOD_TYPES),
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount_cents,
                        "product_data": {"name": description},
                    },
                    "quantity": 1,
                }
            ],
            "locale": locale,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "metadata": dict(metadata),
            # The PaymentIntent carries the same metadata, so its own events can be placed.
            "payment_intent_data": {"metadata": dict(metadata), "description": description},
        }
        if customer_email:
            params["customer_email"] = customer_email
        session = self._call(
            "create checkout session",
            self.client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return self._session(session)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        session = self._call(
            "retrieve checkout session", self.client.v1.checkout.sessions.retrieve, session_id
        )
        return self._session(session)

    def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        session = self._call(
            "expire checkout session", self.client.v1.checkout.sessions.expire, session_id
        )
        return self._session(session)

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        intent = self._call(
            "retrieve payment intent", self.client.v1.payment_intents.retrieve, intent_id
        )
        return PaymentIntent(
            id=str(intent.get("id")),
            status=str(intent.get("status")),
            amount=int(intent.get("amount") or 0),
            amount_received=int(intent.get("amount_received") or 0),
            currency=str(intent.get("currency") or ""),
            latest_charge=_id(intent.get("latest_charge")),
            metadata=_metadata(intent),
        )

    def create_refund(
        self,
        *,
        idempotency_key: str,
        payment_intent: str,
        amount_cents: int,
        metadata: Mapping[str, str],
    ) -> Refund:
        refund = self._call(
            "create refund",
            self.client.v1.refunds.create,
            params={
                "payment_intent": payment_intent,
                "amount": amount_cents,
                "reason": "requested_by_customer",
                "metadata": dict(metadata),
            },
            options={"idempotency_key": idempotency_key},
        )
        return self._refund(refund)

    def retrieve_refund(self, refund_id: str) -> Refund:
        return self._refund(
            self._call("retrieve refund", self.client.v1.refunds.retrieve, refund_id)
        )

    def refunds_of(self, payment_intent: str) -> list[Refund]:
        """The refunds of a payment, newest first (one page: a deposit has very few)."""
        page = self._call(
            "list refunds",
            self.client.v1.refunds.list,
            params={"payment_intent": payment_intent, "limit": 100},
        )
        return [self._refund(r) for r in page.get("data") or []]

    def retrieve_charge(self, charge_id: str) -> Charge:
        charge = self._call("retrieve charge", self.client.v1.charges.retrieve, charge_id)
        return Charge(
            id=str(charge.get("id")),
            payment_intent=_id(charge.get("payment_intent")),
            amount=int(charge.get("amount") or 0),
            amount_refunded=int(charge.get("amount_refunded") or 0),
            refunded=bool(charge.get("refunded")),
            currency=str(charge.get("currency") or ""),
        )

    @staticmethod
    def _session(session: Any) -> CheckoutSession:
        return CheckoutSession(
            id=str(session.get("id")),
            url=session.get("url"),
            status=str(session.get("status") or ""),
            payment_status=str(session.get("payment_status") or ""),
            amount_total=session.get("amount_total"),
            currency=session.get("currency"),
            payment_intent=_id(session.get("payment_intent")),
            client_reference_id=session.get("client_reference_id"),
            metadata=_metadata(session),
        )

    @staticmethod
    def _refund(refund: Any) -> Refund:
        return Refund(
            id=str(refund.get("id")),
            status=str(refund.get("status") or ""),
            amount=int(refund.get("amount") or 0),
            currency=str(refund.get("currency") or ""),
            payment_intent=_id(refund.get("payment_intent")),
            failure_reason=refund.get("failure_reason"),
            metadata=_metadata(refund),
        )

    # --- webhooks -----------------------------------------------------------------------

    def verify_event(self, payload: bytes, signature: str | None) -> Event:
        """The event in ``payload`` if its ``Stripe-Signature`` verifies with our endpoint
        secret and its timestamp is within the tolerance; otherwise ``WebhookRejectedError``."""
        if not self.webhook_secret:
            raise WebhookRejectedError("no webhook secret configured")
        import stripe

        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=self.tolerance
            ).to_dict()
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejectedError(f"signature: {exc}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, not an event
            raise WebhookRejectedError(f"payload: {type(exc).__name__}") from exc
        try:
            data_object = event["data"]["object"]
            created = event.get("created")
            return Event(
                id=str(event["id"]),
                type=str(event["type"]),
                object_type=str(data_object.get("object") or "")[:50],
                object_id=str(data_object.get("id") or "")[:255],
                livemode=bool(event.get("livemode")),
                created=datetime.fromtimestamp(int(created), UTC) if created else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WebhookRejectedError(f"event shape: {type(exc).__name__}") from exc


def configured(app: Flask | None = None) -> bool:
    app = app or current_app
    return bool(app.config.get("STRIPE_SECRET_KEY"))


def gateway(app: Flask | None = None) -> StripeGateway:
    """The app's Stripe adapter (one per app: the HTTP client keeps its connections)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    existing: StripeGateway | None = app.extensions.get("coop_stripe")
    if existing is None:
        if not configured(app):
            raise GatewayError("Stripe is not configured (no STRIPE_SECRET_KEY)", temporary=False)
        existing = StripeGateway(
            app.config["STRIPE_SECRET_KEY"],
            webhook_secret=app.config.get("STRIPE_WEBHOOK_SECRET"),
            tolerance=int(app.config.get("STRIPE_WEBHOOK_TOLERANCE") or 300),
            api_base=app.config.get("STRIPE_API_BASE"),
            timeout=int(app.config.get("STRIPE_TIMEOUT") or 20),
            max_network_retries=int(app.config.get("STRIPE_MAX_NETWORK_RETRIES", 2)),
        )
        app.extensions["coop_stripe"] = existing
    return existing
