"""The staff's pages: the start page, dashboards, the audit log and the desk's settings; the old
address of the installer's start page (now in the portal). Updates to residents and their
unsubscribe link: ``update_views``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_number, format_percent, gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import installer_required, staff_required
from coop.core import address_lookup
from coop.core.audit import AuditEntry
from coop.core.authz import require
from coop.core.charts import Chart, Datum
from coop.core.formatting import local_date, money
from coop.core.web import localized
from coop.desk import services
from coop.desk.forms import (
    STATUS_LABELS,
    DeskSettingsForm,
)
from coop.payments import services as payments
from coop.registrations.desk_services import DWELLING_LABELS, OWNERSHIP_LABELS
from coop.registrations.models import RegistrationStatus

bp = Blueprint("desk", __name__, url_prefix="/desk")

# Page numbers beyond this are nonsense (and would overflow an OFFSET); they show page 1.
MAX_PAGE = 100_000


@bp.get("/")
@staff_required
def home() -> str:
    return render_template(
        "desk/home.html",
        overview=services.organisation_overview(current_user.organisation_id),
        neighbourhoods=services.organisation_neighbourhoods(current_user.organisation_id),
        to_transfer=_refunds_to_transfer(current_user.organisation_id),
    )


def _refunds_to_transfer(organisation_id: int) -> list[Any]:
    return payments.refunds_to_transfer(organisation_id)


@bp.get("/installer")
@installer_required
def installer_home() -> Response:
    """The installer's start page moved to the portal; old bookmarks still lead there."""
    return redirect(url_for("portal.home"))


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return page if 1 <= page <= MAX_PAGE else 1


# --- dashboards ------------------------------------------------------------------------------


@bp.get("/dashboard/actions/<int:action_id>")
@staff_required
def action_dashboard(action_id: int) -> str:
    action = services.action_for_dashboard(action_id)
    require(current_user, action, "manage")
    assert action is not None
    dashboard = services.action_dashboard(action)
    return render_template(
        "desk/dashboard.html",
        heading=localized(action, "title"),
        action=action,
        neighbourhood=None,
        dashboard=dashboard,
        charts=_charts(dashboard),
    )


@bp.get("/dashboard/neighbourhoods/<int:neighbourhood_id>")
@staff_required
def neighbourhood_dashboard(neighbourhood_id: int) -> str:
    neighbourhood = services.get_neighbourhood(neighbourhood_id)
    require(current_user, neighbourhood, "manage")
    assert neighbourhood is not None
    dashboard = services.neighbourhood_dashboard(neighbourhood)
    return render_template(
        "desk/dashboard.html",
        heading=neighbourhood.name,
        action=None,
        neighbourhood=neighbourhood,
        dashboard=dashboard,
        charts=_charts(dashboard),
    )


def _count(value: int) -> str:
    return str(format_number(value))


def _percent(share: float | None) -> str:
    return gettext("unknown") if share is None else str(format_percent(share, "#,##0.0%"))


def _described(title: str) -> str:
    return str(
        gettext("%(title)s. The same figures are in the table next to this chart.", title=title)
    )


def _bars(
    chart_id: str, title: str, label_heading: str, items: list[tuple[str, int]], **kwargs: Any
) -> Chart:
    return Chart(
        id=chart_id,
        title=title,
        description=_described(title),
        label_heading=label_heading,
        value_heading=gettext("Registrations"),
        data=tuple(Datum(label, count, _count(count)) for label, count in items),
        empty_text=gettext("No registrations yet."),
        **kwargs,
    )


def _funnel_chart(
    chart_id: str,
    title: str,
    funnel: list[tuple[RegistrationStatus, int]],
    value_heading: str,
    share_heading: str,
) -> Chart:
    registered = funnel[0][1] if funnel else 0
    return Chart(
        id=chart_id,
        title=title,
        description=_described(title),
        label_heading=gettext("Step"),
        value_heading=value_heading,
        extra_headings=(share_heading,),
        data=tuple(
            Datum(
                gettext("Registered")
                if step is RegistrationStatus.PENDING_CONFIRMATION
                else str(STATUS_LABELS[step]),
                count,
                _count(count),
                (_percent(count / registered if registered else None),),
            )
            for step, count in funnel
        ),
        empty_text=gettext("No registrations yet."),
    )


def _charts(dashboard: services.Dashboard) -> dict[str, Chart]:
    """The dashboard's figures as charts, with translated titles and formatted numbers."""
    charts: dict[str, Chart] = {}
    weekly = dashboard.period == "week"
    title = gettext("Sign-ups per week") if weekly else gettext("Sign-ups per day")
    charts["over_time"] = _bars(
        "chart-over-time",
        title,
        gettext("Week starting") if weekly else gettext("Day"),
        [(local_date(day, "day-month"), count) for day, count in dashboard.over_time],
        kind="columns",
    )
    charts["funnel"] = _funnel_chart(
        "chart-funnel",
        gettext("Households: from registration to installation"),
        dashboard.funnel,
        gettext("Households with at least one measure this far"),
        gettext("Share of all households"),
    )
    charts["measure_funnel"] = _funnel_chart(
        "chart-funnel-measures",
        gettext("Measures: from registration to installation"),
        dashboard.measure_funnel,
        gettext("Measures this far"),
        gettext("Share of all measures"),
    )
    charts["by_measure"] = _bars(
        "chart-measure",
        gettext("Active registrations per measure"),
        gettext("Measure"),
        [(localized(measure, "name"), count) for measure, count in dashboard.by_measure],
    )
    charts["by_pc4"] = _bars(
        "chart-pc4",
        gettext("Active registrations per postcode area"),
        gettext("Postcode area"),
        dashboard.by_pc4,
    )
    charts["by_ownership"] = _bars(
        "chart-ownership",
        gettext("Active registrations by ownership"),
        gettext("Ownership"),
        [(str(OWNERSHIP_LABELS[o]), count) for o, count in dashboard.by_ownership],
    )
    charts["by_dwelling_type"] = _bars(
        "chart-dwelling",
        gettext("Active registrations by dwelling type"),
        gettext("Dwelling type"),
        [(str(DWELLING_LABELS[d]), count) for d, count in dashboard.by_dwelling_type],
    )
    title = gettext("Participation per neighbourhood")
    charts["participation"] = Chart(
        id="chart-participation",
        title=title,
        description=_described(title),
        label_heading=gettext("Neighbourhood"),
        value_heading=gettext("Participation"),
        extra_headings=(gettext("Registrations"), gettext("Households")),
        data=tuple(
            Datum(
                p.neighbourhood.name,
                None if p.rate is None else p.rate * 100,
                _percent(p.rate),
                (
                    _count(p.registrations),
                    gettext("unknown") if p.households is None else _count(p.households),
                ),
            )
            for p in dashboard.participation
        ),
        empty_text=gettext("No neighbourhoods are linked to this action."),
    )
    if dashboard.offers:
        title = gettext("Group price per measure")
        charts["tiers"] = Chart(
            id="chart-tiers",
            title=title,
            description=_described(title),
            label_heading=gettext("Measure"),
            value_heading=gettext("Confirmed participants"),
            extra_headings=(
                gettext("Price tier reached"),
                gettext("Price per unit now"),
                gettext("Next tier"),
            ),
            data=tuple(_tier_datum(offer) for offer in dashboard.offers),
        )
    if dashboard.by_action:
        charts["by_action"] = _bars(
            "chart-action",
            gettext("Active registrations per action"),
            gettext("Action"),
            [(localized(action, "title"), count) for action, count in dashboard.by_action],
        )
    return charts


def _tier_datum(offer: Any) -> Datum:
    reached = (
        gettext("from %(n)s homes", n=_count(offer.reached.min_participants))
        if offer.reached
        else gettext("none yet")
    )
    next_tier = (
        gettext(
            "%(price)s from %(n)s homes (%(left)s to go)",
            price=money(offer.next_tier.price_cents),
            n=_count(offer.next_tier.min_participants),
            left=_count(offer.homes_to_next_tier or 0),
        )
        if offer.next_tier
        else gettext("best price reached")
        if offer.tiers
        else gettext("no group prices")
    )
    return Datum(
        localized(offer.action_measure.measure, "name"),
        offer.participants,
        _count(offer.participants),
        (reached, money(offer.current_price_cents), next_tier),
    )


# --- audit log ---------------------------------------------------------------------------------

VERBS = {
    "action.create": lambda: gettext("created an action"),
    "action.update": lambda: gettext("changed an action"),
    "action.publish": lambda: gettext("published an action"),
    "action.close": lambda: gettext("closed registration of an action"),
    "action.auto_close": lambda: gettext("registration closed at the end of its period"),
    "action.reopen": lambda: gettext("reopened registration of an action"),
    "action.cancel": lambda: gettext("cancelled an action"),
    "action.measure_add": lambda: gettext("added a measure to an action"),
    "action.measure_update": lambda: gettext("changed a measure of an action"),
    "action.measure_remove": lambda: gettext("removed a measure from an action"),
    "action.email_wording_save": lambda: gettext("changed the wording of an email"),
    "action.email_wording_reset": lambda: gettext("restored the standard wording of an email"),
    "neighbourhood.create": lambda: gettext("added a neighbourhood"),
    "neighbourhood.update": lambda: gettext("changed a neighbourhood"),
    "installer.create": lambda: gettext("added an installer"),
    "installer.update": lambda: gettext("changed an installer"),
    "installer.export": lambda: gettext("exported the installers"),
    "tender.open": lambda: gettext("opened a tender round"),
    "tender.deadline": lambda: gettext("moved the deadline of a tender round"),
    "tender.cancel": lambda: gettext("cancelled a tender round"),
    "user.create": lambda: gettext("created a staff account from the command line"),
    "registration.export": lambda: gettext("exported registrations"),
    "registration.note": lambda: gettext("added a note to a registration"),
    "registration.register_on_behalf": lambda: gettext("registered a resident on their behalf"),
    "registration.withdraw_measures": lambda: gettext("withdrew measures on a resident's behalf"),
    "user.invite": lambda: gettext("invited a user"),
    "user.reinvite": lambda: gettext("sent an invitation again"),
    "user.password_set": lambda: gettext("set their password"),
    "user.totp_on": lambda: gettext("turned on two-factor login"),
    "user.totp_off": lambda: gettext("turned off two-factor login"),
    "update.compose": lambda: gettext("composed an update"),
    "update.edit": lambda: gettext("changed an update"),
    "update.schedule": lambda: gettext("scheduled an update"),
    "update.cancel_schedule": lambda: gettext("cancelled a scheduled update"),
    "update.send": lambda: gettext("sent an update"),
    "action.deposit_update": lambda: gettext("changed the deposit of an action"),
    "payment.received": lambda: gettext("marked a deposit as received"),
    "payment.refund": lambda: gettext("refunded a deposit"),
    "payment.refunded": lambda: gettext("marked a deposit as refunded by hand"),
    "payment.refund_all": lambda: gettext("refunded every deposit of a cancelled action"),
    "payment.export": lambda: gettext("exported the deposits of an action"),
    "organisation.settings": lambda: gettext("changed the desk's settings"),
    "vat_rate.add": lambda: gettext("added a VAT rate"),
    "vat_rate.end": lambda: gettext("set the last day of a VAT rate"),
    "vat_rate.withdraw": lambda: gettext("withdrew a VAT rate that did not apply yet"),
}


@bp.route("/settings", methods=["GET", "POST"])
@staff_required
def settings() -> Any:
    """The desk's own settings (for its admins): for now, the address lookup of its forms."""
    organisation = current_user.organisation
    require(current_user, organisation, "configure")
    form = DeskSettingsForm()
    if request.method == "GET":
        form.address_lookup.data = organisation.address_lookup
    elif form.validate_on_submit():
        services.set_address_lookup(current_user, organisation, bool(form.address_lookup.data))
        flash(gettext("The settings are saved."), "success")
        return redirect(url_for("desk.settings"))
    return render_template(
        "desk/settings.html",
        form=form,
        lookup_installed=address_lookup.enabled(),
    )


@bp.get("/audit")
@staff_required
def audit_log() -> str:
    require(current_user, current_user.organisation, "audit")
    page = services.audit_page(current_user.organisation_id, _page())
    return render_template(
        "desk/audit.html",
        page=page,
        rows=[(entry, _verb(entry), _changes(entry)) for entry in page.entries],
    )


def _verb(entry: AuditEntry) -> str:
    known = VERBS.get(entry.verb)
    return known() if known else entry.verb


def _changes(entry: AuditEntry) -> list[tuple[str, str | None, str | None]]:
    """Each field as (name, old, new); None where the entry has no value on that side."""
    before = entry.before or {}
    after = entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return [
        (
            name,
            _readable(before[name]) if name in before else None,
            _readable(after[name]) if name in after else None,
        )
        for name in names
    ]


def _readable(value: Any, limit: int = 300) -> str:
    if value is None or value == "" or value == {} or value == []:
        text = "—"
    elif isinstance(value, bool):
        text = gettext("yes") if value else gettext("no")
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {_readable(v, 60)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(_readable(v, 60) for v in value)
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
