"""The desk's pages for actions: list, create and edit, measures with group price tiers,
neighbourhoods, status changes and the wording of the action's emails.

Every page is for staff of the action's own organisation; anyone else gets a 404, whatever id
they try. Routes parse and authorise, call one service function and render.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from coop.accounts.permissions import staff_required
from coop.actions import email_templates as wording
from coop.actions import neighbourhoods as areas
from coop.actions import services
from coop.actions.forms import (
    ActionForm,
    ButtonForm,
    CancelForm,
    NeighbourhoodForm,
    OfferForm,
    WordingForm,
)
from coop.actions.models import Action, ActionMeasure, Neighbourhood
from coop.actions.neighbourhoods import NeighbourhoodDetails
from coop.actions.services import ActionDetails, ActionError, parse_pc4_list
from coop.core.authz import require
from coop.extensions import db

bp = Blueprint("actions_desk", __name__, url_prefix="/desk/actions")

_STATUS = {
    "draft": _l("draft"),
    "open": _l("open"),
    "closed": _l("closed"),
    "cancelled": _l("cancelled"),
}
_MESSAGES: dict[str, Any] = {
    "slug_taken": _l("This web address is already used by another action. Choose another one."),
    "slug_invalid": _l("Use lower-case letters, digits and single hyphens, like samen-isoleren."),
    "window_order": _l("Registration must close after it opens."),
    "unknown_neighbourhood": _l("Choose neighbourhoods of your own organisation."),
    "action_cancelled": _l("This action is cancelled: it cannot be changed any more."),
    "cannot_publish": _l("Only a draft action can be published; this action is %(status)s."),
    "no_measures": _l("Add at least one measure before you publish the action."),
    "window_over": _l(
        "The registration window has already ended. Move the closing date to the future first."
    ),
    "cannot_close": _l("Only an open action can be closed; this action is %(status)s."),
    "cannot_reopen": _l("Only a closed action can be reopened; this action is %(status)s."),
    "window_over_reopen": _l(
        "The registration window has ended. Extend it first (edit the closing date), then reopen."
    ),
    "cannot_cancel": _l("This action is already cancelled."),
    "reason_required": _l("Enter the reason."),
    "unknown_measure": _l("Choose a measure from the list."),
    "measure_already_offered": _l("This action already offers that measure."),
    "measure_in_use": _l(
        "Registrations have chosen this measure, so it cannot be removed. "
        "Registrations keep the measures they chose."
    ),
    "price_positive": _l("Enter an amount above € 0."),
    "household_count_negative": _l("Enter a whole number, like 1250."),
}
# Which form field a service's refusal belongs to (the rest go to the top of the page).
_FIELDS = {
    "slug_taken": "slug",
    "slug_invalid": "slug",
    "window_order": "closes_on",
    "unknown_neighbourhood": "neighbourhoods",
    "measure_already_offered": "measure",
    "unknown_measure": "measure",
    "price_positive": "indicative_price",
    "household_count_negative": "household_count",
    "reason_required": "reason",
}


def message_for(error: ActionError) -> str:
    params = dict(error.params)
    if "status" in params:
        params["status"] = str(_STATUS.get(params["status"], params["status"]))
    template = _MESSAGES.get(error.code)
    if template is None:
        return str(gettext("This change is not possible."))
    # The lazy string gives the translation; the details are filled in afterwards.
    text = str(template)
    return text % params if params else text


def _refusal(form: Any, error: ActionError) -> str | None:
    """Put the refusal at its field; returns it when it belongs to no field."""
    name = _FIELDS.get(error.code)
    field = getattr(form, name, None) if name else None
    if field is None:
        return message_for(error)
    field.errors = [*field.errors, message_for(error)]
    return None


def _action(action_id: int) -> Action:
    action = services.action_for_desk(action_id)
    require(current_user, action, "manage")
    assert action is not None
    return action


def _offer(action: Action, offer_id: int) -> ActionMeasure:
    offer = services.offer_for(action, offer_id)
    if offer is None:
        abort(404)
    return offer


def _neighbourhood(neighbourhood_id: int) -> Neighbourhood:
    neighbourhood = db.session.get(Neighbourhood, neighbourhood_id)
    require(current_user, neighbourhood, "manage")
    assert neighbourhood is not None
    return neighbourhood


@bp.app_template_global()
def action_status_label(status: Any) -> str:
    value = getattr(status, "value", status)
    return str(_STATUS.get(value, value))


# --- list, create, edit -----------------------------------------------------------------------


@bp.get("/")
@staff_required
def index() -> str:
    return render_template(
        "actions/desk/index.html",
        rows=services.organisation_actions(current_user.organisation_id),
    )


def _details(form: ActionForm) -> ActionDetails:
    opens, closes = form.window()
    return ActionDetails(
        title_nl=form.title_nl.data,
        title_en=form.title_en.data or "",
        summary_nl=form.summary_nl.data,
        summary_en=form.summary_en.data or "",
        description_nl=form.description_nl.data or "",
        description_en=form.description_en.data or "",
        slug=form.slug.data or "",
        registration_opens_at=opens,
        registration_closes_at=closes,
        contact_email=form.contact_email.data,
        contact_phone=form.contact_phone.data or None,
        postcode_areas=parse_pc4_list(form.postcode_areas.data)[0],
        neighbourhood_ids=list(form.neighbourhoods.data or []),
        order_response_days=form.order_response_days.data,
    )


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def create() -> str | Response:
    form = ActionForm(neighbourhoods=areas.neighbourhoods_of(current_user.organisation_id))
    problem = None
    if form.validate_on_submit():
        try:
            action = services.create_action(current_user, _details(form))
        except ActionError as error:
            problem = _refusal(form, error)
        else:
            flash(gettext("The action is created as a draft."), "success")
            return redirect(url_for("actions_desk.detail", action_id=action.id))
    return render_template("actions/desk/edit.html", form=form, action=None, problem=problem)


@bp.get("/<int:action_id>")
@staff_required
def detail(action_id: int) -> str:
    action = _action(action_id)
    return _detail_page(action)


def _detail_page(action: Action, problem: str | None = None) -> str:
    return render_template(
        "actions/desk/detail.html",
        action=action,
        registrations=services.registration_counts([action.id]).get(action.id, 0),
        offers_in_use={offer.id: services.offer_in_use(offer) for offer in action.measures},
        button=ButtonForm(),
        problem=problem,
    )


@bp.route("/<int:action_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(action_id: int) -> str | Response:
    action = _action(action_id)
    form = ActionForm(neighbourhoods=areas.neighbourhoods_of(action.organisation_id))
    problem = None
    if request.method == "GET":
        form.fill_from(action)
    elif form.validate_on_submit():
        try:
            services.update_action(current_user, action, _details(form))
        except ActionError as error:
            problem = _refusal(form, error)
        else:
            flash(gettext("The changes are saved."), "success")
            return redirect(url_for("actions_desk.detail", action_id=action.id))
    return render_template("actions/desk/edit.html", form=form, action=action, problem=problem)


# --- status changes ---------------------------------------------------------------------------


def _change_status(action_id: int, change: Any, done: str) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        change(current_user, action)
    except ActionError as error:
        return _detail_page(action, problem=message_for(error)), 409
    flash(done, "success")
    return redirect(url_for("actions_desk.detail", action_id=action.id))


@bp.post("/<int:action_id>/publish")
@staff_required
def publish(action_id: int) -> str | Response | tuple[str, int]:
    return _change_status(action_id, services.publish_action, gettext("The action is published."))


@bp.post("/<int:action_id>/close")
@staff_required
def close(action_id: int) -> str | Response | tuple[str, int]:
    return _change_status(
        action_id, services.close_action, gettext("Registration for the action is closed.")
    )


@bp.post("/<int:action_id>/reopen")
@staff_required
def reopen(action_id: int) -> str | Response | tuple[str, int]:
    return _change_status(action_id, services.reopen_action, gettext("Registration is open again."))


@bp.route("/<int:action_id>/cancel", methods=["GET", "POST"])
@staff_required
def cancel(action_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    form = CancelForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.cancel_action(current_user, action, form.reason.data)
        except ActionError as error:
            problem = _refusal(form, error)
            if problem is not None:
                return render_template(
                    "actions/desk/cancel.html", action=action, form=form, problem=problem
                ), 409
        else:
            flash(gettext("The action is cancelled."), "success")
            return redirect(url_for("actions_desk.detail", action_id=action.id))
    return render_template("actions/desk/cancel.html", action=action, form=form, problem=problem)


# --- measures and group price tiers -----------------------------------------------------------


@bp.route("/<int:action_id>/measures/new", methods=["GET", "POST"])
@staff_required
def add_measure(action_id: int) -> str | Response:
    action = _action(action_id)
    offered = {offer.measure_id for offer in action.measures}
    available = [m for m in services.catalogue() if m.id not in offered]
    form = OfferForm(measures=available)
    problem = None
    if form.validate_on_submit():
        try:
            services.offer_measure(
                current_user,
                action,
                form.measure.data,
                form.indicative_price.cents or 0,
                form.chosen_tiers(),
            )
        except ActionError as error:
            problem = _refusal(form, error)
        else:
            flash(gettext("The measure is added."), "success")
            return redirect(url_for("actions_desk.detail", action_id=action.id))
    return render_template(
        "actions/desk/offer.html", action=action, form=form, offer=None, problem=problem
    )


@bp.route("/<int:action_id>/measures/<int:offer_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_measure(action_id: int, offer_id: int) -> str | Response:
    action = _action(action_id)
    offer = _offer(action, offer_id)
    form = OfferForm()
    problem = None
    if request.method == "GET":
        form.fill_from(offer)
    elif form.validate_on_submit():
        try:
            services.update_offer(
                current_user, offer, form.indicative_price.cents or 0, form.chosen_tiers()
            )
        except ActionError as error:
            problem = _refusal(form, error)
        else:
            flash(gettext("The prices are saved."), "success")
            return redirect(url_for("actions_desk.detail", action_id=action.id))
    return render_template(
        "actions/desk/offer.html", action=action, form=form, offer=offer, problem=problem
    )


@bp.post("/<int:action_id>/measures/<int:offer_id>/remove")
@staff_required
def remove_measure(action_id: int, offer_id: int) -> str | Response | tuple[str, int]:
    action = _action(action_id)
    offer = _offer(action, offer_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.remove_offer(current_user, offer)
    except ActionError as error:
        return _detail_page(action, problem=message_for(error)), 409
    flash(gettext("The measure is removed."), "success")
    return redirect(url_for("actions_desk.detail", action_id=action.id))


# --- the wording of the action's emails -------------------------------------------------------


def _kind(kind: str, language: str | None = None) -> wording.EmailKind:
    if kind not in wording.EMAIL_KINDS or (
        language is not None and language not in wording.LANGUAGES
    ):
        abort(404)
    return wording.EMAIL_KINDS[kind]


@bp.get("/<int:action_id>/emails")
@staff_required
def emails(action_id: int) -> str:
    action = _action(action_id)
    return render_template(
        "actions/desk/emails.html",
        action=action,
        kinds=list(wording.EMAIL_KINDS.values()),
        languages=wording.LANGUAGES,
        own=wording.wordings_of(action.id),
    )


@bp.get("/<int:action_id>/emails/<kind>/preview")
@staff_required
def preview_email(action_id: int, kind: str) -> str:
    action = _action(action_id)
    email_kind = _kind(kind)
    previews = []
    for language in wording.LANGUAGES:
        subject, body, own = wording.current_wording(action, kind, language)
        previews.append((language, own, *wording.preview(action, kind, language, subject, body)))
    return render_template(
        "actions/desk/email_preview.html", action=action, kind=email_kind, previews=previews
    )


@bp.route("/<int:action_id>/emails/<kind>/<language>", methods=["GET", "POST"])
@staff_required
def edit_email(action_id: int, kind: str, language: str) -> str | Response:
    action = _action(action_id)
    email_kind = _kind(kind, language)
    form = WordingForm()
    own = wording.wording_of(action.id, kind, language) is not None
    shown: tuple[str, str] | None = None
    if request.method == "GET":
        form.subject.data, form.body.data, own = wording.current_wording(action, kind, language)
    elif form.validate_on_submit():
        subject, body = form.subject.data, form.body.data.replace("\r\n", "\n")
        errors = wording.check_wording(kind, subject, body)
        for name, message in errors.items():
            getattr(form, name).errors = [message]
        if not errors and request.form.get("do") == "save":
            wording.save_wording(current_user, action, kind, language, subject, body)
            flash(gettext("The email text is saved."), "success")
            return redirect(url_for("actions_desk.emails", action_id=action.id))
        if not errors:
            shown = wording.preview(action, kind, language, subject, body)
    return render_template(
        "actions/desk/email_edit.html",
        action=action,
        kind=email_kind,
        language=language,
        form=form,
        own=own,
        shown=shown,
        placeholder_help=wording.PLACEHOLDER_HELP,
        reset_form=ButtonForm(),
    )


@bp.post("/<int:action_id>/emails/<kind>/<language>/reset")
@staff_required
def reset_email(action_id: int, kind: str, language: str) -> Response:
    action = _action(action_id)
    _kind(kind, language)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if wording.reset_wording(current_user, action, kind, language):
        flash(gettext("The email is back to the standard text."), "success")
    return redirect(url_for("actions_desk.emails", action_id=action.id))


# --- neighbourhoods ---------------------------------------------------------------------------


def _neighbourhood_details(form: NeighbourhoodForm) -> NeighbourhoodDetails:
    return NeighbourhoodDetails(
        name=form.name.data,
        municipality=form.municipality.data,
        postcode_areas=parse_pc4_list(form.postcode_areas.data)[0],
        household_count=form.households(),
    )


@bp.get("/neighbourhoods")
@staff_required
def neighbourhoods() -> str:
    return render_template(
        "actions/desk/neighbourhoods.html",
        neighbourhoods=areas.neighbourhoods_of(current_user.organisation_id),
    )


@bp.route("/neighbourhoods/new", methods=["GET", "POST"])
@staff_required
def create_neighbourhood() -> str | Response:
    form = NeighbourhoodForm()
    if request.method == "GET":
        form.municipality.data = current_user.organisation.municipality
    elif form.validate_on_submit():
        areas.create_neighbourhood(current_user, _neighbourhood_details(form))
        flash(gettext("The neighbourhood is added."), "success")
        return redirect(url_for("actions_desk.neighbourhoods"))
    return render_template("actions/desk/neighbourhood.html", form=form, neighbourhood=None)


@bp.route("/neighbourhoods/<int:neighbourhood_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_neighbourhood(neighbourhood_id: int) -> str | Response:
    neighbourhood = _neighbourhood(neighbourhood_id)
    form = NeighbourhoodForm()
    if request.method == "GET":
        form.name.data = neighbourhood.name
        form.municipality.data = neighbourhood.municipality
        form.postcode_areas.data = ", ".join(neighbourhood.pc4_list)
        form.household_count.data = (
            str(neighbourhood.household_count) if neighbourhood.household_count is not None else ""
        )
    elif form.validate_on_submit():
        areas.update_neighbourhood(current_user, neighbourhood, _neighbourhood_details(form))
        flash(gettext("The neighbourhood is saved."), "success")
        return redirect(url_for("actions_desk.neighbourhoods"))
    return render_template(
        "actions/desk/neighbourhood.html", form=form, neighbourhood=neighbourhood
    )
