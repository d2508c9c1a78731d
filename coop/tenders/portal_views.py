"""The installer's side of a tender: an invited installer bids a price per unit and the homes
it commits to, per measure of the action, and can revise the bid until the deadline. After the
deadline the page shows the bid as it was sent. Only the invited company's users see it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from coop.accounts.permissions import installer_required
from coop.actions.models import Action, ActionMeasure
from coop.core.authz import require
from coop.core.formatting import format_euros, local_datetime
from coop.core.time import utcnow
from coop.core.web import localized
from coop.extensions import db
from coop.tenders import services
from coop.tenders.demand import DemandGroup, demand
from coop.tenders.forms import BidForm, bid_form
from coop.tenders.models import TenderInvitation
from coop.tenders.services import TenderError

bp = Blueprint("tenders_portal", __name__, url_prefix="/installer/tenders")

MESSAGES: dict[str, Any] = {
    "not_yours": _l("This invitation is for another company."),
    "deadline_passed": _l("The deadline has passed: the bid can no longer be changed."),
    "round_cancelled": _l("The energy desk cancelled this tender round: it takes no bids."),
    "no_measures": _l("Enter a price and a number of homes for at least one measure."),
    "unknown_measure": _l("Bid only on the measures of this action."),
    "price_out_of_range": _l("Enter a price per unit above € 0 and at most € 1.000.000."),
    "capacity_out_of_range": _l("Enter a number of homes from 1 to 100000."),
}


def _demand_by_measure(action: Action) -> dict[int, list[DemandGroup]]:
    """The homes without an installer, per measure and then per postcode area."""
    groups: dict[int, list[DemandGroup]] = {}
    for group in demand(action):
        groups.setdefault(group.action_measure.id, []).append(group)
    return groups


def _unit(action_measure: ActionMeasure) -> str:
    return str(gettext("m²") if action_measure.measure.unit.value == "m2" else gettext("piece"))


def _form(invitation: TenderInvitation, **kwargs: Any) -> BidForm:
    measures = services.biddable_measures(invitation)
    form = bid_form(
        [(m.id, localized(m.measure, "name"), _unit(m)) for m in measures],
        **kwargs,
    )
    if not form.is_submitted():
        for line in invitation.lines:
            if line.action_measure_id in form.measure_ids:
                price, capacity = form.pair(line.action_measure_id)
                price.data = format_euros(line.unit_price_cents)
                capacity.data = str(line.capacity_homes)
    return form


@bp.route("/<int:invitation_id>", methods=["GET", "POST"])
@installer_required
def bid(invitation_id: int) -> Any:
    invitation = services.get_invitation(invitation_id)
    require(current_user, invitation, "bid")
    assert invitation is not None
    tender = invitation.round
    open_for_bids = tender.active and tender.sealed(utcnow())
    form = _form(invitation)
    problem = None
    status = 200
    if open_for_bids and form.validate_on_submit():
        try:
            services.submit_bid(current_user, invitation, form.bids())
        except TenderError as error:
            problem = str(MESSAGES.get(error.code, gettext("This is not possible.")))
            status = 409
            db.session.refresh(invitation)
            open_for_bids = tender.active and tender.sealed(utcnow())
        else:
            flash(
                gettext(
                    "Your bid is saved. You can change it until %(deadline)s.",
                    deadline=local_datetime(tender.deadline, "long"),
                ),
                "success",
            )
            return redirect(url_for("tenders_portal.bid", invitation_id=invitation.id))
    elif not open_for_bids and form.is_submitted():
        problem = str(MESSAGES["deadline_passed" if tender.active else "round_cancelled"])
        status = 409
    action = tender.action
    page = render_template(
        "tenders/portal/bid.html",
        invitation=invitation,
        tender=tender,
        action=action,
        form=form,
        problem=problem,
        open_for_bids=open_for_bids,
        measures=services.biddable_measures(invitation),
        demand=_demand_by_measure(action),
        lines={line.action_measure_id: line for line in invitation.lines},
    )
    return (page, status) if status != 200 else page
