"""The desk's pages for deposits: what an action asks, the overview per action (asked, paid,
refunded, failed, flagged), the reconciliation export, one payment with its history, and the
staff's actions on it (received by bank transfer, refund, refunded by hand).

Every page is for staff of the action's own organisation; anyone else gets a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import staff_required
from coop.actions import services as actions
from coop.actions.models import Action
from coop.core import exports
from coop.core.authz import require
from coop.payments import search, services
from coop.payments.forms import ButtonForm, DepositPolicyForm, ReceivedForm
from coop.payments.models import FlagReason, Payment, PaymentMode, PaymentStatus, RefundReason
from coop.payments.services import PaymentError

bp = Blueprint("payments_desk", __name__, url_prefix="/desk")

_MESSAGES: dict[str, Any] = {
    "action_cancelled": _l("This action is cancelled: it cannot be changed any more."),
    "amount_required": _l("Enter the amount of the deposit."),
    "amount_too_large": _l("Enter an amount of at most € 1.000.000."),
    "percent_required": _l("Enter the percentage."),
    "percent_range": _l("Enter a percentage from 1 to 50."),
    "kind_unknown": _l("Choose whether a deposit is asked."),
    "iban_invalid": _l("Enter a valid IBAN, like NL91 ABNA 0417 1643 00 (check the digits)."),
    "iban_required": _l(
        "Without Stripe residents pay by bank transfer: enter the IBAN they transfer to."
    ),
    "account_name_required": _l("Enter the name that goes with the IBAN."),
    "stripe_mode": _l("This deposit is paid through Stripe: Stripe says when it arrives."),
    "already_received": _l("This deposit is already received or no longer open."),
    "received_in_future": _l("The money cannot have arrived after today."),
    "received_before_asked": _l("Enter a date on or after the day the deposit was asked."),
    "not_refundable": _l("Only a deposit that was paid can be refunded."),
    "not_refunding": _l("This deposit is not waiting for a refund by hand."),
    "action_not_cancelled": _l("Only the deposits of a cancelled action are refunded all at once."),
    "nothing_to_refund": _l("No deposit of this action is waiting to be refunded."),
}
_FIELDS = {
    "amount_required": "amount",
    "amount_too_large": "amount",
    "percent_required": "percent",
    "percent_range": "percent",
    "kind_unknown": "kind",
    "iban_invalid": "iban",
    "iban_required": "iban",
    "account_name_required": "account_name",
}
FLAG_LABELS: dict[str, Any] = {
    FlagReason.AMOUNT_MISMATCH.value: _l("another amount arrived than was asked"),
    FlagReason.CURRENCY_MISMATCH.value: _l("the money arrived in another currency than euros"),
    FlagReason.REFUND_FAILED.value: _l("the refund failed"),
}
REFUND_REASONS: dict[str, Any] = {
    RefundReason.WITHDRAWN.value: _l("withdrawn within the cooling-off period"),
    RefundReason.ACTION_CANCELLED.value: _l("the action was cancelled"),
    RefundReason.STAFF.value: _l("refunded by staff"),
    RefundReason.NOT_DUE.value: _l("paid when it was no longer due"),
}


def message_for(error: PaymentError) -> str:
    return str(_MESSAGES.get(error.code, _l("This change is not possible.")))


def _action(action_id: int) -> Action:
    action = actions.action_for_desk(action_id)
    require(current_user, action, "manage")
    assert action is not None
    return action


def _payment(payment_id: int) -> Payment:
    payment = services.get_payment(payment_id)
    require(current_user, payment, "manage")
    assert payment is not None
    return payment


@bp.app_template_global()
def flag_label(reason: Any) -> str:
    value = getattr(reason, "value", reason)
    return str(FLAG_LABELS.get(value, value or ""))


@bp.app_template_global()
def refund_reason_label(reason: Any) -> str:
    value = getattr(reason, "value", reason)
    return str(REFUND_REASONS.get(value, value or ""))


# --- per action -------------------------------------------------------------------------------

_FILTERS = {s.value: s for s in PaymentStatus}


def _overview_page(action: Action, problem: str | None = None) -> str:
    status = _FILTERS.get(request.args.get("status", ""))
    # A reference as on the bank statement, or part of a name or address (GET: bookmarkable).
    query = " ".join(request.args.get("q", "").replace("\x00", "").split())[:100]
    found = search.search_deposits(action, query) if query else None
    return render_template(
        "payments/desk/overview.html",
        action=action,
        figures=services.overview(action),
        rows=found.rows if found else services.payments_of_action(action, status),
        query=query,
        found=found,
        status_filter=None if found else status,
        statuses=list(PaymentStatus),
        policy=services.policy_of(action),
        iban=services.format_iban(action.deposit_iban),
        mode=services.current_mode(),
        runs=[services.run_progress(run) for run in services.runs_of(action)],
        to_transfer=services.refunds_to_transfer(action.organisation_id, action.id),
        button=ButtonForm(),
        problem=problem,
    )


@bp.get("/actions/<int:action_id>/payments")
@staff_required
def overview(action_id: int) -> str:
    return _overview_page(_action(action_id))


@bp.route("/actions/<int:action_id>/payments/settings", methods=["GET", "POST"])
@staff_required
def settings(action_id: int) -> str | Response:
    action = _action(action_id)
    form = DepositPolicyForm()
    problem = None
    if request.method == "GET":
        form.fill_from(action)
    elif form.validate_on_submit():
        try:
            services.set_deposit_policy(current_user, action, form.policy())
        except PaymentError as error:
            field = getattr(form, _FIELDS.get(error.code, ""), None)
            if field is not None:
                field.errors = [*field.errors, message_for(error)]
            else:
                problem = message_for(error)
        else:
            flash(
                gettext("The deposit is saved. It applies to quotes accepted from now on."),
                "success",
            )
            return redirect(url_for("payments_desk.overview", action_id=action.id))
    return render_template(
        "payments/desk/settings.html",
        action=action,
        form=form,
        problem=problem,
        offline=services.current_mode() is PaymentMode.OFFLINE,
    )


@bp.get("/actions/<int:action_id>/payments/export.<fmt>")
@staff_required
def export(action_id: int, fmt: str) -> Response:
    action = _action(action_id)
    if fmt not in exports.FORMATS:
        abort(404)
    services.record_export(current_user, action)
    return exports.response(services.export_table(action), fmt, stem=f"deposits-{action.slug}"[:60])


@bp.post("/actions/<int:action_id>/payments/refund-all")
@staff_required
def refund_all(action_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.refund_all_again(current_user, action)
    except PaymentError as error:
        return _overview_page(action, problem=message_for(error)), 409
    flash(gettext("The deposits are being refunded."), "success")
    return redirect(url_for("payments_desk.overview", action_id=action.id))


# --- one payment ------------------------------------------------------------------------------


def _detail_page(
    payment: Payment,
    *,
    received_form: ReceivedForm | None = None,
    problem: str | None = None,
) -> str:
    return render_template(
        "payments/desk/detail.html",
        payment=payment,
        row=services.row_of(payment),
        measure=services.measure_of(payment),
        changes=services.changes_of(payment),
        events=services.events_of(payment),
        received_form=received_form or _received_form(),
        button=ButtonForm(),
        can_mark_refunded=services.can_mark_refunded(payment),
        problem=problem,
    )


def _received_form() -> ReceivedForm:
    form = ReceivedForm(formdata=None)
    form.fill_today()
    return form


@bp.get("/payments/<int:payment_id>")
@staff_required
def detail(payment_id: int) -> str:
    return _detail_page(_payment(payment_id))


@bp.post("/payments/<int:payment_id>/received")
@staff_required
def received(payment_id: int) -> str | Response | tuple[str, int]:
    payment = _payment(payment_id)
    form = ReceivedForm()
    if not form.validate_on_submit():
        return _detail_page(payment, received_form=form)
    try:
        outcome = services.mark_received(
            current_user, payment, form.amount.cents or 0, received_on=form.received_on.value
        )
    except PaymentError as error:
        if error.code in ("received_in_future", "received_before_asked"):
            form.received_on.errors = [message_for(error)]
            return _detail_page(payment, received_form=form)
        return _detail_page(payment, received_form=form, problem=message_for(error)), 409
    if outcome.startswith("flagged"):
        flash(gettext("Another amount arrived than was asked: the deposit is flagged."), "error")
    else:
        flash(gettext("The deposit is marked as received."), "success")
    return redirect(url_for("payments_desk.detail", payment_id=payment.id))


@bp.post("/payments/<int:payment_id>/refund")
@staff_required
def refund(payment_id: int) -> str | Response | tuple[str, int]:
    payment = _payment(payment_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.refund_by_staff(current_user, payment)
    except PaymentError as error:
        return _detail_page(payment, problem=message_for(error)), 409
    if payment.mode is PaymentMode.OFFLINE:
        flash(
            gettext("Transfer the deposit back, then mark it refunded here."),
            "success",
        )
    else:
        flash(gettext("The refund is asked at Stripe."), "success")
    return redirect(url_for("payments_desk.detail", payment_id=payment.id))


@bp.post("/payments/<int:payment_id>/refunded")
@staff_required
def refunded(payment_id: int) -> str | Response | tuple[str, int]:
    payment = _payment(payment_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.mark_refunded(current_user, payment)
    except PaymentError as error:
        return _detail_page(payment, problem=message_for(error)), 409
    flash(gettext("The deposit is marked as refunded."), "success")
    return redirect(url_for("payments_desk.detail", payment_id=payment.id))
