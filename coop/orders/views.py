"""The resident's side of the work on their home: read the quote and accept or decline it, ask
for another date for the site survey, and confirm the work is done (with a rating if they like).

The registration's own page (``registrations.detail``) shows the installer, the dates and the
quote per measure; these pages are the steps from there. A resident reaches only the lines and
quotes of their own registrations; anything else is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import resident_required
from coop.actions.forms import ButtonForm
from coop.core import errors
from coop.core.authz import require
from coop.core.time import utcnow
from coop.orders import events, fieldwork, reviews
from coop.orders.forms import (
    ConfirmInstallationForm,
    DeclineQuoteForm,
    RateInstallationForm,
    SurveyChangeForm,
)
from coop.orders.models import LineStatus, OrderLine, Quote, SurveyStatus
from coop.orders.services import OrderError

bp = Blueprint("orders", __name__)

# Every rule the services apply to a resident's answer, in the resident's words.
MESSAGES: dict[str, Any] = {
    "not_yours": _l("This is not about your home."),
    "quote_decided": _l("You have already decided on this quote, or a newer quote replaced it."),
    "quote_expired": _l(
        "This quote has expired: it could be accepted until its last valid day. Ask the "
        "installer for a new quote."
    ),
    "message_required": _l("Tell the installer which moments suit you."),
    "message_too_long": _l("Use at most 2000 characters."),
    "no_survey": _l("There is no site survey planned to move."),
    "survey_passed": _l("The site survey has already taken place."),
    "change_already_requested": _l(
        "You have already asked for another date. The installer will plan a new moment."
    ),
    "rating_range": _l("Choose a rating from 1 to 5, or no rating."),
    "confirm_not_possible": _l("There is no finished work to confirm."),
    "rating_required": _l("Choose a rating from 1 to 5."),
    "rate_not_possible": _l("You can rate the work once you have confirmed it is done."),
    "already_rated": _l("You have already rated this work. Thank you."),
}
SURVEY_CHANGE_FIELDS = {"message_required": "message", "message_too_long": "message"}
DECLINE_FIELDS = {"message_too_long": "reason"}
CONFIRM_FIELDS = {"rating_range": "rating", "message_too_long": "comment"}
RATE_FIELDS = {"rating_required": "rating", "message_too_long": "comment"}

LINE_STATUS: dict[str, Any] = {
    "assigned": _l("The installer will contact you to plan a site survey"),
    "survey_planned": _l("Site survey planned"),
    "quoted": _l("Quote received: your decision is needed"),
    "accepted": _l("Quote accepted: the installer plans the work"),
    "installed": _l("Work reported done: please confirm"),
    "completed": _l("Completed"),
    "declined": _l("You declined the quote"),
    "withdrawn": _l("Withdrawn"),
    "cancelled": _l("This installer no longer does the work"),
}
QUOTE_STATUS: dict[str, Any] = {
    "sent": _l("not decided yet"),
    "accepted": _l("accepted"),
    "declined": _l("declined"),
    "expired": _l("expired"),
    "replaced": _l("replaced by a newer quote"),
}


def message_for(error: OrderError) -> str:
    return errors.message_for(error, MESSAGES)


def refuse(form: Any, error: OrderError, fields: dict[str, str]) -> str | None:
    """Put the refusal at its field; return it when it belongs above the form."""
    return errors.refuse(form, error, MESSAGES, fields)


@bp.app_template_global()
def resident_line_status(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(LINE_STATUS.get(value, value))


@bp.app_template_global()
def quote_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(QUOTE_STATUS.get(value, value))


@bp.app_template_global()
def can_rate_line(line: OrderLine) -> bool:
    return reviews.can_rate(line)


@bp.app_template_global()
def can_ask_other_date(line: OrderLine) -> bool:
    survey = line.survey
    return (
        line.status is LineStatus.SURVEY_PLANNED
        and survey is not None
        and survey.status is SurveyStatus.PLANNED
        and survey.starts_at > utcnow()
    )


def _registration_url(line: OrderLine) -> str:
    return (
        url_for("registrations.detail", registration_id=line.registration_id) + f"#line-{line.id}"
    )


def _line(line_id: int) -> OrderLine:
    line = fieldwork.get_line(line_id)
    require(current_user, line, "respond")
    assert line is not None
    return line


def _quote(quote_id: int, action: str) -> Quote:
    quote = fieldwork.get_quote(quote_id)
    require(current_user, quote, action)
    assert quote is not None
    return quote


# --- the quote -----------------------------------------------------------------------------------


@bp.get("/my/quotes/<int:quote_id>")
@resident_required
def quote(quote_id: int) -> str:
    return _quote_page(_quote(quote_id, "view"))


def _quote_page(quote: Quote, problem: str | None = None) -> str:
    line = quote.line
    return render_template(
        "orders/quote.html",
        quote=quote,
        line=line,
        installer=line.order.installer,
        registration=line.registration,
        measure=line.measure,
        totals=fieldwork.quote_totals(quote.items),
        is_open=fieldwork.quote_open(quote, utcnow()),
        expired=quote.status.value == "expired"
        or (quote.status.value == "sent" and not fieldwork.quote_open(quote, utcnow())),
        form=ButtonForm(),
        problem=problem,
    )


def after_accepting(quote: Quote) -> Response:
    """Where the resident goes once the quote is accepted. The one place to hook in what must
    follow an acceptance: the deposit page while a deposit is to be paid."""
    # Payments build on orders: they provide the page (``events.page_after_accepting``).
    page = events.page_after_accepting.call(quote)
    if page is not None:
        return redirect(page)
    return redirect(url_for("orders.quote", quote_id=quote.id))


@bp.post("/my/quotes/<int:quote_id>/accept")
@resident_required
def accept_quote(quote_id: int) -> Any:
    quote = _quote(quote_id, "decide")
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        fieldwork.accept_quote(current_user, quote)
    except OrderError as error:
        return _quote_page(quote, problem=message_for(error)), 409
    flash(
        gettext(
            "You accepted the quote. %(company)s will plan the work with you; we have sent you "
            "a confirmation by email.",
            company=quote.line.order.installer.company_name,
        ),
        "success",
    )
    return after_accepting(quote)


@bp.route("/my/quotes/<int:quote_id>/decline", methods=["GET", "POST"])
@resident_required
def decline_quote(quote_id: int) -> Any:
    quote = _quote(quote_id, "decide")
    form = DeclineQuoteForm()
    problem = None
    status = 200
    if form.validate_on_submit():
        try:
            fieldwork.decline_quote(current_user, quote, form.reason.data or "")
        except OrderError as error:
            problem = refuse(form, error, DECLINE_FIELDS)
            status = 409
        else:
            flash(
                gettext("You declined the quote. The installer hears it from us."),
                "success",
            )
            return redirect(_registration_url(quote.line))
    page = render_template(
        "orders/decline_quote.html",
        quote=quote,
        line=quote.line,
        installer=quote.line.order.installer,
        measure=quote.line.measure,
        is_open=fieldwork.quote_open(quote, utcnow()),
        form=form,
        problem=problem,
    )
    return (page, status) if status != 200 else page


# --- the site survey and the finished work -------------------------------------------------------


@bp.route("/my/lines/<int:line_id>/survey-change", methods=["GET", "POST"])
@resident_required
def survey_change(line_id: int) -> Any:
    line = _line(line_id)
    form = SurveyChangeForm()
    problem = None
    status = 200
    if form.validate_on_submit():
        try:
            fieldwork.request_survey_change(current_user, line, form.message.data or "")
        except OrderError as error:
            problem = refuse(form, error, SURVEY_CHANGE_FIELDS)
            status = 409
        else:
            flash(
                gettext(
                    "Your request is sent to %(company)s. They will plan another moment.",
                    company=line.order.installer.company_name,
                ),
                "success",
            )
            return redirect(_registration_url(line))
    page = render_template(
        "orders/survey_change.html",
        line=line,
        survey=line.survey,
        installer=line.order.installer,
        measure=line.measure,
        possible=can_ask_other_date(line),
        form=form,
        problem=problem,
    )
    return (page, status) if status != 200 else page


@bp.route("/my/lines/<int:line_id>/confirm", methods=["GET", "POST"])
@resident_required
def confirm(line_id: int) -> Any:
    line = _line(line_id)
    form = ConfirmInstallationForm()
    problem = None
    status = 200
    if form.validate_on_submit():
        try:
            fieldwork.confirm_installation(
                current_user, line, form.rating_value(), form.comment.data or ""
            )
        except OrderError as error:
            problem = refuse(form, error, CONFIRM_FIELDS)
            status = 409
        else:
            if form.rating_value() is None:
                flash(
                    gettext(
                        "Thank you. The work is confirmed as done. You can still rate the "
                        "installer later, from this page."
                    ),
                    "success",
                )
            else:
                flash(gettext("Thank you. The work is confirmed as done."), "success")
            return redirect(_registration_url(line))
    page = render_template(
        "orders/confirm.html",
        line=line,
        installer=line.order.installer,
        measure=line.measure,
        possible=line.status is LineStatus.INSTALLED,
        form=form,
        problem=problem,
    )
    return (page, status) if status != 200 else page


@bp.route("/my/lines/<int:line_id>/rate", methods=["GET", "POST"])
@resident_required
def rate(line_id: int) -> Any:
    """Rate work that was confirmed without a rating."""
    line = _line(line_id)
    form = RateInstallationForm()
    problem = None
    status = 200
    if form.validate_on_submit():
        try:
            reviews.rate_installation(
                current_user, line, form.rating_value(), form.comment.data or ""
            )
        except OrderError as error:
            problem = refuse(form, error, RATE_FIELDS)
            status = 409
        else:
            flash(gettext("Thank you for your rating."), "success")
            return redirect(_registration_url(line))
    page = render_template(
        "orders/rate.html",
        line=line,
        installer=line.order.installer,
        measure=line.measure,
        possible=reviews.can_rate(line),
        form=form,
        problem=problem,
    )
    return (page, status) if status != 200 else page
