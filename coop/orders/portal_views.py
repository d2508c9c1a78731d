"""The installer's portal: the start page with what needs doing, the company's orders with their
households, the answer to an order, and per household the survey, the quote, the installation
day and the report that the work is done; the route planning export and the calendar feed.

Made for a phone in a van: one column, big buttons, ``tel:`` and ``mailto:`` links. Installer
users see only their own company's orders; anything else is a 404, whatever id is tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import installer_required
from coop.actions.forms import ButtonForm
from coop.core import errors, exports
from coop.core.authz import authorize, require
from coop.core.calendar import calendar_bytes
from coop.core.formatting import format_euros, local_datetime, money
from coop.core.time import AMSTERDAM, utcnow
from coop.core.web import localized
from coop.core.workdays import local_today
from coop.installers import services as installers
from coop.installers.models import Installer
from coop.orders import fieldwork, planning, services, vat_rates
from coop.orders.desk_views import line_status_label
from coop.orders.fieldwork import QuoteItemInput, QuoteTotals
from coop.orders.forms import (
    QUOTE_ROWS,
    DeclineOrderForm,
    InstallationDayForm,
    InstalledForm,
    QuoteForm,
    SurveyForm,
    quote_form,
)
from coop.orders.models import Order, OrderLine, OrderStatus, VatRate
from coop.orders.services import OrderError

bp = Blueprint("portal", __name__, url_prefix="/installer")

# Every rule the services apply to an installer's step, in the installer's words.
MESSAGES: dict[str, Any] = {
    "not_yours": _l("This is not one of your company's orders."),
    "already_answered": _l("This order has already been answered."),
    "answer_too_late": _l(
        "The time to answer this order has passed: it goes to another installer."
    ),
    "reason_required": _l("Say why you decline the order."),
    "reason_too_long": _l("Use at most 2000 characters."),
    "order_not_accepted": _l("Accept the order first; then you can plan the work."),
    "survey_not_possible": _l(
        "A site survey can only be planned before the quote is sent, and not for a household "
        "that has left the order."
    ),
    "survey_in_past": _l("Choose a moment in the future."),
    "survey_too_far": _l("Choose a moment within a year."),
    "duration_out_of_range": _l("Choose how long the visit takes."),
    "quote_not_possible": _l(
        "A quote can no longer be sent for this household: it has decided on an earlier "
        "quote or left the order."
    ),
    "no_items": _l("Enter at least one row of the quote."),
    "too_many_items": _l("A quote has at most 30 rows."),
    "item_description": _l("Every row needs a description of at most 200 characters."),
    "item_quantity": _l("Every row needs a quantity from 1 to 100000."),
    "amount_negative": _l("An amount cannot be negative."),
    "amount_too_large": _l("The quote comes to more than € 1.000.000. Check the amounts."),
    "vat_rate": _l(
        "Choose one of the VAT rates in the list: a rate that does not apply today cannot be used."
    ),
    "total_zero": _l("The quote comes to € 0. Enter the prices."),
    "validity_in_past": _l("Choose a day after today."),
    "validity_too_long": _l("A quote can be valid for at most 180 days."),
    "installation_not_possible": _l(
        "This is only possible once the resident has accepted the quote, and until the work "
        "is reported done."
    ),
    "date_in_past": _l("Choose today or a later day."),
    "date_too_far": _l("Choose a day within a year."),
    "date_in_future": _l(
        "The work cannot be finished on a day still to come. Choose today or earlier."
    ),
    "installed_before_accepted": _l(
        "The work cannot be finished before the resident accepted the quote. Check the date."
    ),
}
# Where on the form a refusal belongs; others show above the form.
SURVEY_FIELDS = {
    "survey_in_past": "day",
    "survey_too_far": "day",
    "duration_out_of_range": "duration",
}
QUOTE_FIELDS = {
    "validity_in_past": "valid_until",
    "validity_too_long": "valid_until",
    "no_items": "description_0",
}
DAY_FIELDS = {
    "date_in_past": "day",
    "date_too_far": "day",
    "date_in_future": "day",
    "installed_before_accepted": "day",
}
DECLINE_FIELDS = {"reason_required": "reason", "reason_too_long": "reason"}

NEXT_STEPS: dict[str, Any] = {
    "plan_survey": _l("Plan the site survey"),
    "other_date_asked": _l("The resident asks for another date"),
    "send_quote": _l("Send the quote"),
    "plan_installation": _l("Plan the installation day"),
    "mark_installed": _l("Report the work done"),
}


def message_for(error: OrderError) -> str:
    return errors.message_for(error, MESSAGES)


def refuse(form: Any, error: OrderError, fields: dict[str, str]) -> str | None:
    """Put the refusal at its field; return it when it belongs above the form."""
    return errors.refuse(form, error, MESSAGES, fields)


@bp.app_template_global()
def next_step_label(step: str | None) -> str:
    return str(NEXT_STEPS[step]) if step in NEXT_STEPS else ""


def _installer() -> Installer:
    installer: Installer | None = current_user.installer
    require(current_user, installer, "view")
    assert installer is not None
    return installer


def _order(order_id: int, action: str = "view") -> Order:
    order = services.get_order(order_id)
    require(current_user, order, action)
    assert order is not None
    return order


def _line(line_id: int) -> OrderLine:
    line = fieldwork.get_line(line_id)
    require(current_user, line, "work")
    assert line is not None
    return line


def _line_url(line: OrderLine) -> str:
    return url_for("portal.order", order_id=line.order_id) + f"#line-{line.id}"


# --- start page and orders -----------------------------------------------------------------------


@bp.get("")
@installer_required
def home() -> str:
    installer = _installer()
    return render_template(
        "orders/portal/home.html", installer=installer, work=planning.work_of(installer)
    )


@bp.get("/orders")
@installer_required
def orders() -> str:
    installer = _installer()
    return render_template(
        "orders/portal/orders.html",
        installer=installer,
        summaries=services.orders_of_installer(installer),
    )


@bp.get("/orders.csv")
@installer_required
def orders_csv() -> Response:
    installer = _installer()
    table = planning.route_planning_table(current_user, installer, line_status_label)
    return exports.response(table, "csv", stem="route-planning")


@bp.get("/orders/<int:order_id>")
@installer_required
def order(order_id: int) -> str:
    return _order_page(_order(order_id))


def _order_page(
    order: Order,
    decline_form: DeclineOrderForm | None = None,
    problem: str | None = None,
) -> str:
    households = authorize(current_user, order, "households")
    now = utcnow()
    lines = fieldwork.lines_of_order(order) if households else []
    return render_template(
        "orders/portal/order.html",
        order=order,
        lines=lines,
        households=households,
        steps={line.id: planning.next_step(line, now) for line in lines},
        contact={line.id: authorize(current_user, line, "contact") for line in lines},
        can_answer=order.status is OrderStatus.SENT and now <= order.respond_by,
        accept_form=ButtonForm(),
        decline_form=decline_form or DeclineOrderForm(formdata=None),
        problem=problem,
        now=now,
    )


@bp.post("/orders/<int:order_id>/accept")
@installer_required
def accept_order(order_id: int) -> Any:
    order = _order(order_id, "answer")
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.accept_order(current_user, order)
    except OrderError as error:
        return _order_page(order, problem=message_for(error)), 409
    flash(gettext("You accepted the order. Plan the site surveys with the residents."), "success")
    return redirect(url_for("portal.order", order_id=order.id))


@bp.post("/orders/<int:order_id>/decline")
@installer_required
def decline_order(order_id: int) -> Any:
    order = _order(order_id, "answer")
    form = DeclineOrderForm()
    if not form.validate_on_submit():
        return _order_page(order, decline_form=form)
    try:
        services.decline_order(current_user, order, form.reason.data or "")
    except OrderError as error:
        problem = refuse(form, error, DECLINE_FIELDS)
        return _order_page(order, decline_form=form, problem=problem), 409
    flash(
        gettext("You declined the order. The energy desk finds another installer for the homes."),
        "success",
    )
    return redirect(url_for("portal.order", order_id=order.id))


# --- one household's work ------------------------------------------------------------------------


@bp.route("/lines/<int:line_id>/survey", methods=["GET", "POST"])
@installer_required
def plan_survey(line_id: int) -> Any:
    line = _line(line_id)
    survey = line.survey
    form = SurveyForm()
    if not form.is_submitted() and survey is not None:
        starts = survey.starts_at.astimezone(AMSTERDAM)
        form.day.data = starts.date().isoformat()
        form.at.data = starts.strftime("%H:%M")
        form.duration.data = survey.duration_minutes
    problem = None
    if form.validate_on_submit():
        try:
            planned = fieldwork.plan_survey(
                current_user, line, form.starts_at(), int(form.duration.data)
            )
        except OrderError as error:
            problem = refuse(form, error, SURVEY_FIELDS)
            return _render_line("orders/portal/survey.html", line, form, problem), 409
        flash(
            gettext(
                "Site survey planned for %(when)s. The resident gets an email with a calendar file.",
                when=local_datetime(planned.starts_at, "long"),
            ),
            "success",
        )
        return redirect(_line_url(line))
    return _render_line("orders/portal/survey.html", line, form, problem)


def _render_line(
    template: str, line: OrderLine, form: Any, problem: str | None, **extra: Any
) -> str:
    return render_template(
        template,
        line=line,
        order=line.order,
        household=line.household_registration.household,
        resident=line.household_registration.user,
        measure=line.measure,
        contact=authorize(current_user, line, "contact"),
        form=form,
        problem=problem,
        **extra,
    )


def _quote_rows() -> int:
    """As many rows as the posted form had, plus one to add more; a new form has a few."""
    if request.method != "POST":
        return QUOTE_ROWS
    indexes = [
        int(name.removeprefix("description_"))
        for name in request.form
        if name.startswith("description_") and name.removeprefix("description_").isdigit()
    ]
    posted = max(indexes) + 1 if indexes else QUOTE_ROWS
    return posted + 1 if "add_row" in request.form else posted


@bp.route("/lines/<int:line_id>/quote", methods=["GET", "POST"])
@installer_required
def send_quote(line_id: int) -> Any:
    """Without JavaScript: "add a row" and "show the totals" come back to this page; only
    "send" sends the quote."""
    line = _line(line_id)
    # The rates the action's desk has for today; sending checks them again for the day it is
    # sent.
    rates = vat_rates.rates_on(line.order.action.organisation_id, local_today(utcnow()))
    form: QuoteForm = quote_form(_quote_rows(), rates)
    totals: QuoteTotals | None = None
    problem = None
    if not form.is_submitted():
        totals = fieldwork.quote_totals(_prefill_quote(form, line, rates))
    elif "add_row" not in request.form and form.validate_on_submit():
        items = form.items()
        totals = fieldwork.quote_totals(items)
        if "send" in request.form:
            assert form.valid_until.value is not None
            try:
                quote = fieldwork.send_quote(
                    current_user, line, items, form.valid_until.value, form.note.data or ""
                )
            except OrderError as error:
                problem = refuse(form, error, QUOTE_FIELDS)
                page = _render_line("orders/portal/quote.html", line, form, problem, totals=totals)
                return page, 409
            flash(
                gettext(
                    "Quote sent: %(total)s including VAT. The resident gets an email.",
                    total=money(quote.total_cents),
                ),
                "success",
            )
            return redirect(_line_url(line))
    return _render_line("orders/portal/quote.html", line, form, problem, totals=totals)


def _prefill_quote(
    form: QuoteForm, line: OrderLine, rates: Sequence[VatRate]
) -> list[QuoteItemInput]:
    """The first row from the order: the measure, the household's quantity, the agreed price,
    and the highest rate that applies today (the standard rate)."""
    measure = line.measure
    item = QuoteItemInput(
        description=localized(measure, "name"),
        quantity=line.quantity,
        unit_price_cents=line.order.unit_price_cents,
        vat_rate=rates[0].percent if rates else 0,
    )
    description, quantity, price, vat = form.row(0)
    description.data = item.description
    quantity.data = str(item.quantity)
    price.data = format_euros(item.unit_price_cents)
    vat.data = str(item.vat_rate)
    form.valid_until.data = (local_today(utcnow()) + timedelta(days=30)).isoformat()
    return [item]


@bp.route("/lines/<int:line_id>/installation", methods=["GET", "POST"])
@installer_required
def plan_installation(line_id: int) -> Any:
    line = _line(line_id)
    form = InstallationDayForm()
    if not form.is_submitted() and line.installation_planned_on is not None:
        form.day.data = line.installation_planned_on.isoformat()
    problem = None
    if form.validate_on_submit():
        assert form.day.value is not None
        try:
            fieldwork.plan_installation(current_user, line, form.day.value)
        except OrderError as error:
            problem = refuse(form, error, DAY_FIELDS)
            return _render_line("orders/portal/installation.html", line, form, problem), 409
        flash(gettext("Installation day planned. The resident gets an email."), "success")
        return redirect(_line_url(line))
    return _render_line("orders/portal/installation.html", line, form, problem)


@bp.route("/lines/<int:line_id>/installed", methods=["GET", "POST"])
@installer_required
def mark_installed(line_id: int) -> Any:
    line = _line(line_id)
    form = InstalledForm()
    if not form.is_submitted():
        form.day.data = local_today(utcnow()).isoformat()
    problem = None
    if form.validate_on_submit():
        assert form.day.value is not None
        try:
            fieldwork.mark_installed(current_user, line, form.day.value)
        except OrderError as error:
            problem = refuse(form, error, DAY_FIELDS)
            return _render_line("orders/portal/installed.html", line, form, problem), 409
        flash(
            gettext("Reported done. The resident is asked to confirm it."),
            "success",
        )
        return redirect(_line_url(line))
    return _render_line("orders/portal/installed.html", line, form, problem)


# --- the calendar feed -----------------------------------------------------------------------------


@bp.get("/calendar/<key>.ics")
def calendar_feed(key: str) -> Response:
    """For calendar apps, which cannot log in: the secret in the address is the permission."""
    installer = installers.installer_by_calendar_key(key)
    if installer is None:
        abort(404)
    body = calendar_bytes(
        planning.calendar_events(installer),
        name=gettext("%(company)s: visits", company=installer.company_name),
    )
    return Response(
        body,
        content_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": 'inline; filename="coop.ics"',
            # Names and addresses: no proxy or browser cache keeps a copy.
            "Cache-Control": "no-store",
        },
    )


@bp.get("/calendar")
@installer_required
def calendar() -> str:
    installer = _installer()
    feed = (
        # The address people paste into a calendar app: the site's public one, as in emails.
        current_app.config["BASE_URL"] + url_for("portal.calendar_feed", key=installer.calendar_key)
        if installer.calendar_key
        else None
    )
    return render_template(
        "orders/portal/calendar.html", installer=installer, feed=feed, form=ButtonForm()
    )


@bp.post("/calendar")
@installer_required
def renew_calendar() -> Response:
    installer = _installer()
    if not ButtonForm().validate_on_submit():
        abort(400)
    had_one = installer.calendar_key is not None
    installers.renew_calendar_key(current_user, installer)
    flash(
        gettext("A new address is made. The old one no longer works: update your calendar app.")
        if had_one
        else gettext("Your calendar address is ready. Add it to your calendar app."),
        "success",
    )
    return redirect(url_for("portal.calendar"))
