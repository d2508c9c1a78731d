"""A stand-in for Stripe's API on loopback, for tests: the few endpoints coop calls, answering in
Stripe's documented shapes (Checkout Session, PaymentIntent, Charge, Refund, list objects,
error objects), honouring idempotency keys as Stripe does, and recording every request so tests
can assert amounts, currency, payment methods, metadata and keys.

It also builds webhook events in Stripe's shape and signs them as Stripe does: the
``Stripe-Signature`` header ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``.
This is not Stripe: it knows only what coop needs, and tests move its objects on by hand
(``complete_session``...) where a customer would act on Stripe's page.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "sk_test_standin_0123456789"
WEBHOOK_SECRET = "whsec_standin_0123456789abcdef"
API_VERSION = "2026-10-28.endive"


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    authorization: str | None
    stripe_version: str | None


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[payment_id]=5``, ``line_items[0][quantity]=1``) back
    into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            converted = {k: lists(v) for k, v in node.items()}
            if converted and all(k.isdigit() for k in converted):
                return [converted[k] for k in sorted(converted, key=int)]
            return converted
        return node

    return lists(root)  # type: ignore[no-any-return]


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message, "code": code}}


class StripeStandIn:
    """Start with ``start()``; ``url`` goes into ``STRIPE_API_BASE``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        # What a new refund's status is ("succeeded", "pending", "failed").
        self.refund_status = "succeeded"
        # Called with the new refund after it is stored, before the answer is sent; returning
        # True drops the connection without an answer (the caller died, say).
        self.on_refund_created: Callable[[dict[str, Any]], bool] | None = None
        # While set, every request gets Stripe's 500 answer (an outage).
        self.outage = False
        # Where a Checkout Session's page is. A browser test sets it to the stand-in's own
        # address (``serve_checkout()``), which then answers the page the resident is sent to.
        self.checkout_base = "https://checkout.stripe.com"
        self._server: ThreadingHTTPServer | None = None

    # --- running ------------------------------------------------------------------------

    def start(self) -> StripeStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve_checkout(self) -> StripeStandIn:
        """Send residents to a Checkout page on the stand-in (for a real browser)."""
        self.checkout_base = self.url
        return self

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):06d}{'x' * 8}"

    # --- requests -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        parts = urlsplit(handler.path)
        if method == "GET" and parts.path.startswith("/c/pay/"):
            self._checkout_page(handler, parts.path.removeprefix("/c/pay/"))
            return
        params = decode_form(body if method == "POST" else parts.query)
        key = handler.headers.get("Idempotency-Key") if method == "POST" else None
        with self._lock:
            self.requests.append(
                Recorded(
                    method,
                    parts.path,
                    params,
                    key,
                    handler.headers.get("Authorization"),
                    handler.headers.get("Stripe-Version"),
                )
            )
        drop = False
        try:
            if self.outage:
                raise StripeError(500, "api_error", "Stripe is having trouble (stand-in outage)")
            if handler.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                raise StripeError(401, "invalid_request_error", "Invalid API Key provided")
            with self._lock:
                if key is not None and key in self._idempotent:
                    fingerprint, status, answer = self._idempotent[key]
                    if fingerprint != f"{parts.path} {body}":
                        raise StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                        )
                    self._answer(handler, status, answer, replayed=True)
                    return
                status, answer, drop = self._route(method, parts.path, params)
                if key is not None:
                    self._idempotent[key] = (f"{parts.path} {body}", status, answer)
        except StripeError as exc:
            status, answer = exc.status, exc.body
        if drop:
            handler.close_connection = True
            return
        self._answer(handler, status, answer)

    def _checkout_page(self, handler: BaseHTTPRequestHandler, session_id: str) -> None:
        """The page a browser reaches after "pay" (Stripe Checkout's place)."""
        known = session_id in self.sessions
        data = (
            "<!doctype html><html lang='en'><head><title>Stand-in Checkout</title></head>"
            # Wraps the long session id, as Stripe's page would: browser tests measure every
            # page they reach, the stand-in's too.
            "<body style='overflow-wrap: anywhere'>"
            f"<main><h1 id='checkout'>Checkout {session_id}</h1></main></body></html>"
        ).encode()
        handler.send_response(200 if known else 404)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        answer: dict[str, Any],
        replayed: bool = False,
    ) -> None:
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_standin_{next(self._ids)}")
        if replayed:
            handler.send_header("Idempotent-Replayed", "true")
        if status >= 500:
            handler.send_header("Stripe-Should-Retry", "false")
        handler.end_headers()
        handler.wfile.write(data)

    def _route(
        self, method: str, path: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], bool]:
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params), False
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path)
        if match:
            session = self._get(self.sessions, match[1], "checkout.session")
            if match[2] and method == "POST":
                if session["status"] != "open":
                    raise StripeError(
                        400,
                        "invalid_request_error",
                        "Only Checkout Sessions with a status of open can be expired.",
                    )
                session["status"] = "expired"
            return 200, session, False
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if match and method == "GET":
            return 200, self._get(self.intents, match[1], "payment_intent"), False
        match = re.fullmatch(r"/v1/charges/([^/]+)", path)
        if match and method == "GET":
            return 200, self._get(self.charges, match[1], "charge"), False
        if path == "/v1/refunds" and method == "POST":
            refund = self._create_refund(params)
            drop = bool(self.on_refund_created and self.on_refund_created(refund))
            return 200, refund, drop
        if path == "/v1/refunds" and method == "GET":
            data = [
                r
                for r in sorted(self.refunds.values(), key=lambda r: -r["created"])
                if r["payment_intent"] == params.get("payment_intent")
            ]
            return (
                200,
                {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"},
                False,
            )
        match = re.fullmatch(r"/v1/refunds/([^/]+)", path)
        if match and method == "GET":
            return 200, self._get(self.refunds, match[1], "refund"), False
        raise StripeError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        if object_id not in store:
            raise StripeError(
                404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing"
            )
        return store[object_id]

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = self.new_id("cs")
        items = params.get("line_items") or []
        amount = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items
        )
        currency = items[0]["price_data"]["currency"] if items else None
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "currency": currency,
            "customer_email": params.get("customer_email"),
            "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_method_types": params.get("payment_method_types") or [],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.checkout_base}/c/pay/{session_id}",
            # Kept to give the PaymentIntent its metadata, as Stripe does.
            "_payment_intent_data": params.get("payment_intent_data") or {},
        }
        self.sessions[session_id] = session
        return session

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._get(self.intents, str(params.get("payment_intent")), "payment_intent")
        charge = self.charges[intent["latest_charge"]]
        amount = int(params.get("amount") or charge["amount"] - charge["amount_refunded"])
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge",
                "amount_too_large",
            )
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(time.time()) + next(self._ids),
            "currency": charge["currency"],
            "metadata": params.get("metadata") or {},
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "status": self.refund_status,
            "failure_reason": "expired_or_canceled_card"
            if self.refund_status == "failed"
            else None,
        }
        self.refunds[refund["id"]] = refund
        if refund["status"] == "succeeded":
            self._refunded(charge, amount)
        return refund

    def _refunded(self, charge: dict[str, Any], amount: int) -> None:
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]

    # --- what a customer (or Stripe) does, for tests -----------------------------------------

    def created_sessions(self) -> list[Recorded]:
        return [
            r for r in self.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"
        ]

    def created_refunds(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/refunds"]

    def complete_session(
        self,
        session_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        delayed: bool = False,
    ) -> dict[str, Any]:
        """The customer paid on Stripe's page (``delayed``: a bank payment still on its way).
        ``amount``/``currency`` make Stripe report something else than was asked."""
        with self._lock:
            session = self.sessions[session_id]
            amount = session["amount_total"] if amount is None else amount
            currency = currency or session["currency"]
            intent_id, charge_id = self.new_id("pi"), self.new_id("ch")
            self.charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": 0 if delayed else amount,
                "amount_refunded": 0,
                "currency": currency,
                "paid": not delayed,
                "payment_intent": intent_id,
                "refunded": False,
                "status": "pending" if delayed else "succeeded",
            }
            self.intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0 if delayed else amount,
                "currency": currency,
                "latest_charge": charge_id,
                "metadata": session["_payment_intent_data"].get("metadata") or {},
                "status": "processing" if delayed else "succeeded",
            }
            session.update(
                status="complete",
                payment_status="unpaid" if delayed else "paid",
                payment_intent=intent_id,
                amount_total=amount,
                currency=currency,
            )
            return session

    def settle_delayed(self, session_id: str, *, succeeded: bool) -> None:
        with self._lock:
            session = self.sessions[session_id]
            intent = self.intents[session["payment_intent"]]
            if succeeded:
                intent.update(status="succeeded", amount_received=intent["amount"])
                session["payment_status"] = "paid"
                self.charges[intent["latest_charge"]].update(status="succeeded", paid=True)
            else:
                intent.update(status="requires_payment_method")
                self.charges[intent["latest_charge"]].update(status="failed")

    def refund_in_dashboard(self, intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """Someone refunds (part of) the payment in Stripe's dashboard, not through coop: a
        Refund without our metadata, and the Charge's ``amount_refunded`` goes up; ``refunded``
        turns true only once the whole charge is refunded."""
        with self._lock:
            intent = self.intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            amount = charge["amount"] - charge["amount_refunded"] if amount is None else amount
            refund = {
                "id": self.new_id("re"),
                "object": "refund",
                "amount": amount,
                "balance_transaction": self.new_id("txn"),
                "charge": charge["id"],
                "created": int(time.time()) + next(self._ids),
                "currency": charge["currency"],
                "metadata": {},
                "payment_intent": intent_id,
                "reason": "requested_by_customer",
                "receipt_number": None,
                "source_transfer_reversal": None,
                "status": "succeeded",
                "transfer_reversal": None,
            }
            self.refunds[refund["id"]] = refund
            self._refunded(charge, amount)
            return refund

    def settle_refund(self, refund_id: str, status: str) -> None:
        with self._lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if status == "succeeded":
                self._refunded(self.charges[refund["charge"]], refund["amount"])


# --- webhooks, as Stripe sends them ------------------------------------------------------------

_events = itertools.count(1)


@dataclass
class SignedEvent:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    id: str = ""


def event_payload(
    event_type: str, data_object: dict[str, Any], *, event_id: str | None = None
) -> dict[str, Any]:
    """An event in Stripe's documented shape (API version as pinned by coop)."""
    public = {k: v for k, v in data_object.items() if not k.startswith("_")}
    return {
        "id": event_id or f"evt_test_{next(_events):08d}standin",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": public},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def sign(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header, computed as Stripe's documentation describes."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed_payload = f"{timestamp}.".encode() + body
    signature = hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def signed_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> SignedEvent:
    payload = event_payload(event_type, data_object, event_id=event_id)
    body = json.dumps(payload, indent=2).encode()
    return SignedEvent(
        body=body,
        headers={
            "Stripe-Signature": sign(body, secret=secret, timestamp=timestamp),
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        id=payload["id"],
    )
