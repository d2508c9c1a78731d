"""The staff's registration pages: the list, one registration with notes, registering on behalf,
and the export of the (filtered) list."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_number, gettext
from flask_login import current_user

from coop.accounts.permissions import staff_required
from coop.core import address_lookup, exports
from coop.core.authz import require
from coop.core.forms import address_looked_up
from coop.core.time import utcnow
from coop.registrations import desk_services, services
from coop.registrations.desk_forms import (
    RegistrationFilterForm,
    on_behalf_form_for,
)
from coop.registrations.models import Registration

bp = Blueprint("registrations_desk", __name__, url_prefix="/desk/registrations")

ERROR_MESSAGES = {
    "action_not_open": lambda: gettext("Registration for this action is closed."),
    "no_consent": lambda: gettext("Only register someone who agreed to the use of their details."),
    "outside_area": lambda: gettext(
        "This address is outside the postcode areas of this action, so it cannot be registered for it."
    ),
    "no_measures": lambda: gettext("Choose at least one measure."),
    "unknown_measure": lambda: gettext("Choose measures from this action only."),
    "quantity_out_of_range": lambda: gettext(
        "One of the quantities is not possible for a single home."
    ),
    "email_not_resident": lambda: gettext(
        "This email address belongs to a staff or installer account. Use the resident's own email address."
    ),
}


def _filters() -> tuple[RegistrationFilterForm, desk_services.RegistrationQuery]:
    form = RegistrationFilterForm(formdata=request.args)
    form.set_choices(
        desk_services.actions_of(current_user.organisation_id), desk_services.catalogue()
    )
    return form, form.to_query(request.args.get("page"))


def _query_args(query: desk_services.RegistrationQuery) -> dict[str, Any]:
    """The query as GET parameters again, for page, sort and export links."""
    args: dict[str, Any] = {
        "q": query.q or None,
        "action": query.action_id,
        "measure": query.measure_id,
        "status": query.status.value if query.status else None,
        "pc4": query.pc4,
        "ownership": query.ownership.value if query.ownership else None,
        "sort": query.sort if query.sort != "created" else None,
        "direction": None if query.descending else "asc",
    }
    return {k: v for k, v in args.items() if v is not None}


def registration_or_404(registration_id: int, action: str = "manage") -> Registration:
    """The registration, if the current staff member may do ``action`` with it; else 404."""
    registration = desk_services.registration_for_staff(registration_id)
    require(current_user, registration, action)
    assert registration is not None
    return registration


@bp.get("/")
@staff_required
def index() -> str:
    require(current_user, current_user.organisation, "view")
    form, query = _filters()
    page = desk_services.search_registrations(current_user.organisation_id, query)
    args = _query_args(query)

    def link(**changes: Any) -> str:
        merged = {**args, **changes}
        return url_for(
            "registrations_desk.index", **{k: v for k, v in merged.items() if v is not None}
        )

    def sort_link(column: str) -> str:
        # The current column flips its order; another column starts in its natural order.
        if query.sort == column:
            return link(sort=column, direction=None if not query.descending else "asc", page=None)
        natural_desc = column == "created"
        return link(sort=column, direction=None if natural_desc else "asc", page=None)

    return render_template(
        "registrations/desk/index.html",
        form=form,
        query=query,
        page=page,
        args=args,
        link=link,
        sort_link=sort_link,
        status_labels=desk_services.STATUS_LABELS,
        ownership_labels=desk_services.OWNERSHIP_LABELS,
        format_number=format_number,
    )


@bp.get("/export.<fmt>")
@staff_required
def export(fmt: str) -> Response:
    require(current_user, current_user.organisation, "view")
    if fmt not in exports.FORMATS:
        abort(404)
    _form, query = _filters()
    table = desk_services.export_table(current_user, query, fmt)
    return exports.response(table, fmt, stem="registrations")


# --- registering on behalf of a resident ------------------------------------------------------


@bp.get("/new")
@staff_required
def choose_action() -> str:
    require(current_user, current_user.organisation, "view")
    return render_template(
        "registrations/desk/choose_action.html",
        actions=desk_services.open_actions_of(current_user.organisation_id),
    )


@bp.route("/new/<int:action_id>", methods=["GET", "POST"])
@staff_required
def register(action_id: int) -> Any:
    action = desk_services.get_action(action_id)
    require(current_user, action, "manage")
    assert action is not None
    if not action.is_open_for_registration(utcnow()):
        flash(gettext("Registration for this action is closed."), "error")
        return redirect(url_for("registrations_desk.choose_action"))
    form = on_behalf_form_for(action)
    problem = None
    existing = None
    looked_up = address_looked_up(form, action.organisation_id)
    if not looked_up and form.validate_on_submit():
        try:
            registration = services.register(
                action, form.registration_input(form.language.data), actor=current_user
            )
        except services.RegistrationError as exc:
            if exc.code == "already_registered" and exc.registration is not None:
                existing = exc.registration
                problem = gettext("This address is already registered for this action.")
            else:
                problem = ERROR_MESSAGES.get(exc.code, ERROR_MESSAGES["no_consent"])()
        else:
            flash(
                gettext(
                    "The registration is saved. %(email)s gets the confirmation email.",
                    email=registration.user.email,
                ),
                "success",
            )
            return redirect(url_for("registrations_desk.detail", registration_id=registration.id))
    return render_template(
        "registrations/desk/register.html",
        action=action,
        form=form,
        problem=problem,
        existing=existing,
        looked_up=looked_up,
        address_lookup=address_lookup.enabled(action.organisation_id),
    )
