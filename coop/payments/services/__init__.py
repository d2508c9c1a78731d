"""The rules of deposits, one module per subject: what an action asks (policy), reading them
(queries), their history and status moves (lifecycle), asking the deposit
(deposits), paying through Stripe Checkout (checkout), Stripe's webhooks
(webhooks), refunds (refunds, transfers), what staff do (staff), a measure
withdrawn (withdrawal), a cancelled action (cancellation), and the overview and
reconciliation export (reports).

A Stripe event is a trigger, never the truth: processing it re-reads the object from Stripe and
moves the payment forward only (see models.TRANSITIONS), so events that come twice or in
another order end in the same state. "Paid" comes only from Stripe (a verified webhook, then the
re-read object) or, in offline mode, from staff who saw the transfer arrive.

Everything is importable from here (from coop.payments import services)."""

from __future__ import annotations

from coop.payments.services.cancellation import (
    RunProgress,
    action_cancelled,
    give_up_run,
    refund_all_again,
    run_progress,
    run_refunds,
    runs_of,
)
from coop.payments.services.checkout import checkout_locale, start_checkout
from coop.payments.services.deposits import request_deposit
from coop.payments.services.policy import (
    IDEMPOTENCY_WINDOW,
    MAX_DEPOSIT_PERCENT,
    DepositPolicy,
    PaymentError,
    current_mode,
    deposit_amount,
    format_iban,
    normalise_iban,
    policy_of,
    set_deposit_policy,
)
from coop.payments.services.queries import (
    changes_of,
    deposit_of_quote,
    deposit_page,
    deposits_of,
    due_deposit,
    events_of,
    get_payment,
    measure_of,
    parse_reference,
    reference_for,
    work_installed,
)
from coop.payments.services.refunds import (
    expire_checkout,
    give_up_refund,
    refund_one,
    request_refund,
)
from coop.payments.services.reports import (
    Figure,
    Overview,
    PaymentRow,
    export_table,
    overview,
    payments_of_action,
    record_export,
    row_of,
)
from coop.payments.services.staff import (
    arrival_moment,
    can_mark_refunded,
    mark_received,
    mark_refunded,
    refund_by_staff,
)
from coop.payments.services.transfers import forget_registrations, refunds_to_transfer
from coop.payments.services.webhooks import (
    CHARGE_EVENTS,
    HANDLED_EVENTS,
    INTENT_EVENTS,
    REFUND_EVENTS,
    SESSION_EVENTS,
    process_event,
    receive_webhook,
)
from coop.payments.services.withdrawal import (
    WithdrawalEffect,
    accepted_at,
    cooling_off_until,
    deposit_cooling_off_until,
    measure_withdrawn,
    withdrawal_effect,
)
from coop.payments.stripe_gateway import GatewayError, WebhookRejectedError

__all__ = [
    "CHARGE_EVENTS",
    "HANDLED_EVENTS",
    "IDEMPOTENCY_WINDOW",
    "INTENT_EVENTS",
    "MAX_DEPOSIT_PERCENT",
    "REFUND_EVENTS",
    "SESSION_EVENTS",
    "DepositPolicy",
    "Figure",
    "GatewayError",
    "Overview",
    "PaymentError",
    "PaymentRow",
    "RunProgress",
    "WebhookRejectedError",
    "WithdrawalEffect",
    "accepted_at",
    "action_cancelled",
    "arrival_moment",
    "can_mark_refunded",
    "changes_of",
    "checkout_locale",
    "cooling_off_until",
    "current_mode",
    "deposit_amount",
    "deposit_cooling_off_until",
    "deposit_of_quote",
    "deposit_page",
    "deposits_of",
    "due_deposit",
    "events_of",
    "expire_checkout",
    "export_table",
    "forget_registrations",
    "format_iban",
    "get_payment",
    "give_up_refund",
    "give_up_run",
    "mark_received",
    "mark_refunded",
    "measure_of",
    "measure_withdrawn",
    "normalise_iban",
    "overview",
    "parse_reference",
    "payments_of_action",
    "policy_of",
    "process_event",
    "receive_webhook",
    "record_export",
    "reference_for",
    "refund_all_again",
    "refund_by_staff",
    "refund_one",
    "refunds_to_transfer",
    "request_deposit",
    "request_refund",
    "row_of",
    "run_progress",
    "run_refunds",
    "runs_of",
    "set_deposit_policy",
    "start_checkout",
    "withdrawal_effect",
    "work_installed",
]
