"""The desk's page of VAT rates: every rate with its source and the days it applies; desk admins
add a rate and end one (``coop.orders.vat_rates`` holds the rules).

Each desk keeps its own rates. Its staff read them, its admins change them; anyone else gets a
404 (or the login page), as on the other desk pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import staff_required
from coop.core import errors
from coop.core.authz import authorize, require
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.orders import vat_rates
from coop.orders.forms import EndVatRateForm, VatRateForm, WithdrawVatRateForm
from coop.orders.models import VatRate
from coop.orders.services import OrderError
from coop.orders.vat_rates import VAT_RATE_TABLE

bp = Blueprint("vat_desk", __name__, url_prefix="/desk/vat-rates")

MESSAGES: dict[str, Any] = {
    "percent_range": _l("Enter a whole number from 0 to 100, like 21."),
    "name_nl_required": _l("Enter the name in Dutch."),
    "name_nl_too_long": _l("Use at most 200 characters."),
    "name_en_required": _l("Enter the name in English."),
    "name_en_too_long": _l("Use at most 200 characters."),
    "source_required": _l("Enter the source of the rate."),
    "source_too_long": _l("Use at most 500 characters."),
    "start_in_past": _l(
        "Choose today or a later day: which rates applied on a day that has passed stays as "
        "it was recorded."
    ),
    "end_before_start": _l("The last day cannot be before the first day."),
    "rate_overlaps": _l(
        "A rate of %(percent)d%% already applies in that period. End that rate first, or let "
        "this one start after its last day."
    ),
    "end_in_past": _l(
        "Choose today or a later day: quotes may have used the rate on the days that have passed."
    ),
    "rate_ended": _l("This rate has ended: its last day has passed and stays as it was."),
    "rate_in_force": _l(
        "This rate already applies, so quotes may have used it: set its last day instead."
    ),
}
ADD_FIELDS = {
    "percent_range": "percent",
    "name_nl_required": "name_nl",
    "name_nl_too_long": "name_nl",
    "name_en_required": "name_en",
    "name_en_too_long": "name_en",
    "source_required": "source",
    "source_too_long": "source",
    "start_in_past": "valid_from",
    "end_before_start": "valid_until",
    "rate_overlaps": "valid_from",
}
END_FIELDS = {
    "end_in_past": "last_day",
    "end_before_start": "last_day",
    "rate_overlaps": "last_day",
}


def _rate(rate_id: int, action: str) -> VatRate:
    rate = vat_rates.get_rate(rate_id)
    require(current_user, rate, action)
    assert rate is not None
    return rate


@bp.get("")
@staff_required
def index() -> str:
    require(current_user, VAT_RATE_TABLE, "view")
    today = local_today(utcnow())
    return render_template(
        "orders/desk/vat_rates.html",
        rates=vat_rates.all_rates(current_user.organisation_id),
        today=today,
        current=set(vat_rates.rates_on(current_user.organisation_id, today)),
        may_change=authorize(current_user, VAT_RATE_TABLE, "add"),
        is_open=vat_rates.is_open,
    )


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def add() -> str | Response | tuple[str, int]:
    require(current_user, VAT_RATE_TABLE, "add")
    form = VatRateForm()
    problem = None
    if form.validate_on_submit():
        try:
            vat_rates.add_rate(current_user, form.details())
        except OrderError as error:
            problem = errors.refuse(form, error, MESSAGES, ADD_FIELDS)
            return render_template("orders/desk/vat_rate_add.html", form=form, problem=problem), 409
        flash(gettext("The VAT rate is added."), "success")
        return redirect(url_for("vat_desk.index"))
    return render_template("orders/desk/vat_rate_add.html", form=form, problem=problem)


@bp.route("/<int:rate_id>/end", methods=["GET", "POST"])
@staff_required
def end(rate_id: int) -> str | Response | tuple[str, int]:
    rate = _rate(rate_id, "end")
    form = EndVatRateForm()
    if not form.is_submitted() and rate.valid_until is not None:
        form.last_day.data = rate.valid_until.isoformat()
    if form.validate_on_submit():
        assert form.last_day.value is not None
        try:
            vat_rates.end_rate(current_user, rate, form.last_day.value)
        except OrderError as error:
            problem = errors.refuse(form, error, MESSAGES, END_FIELDS)
            return _end_page(rate, form, problem), 409
        flash(gettext("The last day of the VAT rate is saved."), "success")
        return redirect(url_for("vat_desk.index"))
    return _end_page(rate, form)


@bp.post("/<int:rate_id>/withdraw")
@staff_required
def withdraw(rate_id: int) -> str | Response | tuple[str, int]:
    """A rate whose first day is still to come is taken back (typed wrongly, or the law changed
    before it took effect)."""
    rate = _rate(rate_id, "end")
    if not WithdrawVatRateForm().validate_on_submit():
        return _end_page(rate, EndVatRateForm()), 400
    try:
        vat_rates.withdraw_rate(current_user, rate)
    except OrderError as error:
        return _end_page(rate, EndVatRateForm(), errors.message_for(error, MESSAGES)), 409
    flash(gettext("The VAT rate is withdrawn."), "success")
    return redirect(url_for("vat_desk.index"))


def _end_page(rate: VatRate, form: EndVatRateForm, problem: str | None = None) -> str:
    today = local_today(utcnow())
    return render_template(
        "orders/desk/vat_rate_end.html",
        rate=rate,
        form=form,
        withdraw_form=WithdrawVatRateForm(formdata=None),
        # Not yet in force: no quote can have used it, so it can be taken back whole.
        may_withdraw=rate.valid_from > today,
        problem=problem,
        # A rate whose last day has passed is history: the page says so and offers no form.
        ended=not vat_rates.is_open(rate, today),
        ended_message=MESSAGES["rate_ended"],
    )
