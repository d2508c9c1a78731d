"""The resident's deposit pages and Stripe's webhook.

The deposit page tells the truth: after Stripe Checkout it says "we are waiting for
confirmation" until a verified webhook has said the money is there; it never takes the return
from Stripe as proof. The webhook is the one route without a CSRF token: Stripe signs it instead.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import resident_required
from coop.core.authz import require
from coop.core.time import utcnow
from coop.extensions import csrf
from coop.orders.models import Quote
from coop.payments import services, stripe_gateway
from coop.payments.forms import ButtonForm
from coop.payments.models import Payment, PaymentMode, PaymentStatus
from coop.payments.services import PaymentError, WebhookRejectedError
from coop.registrations.models import Registration

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)

_MESSAGES: dict[str, Any] = {
    "offline": lambda: gettext("This deposit is paid by bank transfer; see the details below."),
    "not_payable": lambda: gettext("This deposit cannot be paid (any more)."),
    "processing": lambda: gettext(
        "Your payment is being processed. We confirm by email when it has arrived."
    ),
    "gateway": lambda: gettext(
        "We could not reach the payment service. Nothing was charged. Please try again in a "
        "few minutes."
    ),
}


def _own_payment(payment_id: int, action: str) -> Payment:
    payment = services.get_payment(payment_id)
    require(current_user, payment, action)
    assert payment is not None
    return payment


@bp.get("/my/payments/<int:payment_id>")
@resident_required
def deposit(payment_id: int) -> str:
    payment = _own_payment(payment_id, "view")
    returned = request.args.get("from")
    return render_template(
        "payments/deposit.html",
        payment=payment,
        measure=services.measure_of(payment),
        returned=returned if returned in ("checkout", "cancelled") else None,
        form=ButtonForm(),
        iban=services.format_iban(payment.action.deposit_iban),
        cooling_off_until=_still_cooling_off(payment),
    )


def _still_cooling_off(payment: Payment) -> datetime | None:
    """Until when withdrawing the measure gives this deposit back, while that is still ahead."""
    until = services.deposit_cooling_off_until(payment)
    return until if until is not None and utcnow() <= until else None


@bp.post("/my/payments/<int:payment_id>/pay")
@resident_required
def pay(payment_id: int) -> Response | tuple[str, int]:
    payment = _own_payment(payment_id, "pay")
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        url = services.start_checkout(current_user, payment)
    except PaymentError as error:
        message = _MESSAGES.get(error.code, _MESSAGES["not_payable"])()
        flash(message, "error" if error.code == "gateway" else "info")
        return redirect(url_for("payments.deposit", payment_id=payment.id))
    # 303: the browser goes to Stripe's page with a GET, whatever it posted here.
    return redirect(url, code=303)


@bp.post("/payments/stripe/webhook")
@csrf.exempt
def stripe_webhook() -> tuple[Response, int]:
    """Stripe's events: verified (signature and timestamp), stored once, processed by a job."""
    if not stripe_gateway.configured() or not current_app.config.get("STRIPE_WEBHOOK_SECRET"):
        abort(404)
    try:
        outcome = services.receive_webhook(
            request.get_data(), request.headers.get("Stripe-Signature")
        )
    except WebhookRejectedError as exc:  # refused before anything was written
        log.warning("stripe webhook refused from %s: %s", request.remote_addr, str(exc)[:200])
        return jsonify({"error": "refused"}), 400
    return jsonify({"received": True, "outcome": outcome}), 200


# --- on other domains' pages ------------------------------------------------------------------


@bp.app_template_global()
def deposits_for(registration: Registration) -> list[Payment]:
    """The deposits of a registration, for the resident's own page."""
    return services.deposits_of(registration)


@bp.app_template_global()
def deposit_for_quote(quote: Quote) -> Payment | None:
    """The deposit of a quote, for the resident's quote page (``payments/_quote_deposit.html``)."""
    return services.deposit_of_quote(quote)


@bp.app_template_global()
def deposit_asked_for(quote: Quote) -> int | None:
    """What accepting this quote would ask as a deposit (said before the resident accepts)."""
    return services.deposit_amount(quote.line.order.action, quote.total_cents)


@bp.app_template_global()
def cooling_off_days() -> int:
    return int(current_app.config.get("COOLING_OFF_DAYS", 14))


@bp.app_template_global()
def deposit_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    labels = {
        PaymentStatus.PENDING.value: gettext("to be paid"),
        PaymentStatus.FAILED.value: gettext("payment failed"),
        PaymentStatus.PAID.value: gettext("paid"),
        PaymentStatus.FLAGGED.value: gettext("needs checking"),
        PaymentStatus.REFUNDING.value: gettext("being refunded"),
        PaymentStatus.REFUNDED.value: gettext("refunded"),
        PaymentStatus.CANCELLED.value: gettext("no longer due"),
    }
    return str(labels.get(value, value))


@bp.app_template_global()
def payment_mode_label(mode: Any) -> str:
    value = getattr(mode, "value", mode)
    if value == PaymentMode.STRIPE.value:
        return str(gettext("iDEAL or card (Stripe)"))
    return str(gettext("bank transfer"))
