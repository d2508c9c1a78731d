"""The desk's pages for matching and orders: start a run and follow its progress, review the
proposal (move or split a batch), approve it, and follow the orders and the installers' answers.

Staff of the action's own organisation only; anyone else gets a 404 whatever id they try.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import staff_required
from coop.actions import services as actions
from coop.actions.forms import ButtonForm
from coop.actions.models import Action
from coop.core.authz import require
from coop.core.formatting import money
from coop.extensions import db
from coop.orders import services
from coop.orders.forms import StartMatchingForm, reassign_form
from coop.orders.models import MatchingRun, RunTrigger
from coop.orders.services import OrderError
from coop.tenders import services as tenders

bp = Blueprint("orders_desk", __name__, url_prefix="/desk/actions/<int:action_id>")

_MESSAGES: dict[str, Any] = {
    "action_not_closed": _l("Close registration first: matching is for the homes that signed up."),
    "registry_weeks_out_of_range": _l("Enter a number of weeks from 1 to 104."),
    "tender_running": _l(
        "The tender round is still open: matching starts when its deadline has passed."
    ),
    "no_prices": _l(
        "There are no bids to match with. Open a tender round, or tick the box to use the "
        "registry prices."
    ),
    "not_proposed": _l(
        "This proposal can no longer be changed or approved: it was approved or replaced."
    ),
    "approval_running": _l(
        "A proposal of this action is being approved. Start a new run when its orders are sent."
    ),
    "unknown_batch": _l("This group is not in the proposal."),
    "homes_negative": _l("Enter a whole number of homes, 0 or more."),
    "too_many_homes": _l(
        "Together the installers can take at most the %(total)d homes of the group."
    ),
    "installer_cannot_serve": _l("This installer does not offer the measure in this area."),
    "over_capacity": _l("%(installer)s has room for %(left)d more homes for this measure."),
}
STAGES: dict[str, Any] = {
    "queued": _l("waiting for a worker"),
    "batching": _l("grouping the homes by measure and postcode area"),
    "solving": _l("finding the best division over the installers"),
    "storing": _l("saving the proposal"),
    "approving": _l("creating the orders"),
    "done": _l("done"),
    "failed": _l("failed"),
    "superseded": _l("replaced by a newer run"),
}
RUN_STATUS: dict[str, Any] = {
    "queued": _l("waiting"),
    "running": _l("running"),
    "proposed": _l("proposal ready for approval"),
    "approving": _l("being approved: the orders are being created"),
    "approved": _l("approved"),
    "superseded": _l("replaced by a newer run"),
    "failed": _l("failed"),
}
ORDER_STATUS: dict[str, Any] = {
    "sent": _l("waiting for an answer"),
    "accepted": _l("accepted"),
    "declined": _l("declined"),
    "expired": _l("not answered in time"),
    "cancelled": _l("cancelled"),
}
LINE_STATUS: dict[str, Any] = {
    "assigned": _l("assigned"),
    "survey_planned": _l("survey planned"),
    "quoted": _l("quote sent"),
    "accepted": _l("quote accepted"),
    "installed": _l("installed"),
    "completed": _l("completed"),
    "declined": _l("quote declined"),
    "withdrawn": _l("withdrawn"),
    "cancelled": _l("cancelled"),
}
TRIGGERS: dict[str, Any] = {
    "staff": _l("started by staff"),
    "tender_closed": _l("after the tender deadline"),
    "order_declined": _l("an installer declined an order"),
    "order_expired": _l("an order was not answered in time"),
}


# A job works on the run: its page shows the progress.
WORKING = ("queued", "running", "approving")


def message_for(error: OrderError) -> str:
    template = _MESSAGES.get(error.code)
    if template is None:
        return str(gettext("This is not possible."))
    text = str(template)
    return text % error.params if error.params else text


@bp.app_template_global()
def run_stage_label(stage: str) -> str:
    return str(STAGES.get(stage, stage))


@bp.app_template_global()
def run_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(RUN_STATUS.get(value, value))


@bp.app_template_global()
def run_trigger_label(trigger: Any) -> str:
    value = getattr(trigger, "value", trigger)
    return str(TRIGGERS.get(value, value))


@bp.app_template_global()
def line_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(LINE_STATUS.get(value, value))


@bp.app_template_global()
def order_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(ORDER_STATUS.get(value, value))


def _action(action_id: int) -> Action:
    action = actions.action_for_desk(action_id)
    require(current_user, action, "manage")
    assert action is not None
    return action


def _run(action: Action, run_id: int) -> MatchingRun:
    run = services.get_run(run_id)
    if run is None or run.action_id != action.id:
        abort(404)
    return run


@bp.get("/matching")
@staff_required
def matching(action_id: int) -> str:
    action = _action(action_id)
    return _matching_page(action, StartMatchingForm())


def _matching_page(action: Action, form: StartMatchingForm, problem: str | None = None) -> str:
    return render_template(
        "orders/desk/matching.html",
        action=action,
        form=form,
        problem=problem,
        figures=services.demand_figures(action),
        tender=tenders.latest_round(action),
        current=services.open_run(action),
        runs=services.runs_of(action),
    )


@bp.post("/matching")
@staff_required
def start_matching(action_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    form = StartMatchingForm()
    if not form.validate_on_submit():
        return _matching_page(action, form), 400
    try:
        run = services.start_run(
            current_user,
            action,
            RunTrigger.STAFF,
            use_registry_prices=form.use_registry_prices.data,
            registry_weeks=form.registry_weeks.data,
        )
    except OrderError as error:
        db.session.rollback()
        return _matching_page(action, form, problem=message_for(error)), 409
    flash(gettext("Matching has started."), "success")
    return redirect(url_for("orders_desk.run", action_id=action.id, run_id=run.id))


@bp.get("/matching/<int:run_id>")
@staff_required
def run(action_id: int, run_id: int) -> str:
    action = _action(action_id)
    matching_run = _run(action, run_id)
    return _run_page(action, matching_run)


def _run_page(action: Action, matching_run: MatchingRun, problem: str | None = None) -> str:
    return render_template(
        "orders/desk/run.html",
        action=action,
        run=matching_run,
        working=matching_run.status.value in WORKING and matching_run.stage != "failed",
        groups=services.proposal(matching_run) if matching_run.proposals else [],
        coverage=services.coverage(matching_run),
        button=ButtonForm(),
        problem=problem,
    )


@bp.get("/matching/<int:run_id>/status")
@staff_required
def run_status(action_id: int, run_id: int) -> Response:
    """For the progress bar: polled by the page's script while the run works."""
    action = _action(action_id)
    matching_run = _run(action, run_id)
    return jsonify(
        status=matching_run.status.value,
        stage=matching_run.stage,
        label=run_stage_label(matching_run.stage),
        progress=matching_run.progress,
        finished=matching_run.status.value not in WORKING or matching_run.stage == "failed",
    )


@bp.route("/matching/<int:run_id>/batches/<int:batch_id>", methods=["GET", "POST"])
@staff_required
def reassign(action_id: int, run_id: int, batch_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    matching_run = _run(action, run_id)
    group = next((g for g in services.proposal(matching_run) if g.batch.id == batch_id), None)
    if group is None:
        abort(404)
    choices = services.choices_for(matching_run, group.batch)
    current = {p.installer_id: p.homes for p in group.parts if p.installer_id is not None}
    form = reassign_form(
        [
            (
                c.installer.id,
                gettext(
                    "Homes for %(installer)s (%(price)s per unit, room for %(left)d)",
                    installer=c.installer.company_name,
                    price=money(c.unit_price_cents),
                    # Already the room for this group: only the proposal's other groups are
                    # taken off (adding this group's current homes again counted them twice).
                    left=c.capacity_left,
                ),
            )
            for c in choices
        ],
        current,
    )
    problem = None
    if form.validate_on_submit():
        try:
            services.reassign(current_user, matching_run, group.batch, form.shares())
        except OrderError as error:
            problem = message_for(error)
        else:
            flash(gettext("The group is changed in the proposal."), "success")
            return redirect(
                url_for("orders_desk.run", action_id=action.id, run_id=matching_run.id)
                + f"#batch-{group.batch.id}"
            )
    status = 409 if problem else 200
    page = render_template(
        "orders/desk/reassign.html",
        action=action,
        run=matching_run,
        group=group,
        form=form,
        problem=problem,
        batch=group.batch,
    )
    return (page, status) if status != 200 else page


@bp.post("/matching/<int:run_id>/approve")
@staff_required
def approve(action_id: int, run_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    matching_run = _run(action, run_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.request_approval(current_user, matching_run)
    except OrderError as error:
        return _run_page(action, matching_run, problem=message_for(error)), 409
    flash(
        gettext(
            "Approved. The orders are created and sent to the installers, and the residents "
            "hear who their installer is; this page shows how far that is."
        ),
        "success",
    )
    return redirect(url_for("orders_desk.run", action_id=action.id, run_id=matching_run.id))


@bp.get("/orders")
@staff_required
def orders(action_id: int) -> str:
    action = _action(action_id)
    return render_template(
        "orders/desk/orders.html",
        action=action,
        summaries=services.orders_of_action(action),
        figures=services.demand_figures(action),
        current=services.open_run(action),
    )
