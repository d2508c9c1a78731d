"""The staff's updates to residents (writing, previewing, sending or scheduling one, its delivery
log) on the desk's blueprint, and the residents' unsubscribe link (``unsubscribe_bp``: no login
needed). ``coop.create_app`` imports this module before it registers the desk's blueprint."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import staff_required
from coop.actions.models import Action
from coop.core.authz import require
from coop.desk import services, updates
from coop.desk.forms import (
    STATUS_LABELS,
    ButtonForm,
    SendForm,
    UpdateForm,
    update_form,
)
from coop.desk.models import SegmentUpdate, UpdateStatus
from coop.desk.views import _count, _page, bp
from coop.extensions import csrf
from coop.registrations.models import RegistrationStatus

# The link in every update email: for residents, who need not be logged in.
unsubscribe_bp = Blueprint("unsubscribe", __name__)


# --- updates to residents ----------------------------------------------------------------------

UPDATE_ERRORS = {
    "measure_not_in_action": lambda: gettext(
        "This action does not offer that measure. Choose another measure or 'All measures'."
    ),
    "not_draft": lambda: gettext("This update has already been sent or scheduled."),
    "no_recipients": lambda: gettext(
        "No resident matches this segment, so there is nobody to send it to."
    ),
    "send_at_past": lambda: gettext("Choose a moment in the future."),
    "not_scheduled": lambda: gettext("This update is no longer scheduled."),
}


@bp.get("/updates")
@staff_required
def updates_index() -> str:
    items = updates.updates_of(current_user.organisation_id)
    return render_template(
        "desk/updates.html", updates=items, counts=updates.delivery_counts_of(items)
    )


def _update_input(form: UpdateForm) -> updates.UpdateInput:
    action = services.action_for_dashboard(form.action.data)
    require(current_user, action, "manage")
    assert isinstance(action, Action)
    return updates.UpdateInput(
        action=action,
        measure_id=form.measure.data,
        status=RegistrationStatus(form.status.data) if form.status.data else None,
        pc4=form.pc4.data or None,
        subject_nl=form.subject_nl.data,
        subject_en=form.subject_en.data or "",
        body_nl=form.body_nl.data,
        body_en=form.body_en.data or "",
    )


def _compose_form(**kwargs: Any) -> UpdateForm:
    return update_form(
        services.organisation_actions(current_user.organisation_id),
        services.catalogue_measures(),
        **kwargs,
    )


@bp.route("/updates/new", methods=["GET", "POST"])
@staff_required
def compose_update() -> Any:
    form = _compose_form()
    if not form.is_submitted():
        chosen = request.args.get("action", type=int)
        if chosen is not None:
            form.action.data = chosen
    problem = None
    if form.validate_on_submit():
        try:
            segment_update = updates.compose(current_user, _update_input(form))
        except updates.UpdateError as exc:
            problem = _field_problem(form, exc.code)
        else:
            flash(gettext("The update is saved as a draft. Check the preview, then send it."))
            return redirect(url_for("desk.update_detail", update_id=segment_update.id))
    return render_template("desk/update_form.html", form=form, problem=problem, update=None)


def _field_problem(form: UpdateForm, code: str) -> str | None:
    message = str(UPDATE_ERRORS[code]())
    if code == "measure_not_in_action":
        form.measure.errors = [message]
        return None
    return message


def _own_update(update_id: int) -> SegmentUpdate:
    segment_update = updates.get_update(update_id)
    require(current_user, segment_update, "manage")
    assert segment_update is not None
    return segment_update


@bp.route("/updates/<int:update_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_update(update_id: int) -> Any:
    segment_update = _own_update(update_id)
    if segment_update.status is not UpdateStatus.DRAFT:
        flash(UPDATE_ERRORS["not_draft"](), "error")
        return redirect(url_for("desk.update_detail", update_id=update_id))
    segment = segment_update.segment or {}
    form = _compose_form(
        data={
            "action": segment_update.action_id,
            "measure": segment.get("measure_id"),
            "status": segment.get("status", ""),
            "pc4": segment.get("pc4", ""),
            "subject_nl": segment_update.subject_nl,
            "subject_en": segment_update.subject_en,
            "body_nl": segment_update.body_nl,
            "body_en": segment_update.body_en,
        }
    )
    problem = None
    if form.validate_on_submit():
        try:
            updates.edit(segment_update, current_user, _update_input(form))
        except updates.UpdateError as exc:
            problem = _field_problem(form, exc.code)
        else:
            flash(gettext("The draft is saved."))
            return redirect(url_for("desk.update_detail", update_id=update_id))
    return render_template(
        "desk/update_form.html", form=form, problem=problem, update=segment_update
    )


def _render_update(
    segment_update: SegmentUpdate, send_form: SendForm, problem: str | None = None
) -> str:
    return render_template(
        "desk/update.html",
        page=updates.update_page(segment_update, _page()),
        send_form=send_form,
        cancel_form=ButtonForm(),
        problem=problem,
        UpdateStatus=UpdateStatus,
        status_labels=STATUS_LABELS,
    )


@bp.get("/updates/<int:update_id>")
@staff_required
def update_detail(update_id: int) -> str:
    return _render_update(_own_update(update_id), SendForm(formdata=None))


@bp.post("/updates/<int:update_id>/send")
@staff_required
def send_update(update_id: int) -> Any:
    segment_update = _own_update(update_id)
    form = SendForm()
    problem = None
    if form.validate_on_submit():
        send_at = form.send_at()
        try:
            if send_at is None:
                queued = updates.send_now(segment_update, current_user)
                flash(gettext("Sending to %(n)s residents has started.", n=_count(queued)))
            else:
                updates.schedule(segment_update, current_user, send_at.astimezone(UTC))
                flash(gettext("The update is scheduled."))
        except updates.UpdateError as exc:
            if exc.code == "send_at_past":
                form.send_date.errors = [UPDATE_ERRORS[exc.code]()]
            else:
                problem = UPDATE_ERRORS[exc.code]()
        else:
            return redirect(url_for("desk.update_detail", update_id=update_id))
    return _render_update(segment_update, form, problem)


@bp.post("/updates/<int:update_id>/cancel")
@staff_required
def cancel_update(update_id: int) -> Response:
    segment_update = _own_update(update_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        updates.cancel_schedule(segment_update, current_user)
    except updates.UpdateError as exc:
        flash(UPDATE_ERRORS[exc.code](), "error")
    else:
        flash(gettext("The update is no longer scheduled; it is a draft again."))
    return redirect(url_for("desk.update_detail", update_id=update_id))


@unsubscribe_bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    user = updates.user_for_unsubscribe(token)
    if user is None:
        abort(404)
    form = ButtonForm()
    done = False
    if form.validate_on_submit():
        updates.unsubscribe(user)
        done = True
    return render_template(
        "desk/unsubscribe.html", form=form, done=done or user.unsubscribed_at is not None
    )


@unsubscribe_bp.post("/unsubscribe/<token>/one-click")
@csrf.exempt
def one_click_unsubscribe(token: str) -> Any:
    """RFC 8058: the address in an update's List-Unsubscribe header. The mail program posts
    ``List-Unsubscribe=One-Click`` without cookies, so there is no CSRF token: the signed token
    in the address is the permission, and the body must say one-click (a link checker's
    request does not)."""
    user = updates.user_for_unsubscribe(token)
    if user is None:
        abort(404)
    if request.form.get("List-Unsubscribe") != "One-Click":
        abort(400)
    updates.unsubscribe(user)
    return render_template("desk/unsubscribe.html", form=ButtonForm(), done=True)
