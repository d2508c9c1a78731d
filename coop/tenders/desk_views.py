"""The desk's pages for tenders: open a round for a closed action (choose the installers, then
check whom the invitation will be emailed to before it is sent), move its deadline later or
cancel it, and compare the bids once the deadline has passed. Staff of the action's own
organisation only."""

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
from coop.core.authz import require
from coop.core.formatting import local_datetime
from coop.core.time import AMSTERDAM, utcnow
from coop.installers import services as installers
from coop.tenders import services
from coop.tenders.demand import demand
from coop.tenders.forms import CancelRoundForm, DeadlineForm, TenderForm
from coop.tenders.models import TenderRound
from coop.tenders.services import TenderError

bp = Blueprint("tenders_desk", __name__, url_prefix="/desk/actions/<int:action_id>/tender")

_MESSAGES: dict[str, Any] = {
    "action_not_closed": _l("Close registration first: a tender is for the homes that signed up."),
    "round_running": _l("A tender round is still open. Wait for its deadline."),
    "no_installers": _l("Choose at least one installer."),
    "unknown_installer": _l("Choose installers from your own registry."),
    "deadline_too_soon": _l("Give the installers at least an hour: choose a later deadline."),
    "deadline_too_late": _l("Choose a deadline within 90 days."),
    "deadline_not_later": _l(
        "Choose a deadline after the current one. To shorten the round, cancel it and open a "
        "new one."
    ),
    "deadline_passed": _l("The deadline of this round has passed: it can no longer be changed."),
    "round_cancelled": _l("This tender round was cancelled."),
    "matching_started": _l(
        "Matching has started with the bids of this round: it can no longer be cancelled."
    ),
    "message_required": _l("Say why the round is cancelled: the installers read it."),
}
_FIELDS = {
    "no_installers": "installers",
    "unknown_installer": "installers",
    "deadline_too_soon": "deadline_on",
    "deadline_too_late": "deadline_on",
    "deadline_not_later": "deadline_on",
    "message_required": "message",
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


def _show_error(form: Any, error: TenderError) -> str | None:
    """Put the error at its field; return it when it belongs to no field (for the summary).
    The service has undone its changes (``unit_of_work``)."""
    message = str(_MESSAGES.get(error.code, gettext("This is not possible.")))
    field = getattr(form, _FIELDS.get(error.code, ""), None)
    if field is None:
        return message
    field.errors = [*field.errors, message]
    return None


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def open_round(action_id: int) -> str | Response:
    """Two steps without JavaScript: the form posts to itself and, when it is right, shows whom
    the invitation will be emailed to; its "send" button posts the same values with
    ``step=send``, its "change" button with ``step=edit`` (back to the form, as it was)."""
    action = _action(action_id)
    offered = {m.measure_id for m in action.measures}
    candidates = [
        i
        for i in installers.installers_of(action.organisation_id)
        if any(o.measure_id in offered for o in i.offers)
    ]
    form = TenderForm(installers=candidates)
    problem = None
    step = request.form.get("step", "")
    if form.validate_on_submit() and step != "edit":
        chosen = list(form.installers.data)
        try:
            if step == "send":
                tender = services.open_round(
                    current_user, action, chosen, form.deadline(), form.note.data or ""
                )
            else:
                invitees = services.preview_round(action, chosen, form.deadline())
        except TenderError as error:
            problem = _show_error(form, error)
        else:
            if step == "send":
                flash(gettext("The tender round is open; the installers get an email."), "success")
                return redirect(
                    url_for("tenders_desk.bids", action_id=action.id, round_id=tender.id)
                )
            return render_template(
                "tenders/desk/confirm.html",
                action=action,
                form=form,
                invitees=invitees,
                not_invited=len(candidates) - len(invitees),
            )
    return render_template(
        "tenders/desk/open.html",
        action=action,
        form=form,
        problem=problem,
        candidates=candidates,
        demand=demand(action),
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
        can_change=_can_change(tender),
        can_cancel=_can_cancel(tender),
    )


def _can_change(tender: TenderRound) -> bool:
    return tender.active and tender.sealed(utcnow()) and tender.matching_started_at is None


def _can_cancel(tender: TenderRound) -> bool:
    return tender.active and tender.matching_started_at is None


def _locked_reason(tender: TenderRound) -> str:
    if not tender.active:
        return str(_MESSAGES["round_cancelled"])
    if tender.matching_started_at is not None:
        return str(_MESSAGES["matching_started"])
    return str(_MESSAGES["deadline_passed"])


@bp.route("/<int:round_id>/deadline", methods=["GET", "POST"])
@staff_required
def change_deadline(action_id: int, round_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    tender = _round(action, round_id)
    form = DeadlineForm()
    if not form.is_submitted():
        local = tender.deadline.astimezone(AMSTERDAM)
        form.deadline_on.data = local.date().isoformat()
        form.deadline_at.data = local.strftime("%H:%M")
    problem = None
    if form.validate_on_submit():
        try:
            services.change_deadline(current_user, tender, form.deadline())
        except TenderError as error:
            problem = _show_error(form, error)
        else:
            flash(
                gettext(
                    "Bids now close %(deadline)s; the invited installers get an email.",
                    deadline=local_datetime(tender.deadline, "long"),
                ),
                "success",
            )
            return redirect(url_for("tenders_desk.bids", action_id=action.id, round_id=tender.id))
    page = render_template(
        "tenders/desk/deadline.html",
        action=action,
        tender=tender,
        form=form,
        problem=problem,
        locked=None if _can_change(tender) else _locked_reason(tender),
    )
    return (page, 409) if problem else page


@bp.route("/<int:round_id>/cancel", methods=["GET", "POST"])
@staff_required
def cancel_round(action_id: int, round_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    tender = _round(action, round_id)
    form = CancelRoundForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.cancel_round(current_user, tender, form.message.data or "")
        except TenderError as error:
            problem = _show_error(form, error)
        else:
            flash(
                gettext("The tender round is cancelled; the invited installers get an email."),
                "success",
            )
            return redirect(url_for("tenders_desk.bids", action_id=action.id, round_id=tender.id))
    page = render_template(
        "tenders/desk/cancel.html",
        action=action,
        tender=tender,
        form=form,
        problem=problem,
        locked=None if _can_cancel(tender) else _locked_reason(tender),
    )
    return (page, 409) if problem else page
