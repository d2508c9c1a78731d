"""Background jobs of payments: processing a stored Stripe event, creating a refund, refunding
every deposit of a cancelled action, closing a Checkout page no longer needed, and the emails.

Each job takes ids, and is safe to run twice: events and payments are locked and checked first,
refunds carry the idempotency key of their attempt, and emails are sent under a key of their own.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from coop.accounts.mail import email_user
from coop.accounts.models import LoginPurpose, User
from coop.accounts.services import issue_login_token, login_link
from coop.actions.models import Action
from coop.core.jobs import job
from coop.extensions import db
from coop.payments import services
from coop.payments.models import Payment, PaymentMode, RefundRun


@job("payments.process_stripe_event")
def process_stripe_event(event_row_id: int) -> None:
    services.process_event(event_row_id)


def _give_up_refund(payment_id: int, attempt: int, error: str) -> None:
    services.give_up_refund(payment_id, attempt, error)


@job("payments.create_refund", on_give_up=_give_up_refund)
def create_refund(payment_id: int, attempt: int) -> None:
    services.refund_one(payment_id, attempt)


def _give_up_run(run_id: int, error: str) -> None:
    services.give_up_run(run_id, error)


@job("payments.refund_action", on_give_up=_give_up_run)
def refund_action(run_id: int) -> None:
    services.run_refunds(run_id)


@job("payments.expire_checkout")
def expire_checkout(payment_id: int, session_id: str) -> None:
    services.expire_checkout(payment_id, session_id)


# --- emails -----------------------------------------------------------------------------------


def _email_resident(payment: Payment, key: str, template: str, **context: Any) -> None:
    registration = payment.registration
    if registration is None:  # erased meanwhile: nobody to write to
        return
    user = registration.user
    path = f"/my/payments/{payment.id}"
    token = issue_login_token(user, LoginPurpose.LOGIN, next_path=path)
    email_user(
        user,
        template,
        key=key,
        action_id=payment.action_id,
        payment=payment,
        action=payment.action,
        household=registration.household,
        measure=services.measure_of(payment),
        offline=payment.mode is PaymentMode.OFFLINE,
        iban=services.format_iban(payment.action.deposit_iban),
        account_name=payment.action.deposit_account_name or "",
        link=login_link(token),
        **context,
    )


@job("payments.send_deposit_requested")
def send_deposit_requested(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    _email_resident(payment, f"deposit-requested:{payment.id}", "deposit_requested")


@job("payments.send_deposit_paid")
def send_deposit_paid(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.paid_at is None:
        return
    until = services.deposit_cooling_off_until(payment)
    _email_resident(
        payment,
        f"deposit-paid:{payment.id}",
        "deposit_paid",
        # Counted from the acceptance of the quote: paid late, the period may be over already.
        cooling_off_until=until if until is not None and payment.paid_at <= until else None,
    )


@job("payments.send_deposit_refunded")
def send_deposit_refunded(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    _email_resident(payment, f"deposit-refunded:{payment.id}", "deposit_refunded")


@job("payments.send_deposit_flagged")
def send_deposit_flagged(payment_id: int, user_id: int) -> None:
    payment = db.session.get(Payment, payment_id)
    user = db.session.get(User, user_id)
    if payment is None or user is None or not user.is_active or payment.flag_reason is None:
        return
    email_user(
        user,
        "deposit_flagged",
        key=f"deposit-flagged:{payment.id}:{payment.flag_reason.value}:"
        f"{payment.refund_attempts}:{user.id}",
        payment=payment,
        action=payment.action,
        footer="work",
        link=f"{current_app.config['BASE_URL']}/desk/payments/{payment.id}",
    )


def _email_staff(user_id: int, key: str, template: str, **context: Any) -> None:
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return
    email_user(user, template, key=key, footer="work", **context)


@job("payments.send_refund_to_transfer")
def send_refund_to_transfer(payment_id: int, attempt: int, user_id: int) -> None:
    """Offline mode: a refund staff must transfer by hand (one email per refund per staff)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.refund_attempts != attempt:
        return
    row = services.row_of(payment)
    _email_staff(
        user_id,
        f"refund-to-transfer:{payment.id}:{attempt}:{user_id}",
        "refund_to_transfer",
        payment=payment,
        row=row,
        action=payment.action,
        link=f"{current_app.config['BASE_URL']}/desk/payments/{payment.id}",
    )


@job("payments.send_run_to_transfer")
def send_run_to_transfer(run_id: int, user_id: int) -> None:
    """Offline mode: the refunds of a cancelled action staff must transfer by hand."""
    run = db.session.get(RefundRun, run_id)
    action = db.session.get(Action, run.action_id) if run is not None else None
    if run is None or action is None:
        return
    count = len(services.refunds_to_transfer(action.organisation_id, action.id))
    _email_staff(
        user_id,
        f"refund-run-to-transfer:{run.id}:{user_id}",
        "refund_run_to_transfer",
        run=run,
        count=count,
        action=action,
        link=f"{current_app.config['BASE_URL']}/desk/actions/{run.action_id}/payments",
    )
