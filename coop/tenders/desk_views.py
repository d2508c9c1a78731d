"""The desk's pages for tenders: open a round for a closed action, and compare the bids once
the deadline has passed. Staff of the action's own organisation only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.actions import services as actions
from coop.actions.models import Action
from coop.core.authz import require, staff_required
from coop.extensions import db
from coop.installers import services as installers
from coop.orders import services as orders
from coop.tenders import services
from coop.tenders.forms import TenderForm
from coop.tenders.models import TenderRound
from coop.tenders.services import TenderError

bp = Blueprint("tenders_desk", __name__, url_prefix="/desk/actions/<int:action_id>/tender")

_MESSAGES = {
    "action_not_closed": _l("Close registration first: a tender is for the homes that signed up."),
    "round_running": _l("A tender round is still open. Wait for its deadline."),
    "no_installers": _l("Choose at least one installer."),
    "unknown_installer": _l("Choose installers from your own registry."),
    "deadline_too_soon": _l("Give the installers at least an hour: choose a later deadline."),
    "deadline_too_late": _l("Choose a deadline within 90 days."),
}
_FIELDS = {
    "no_installers": "installers",
    "unknown_installer": "installers",
    "deadline_too_soon": "deadline_on",
    "deadline_too_late": "deadline_on",
}


def _action(action_id: int) -> Action:
    action = actions.action_for_desk(action_id)
    require(current_user, action, "manage")
    assert action is not None
    return action


def _round(action: Action, round_id: int) -> TenderRound:
    tender = services.get_round(round_id)
    if tender is None or tender.action_id != action.id:
        abort(404)
    return tender


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def open_round(action_id: int) -> str | Response:
    action = _action(action_id)
    offered = {m.measure_id for m in action.measures}
    candidates = [
        i
        for i in installers.installers_of(action.organisation_id)
        if any(o.measure_id in offered for o in i.offers)
    ]
    form = TenderForm(installers=candidates)
    if not form.is_submitted():
        form.installers.data = [i.id for i in candidates]
    problem = None
    if form.validate_on_submit():
        try:
            tender = services.open_round(
                current_user,
                action,
                list(form.installers.data),
                form.deadline(),
                form.note.data or "",
            )
        except TenderError as error:
            db.session.rollback()
            message = str(_MESSAGES.get(error.code, gettext("This is not possible.")))
            field = getattr(form, _FIELDS.get(error.code, ""), None)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                problem = message
        else:
            flash(gettext("The tender round is open; the installers get an email."), "success")
            return redirect(url_for("tenders_desk.bids", action_id=action.id, round_id=tender.id))
    return render_template(
        "tenders/desk/open.html",
        action=action,
        form=form,
        problem=problem,
        candidates=candidates,
        demand=orders.demand(action),
    )


@bp.get("/<int:round_id>")
@staff_required
def bids(action_id: int, round_id: int) -> str:
    action = _action(action_id)
    tender = _round(action, round_id)
    registry = {
        (i.id, o.measure_id): o.unit_price_cents
        for i in installers.installers_of(action.organisation_id)
        for o in i.offers
    }
    return render_template(
        "tenders/desk/bids.html",
        action=action,
        comparison=services.compare_bids(tender),
        registry=registry,
    )
