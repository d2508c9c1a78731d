"""The resident's pages: sign up for an action, and their own registrations."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_login import current_user, logout_user

from coop.accounts import services as accounts
from coop.actions import services as actions
from coop.core import address_lookup, ratelimit
from coop.core.authz import authorize, require, resident_required
from coop.core.forms import address_looked_up
from coop.core.time import utcnow
from coop.extensions import db, limiter
from coop.orders import fieldwork
from coop.registrations import export as data_export
from coop.registrations import services, withdrawal
from coop.registrations.forms import (
    EraseForm,
    WithdrawForm,
    details_form_for,
    registration_form_for,
)
from coop.registrations.next_steps import next_steps

bp = Blueprint("registrations", __name__)

ERROR_MESSAGES = {
    "action_not_open": lambda: gettext("Registration for this action is closed."),
    "no_consent": lambda: gettext(
        "You can only take part if you agree to the use of your details."
    ),
    "outside_area": lambda: gettext(
        "This action is not for your postcode. Look for actions in your area on the home page."
    ),
    "no_measures": lambda: gettext("Choose at least one measure."),
    "unknown_measure": lambda: gettext("Choose measures from this action only."),
    "quantity_out_of_range": lambda: gettext(
        "One of the quantities is not possible for a single home."
    ),
    "email_not_resident": lambda: gettext(
        "This email address belongs to a staff or installer account. Use your personal email address."
    ),
    "not_editable": lambda: gettext("This registration can no longer be changed."),
    "not_withdrawable": lambda: gettext(
        "This registration can no longer be withdrawn here. Contact the energy desk."
    ),
    "reason_too_long": lambda: gettext("Use at most 1000 characters."),
}


def _signup_limit() -> str:
    return str(current_app.config["RATELIMIT_SIGNUP"])


def _action_or_404(slug: str) -> Any:
    # The sign-up pages need the action's measures, not what its public page shows.
    action = actions.action_by_slug(slug[:80], page=False)
    if action is None or not authorize(current_user, action, "view"):
        abort(404)
    return action


# Sign-ups per client address, and per email address: counted once a form is complete (one
# sent back for a typing error does not count), and one over the limit is shown again with
# what was typed and how long to wait.
SIGNUPS = ratelimit.Limit("signup", "RATELIMIT_SIGNUP")
SIGNUPS_PER_EMAIL = ratelimit.Limit("signup-email", "RATELIMIT_PER_EMAIL")


def _signup_wait(email: str) -> int:
    client, address = request.remote_addr or "unknown", ratelimit.fingerprint(email)
    wait = max(SIGNUPS.wait(client), SIGNUPS_PER_EMAIL.wait(address))
    if not wait:
        SIGNUPS.count(client)
        SIGNUPS_PER_EMAIL.count(address)
    return wait


@bp.route("/actions/<slug>/register", methods=["GET", "POST"])
def register(slug: str) -> Any:
    action = _action_or_404(slug)
    if not action.is_open_for_registration(utcnow()):
        return render_template("registrations/closed.html", action=action)
    form = registration_form_for(action)
    problem = None
    # Without JavaScript: street and town left empty come back filled in from the BAG, to check.
    looked_up = address_looked_up(form, action.organisation_id)
    lookup_on = address_lookup.enabled(action.organisation_id)
    submitted = not looked_up and form.validate_on_submit()
    if submitted and (wait := _signup_wait(form.email.data)):
        problem = gettext(
            "Too many sign-ups came from this connection or for this email address in a short "
            "time. What you typed is kept: wait %(wait)s and send the form again.",
            wait=ratelimit.wait_text(wait),
        )
        return render_template(
            "registrations/register.html",
            action=action,
            form=form,
            problem=problem,
            looked_up=False,
            address_lookup=lookup_on,
        ), 429
    if submitted:
        data = form.registration_input(str(get_locale() or "nl"))
        try:
            services.register(action, data)
        except services.RegistrationError as exc:
            if exc.code == "already_registered" and exc.registration is not None:
                session["access_registration"] = exc.registration.id
                return render_template("registrations/already_registered.html", action=action)
            problem = ERROR_MESSAGES[exc.code]()
        else:
            # The resident's email as stored (found or created by its normal form); from the
            # form, as the registration's rows are expired by the commit.
            session["registered_email"] = accounts.normalise_email(data.email)
            return redirect(url_for("registrations.registered", slug=slug))
    return render_template(
        "registrations/register.html",
        action=action,
        form=form,
        problem=problem,
        looked_up=looked_up,
        address_lookup=lookup_on,
    )


@bp.get("/actions/<slug>/registered")
def registered(slug: str) -> str:
    action = _action_or_404(slug)
    return render_template(
        "registrations/registered.html", action=action, email=session.get("registered_email")
    )


@bp.post("/actions/<slug>/register/send-access")
@limiter.limit(_signup_limit)
def send_access(slug: str) -> Any:
    """For "this address is already registered": a login link to the email of that registration."""
    action = _action_or_404(slug)
    from flask_wtf import FlaskForm

    if not FlaskForm().validate_on_submit():
        abort(400)
    registration_id = session.pop("access_registration", None)
    registration = (
        services.get_registration(registration_id) if isinstance(registration_id, int) else None
    )
    if registration is not None and registration.action_id == action.id:
        services.resend_access(registration, str(get_locale() or "nl"))
    return redirect(url_for("accounts.check_email"))


def _home_labels() -> dict[str, Any]:
    from coop.registrations.desk_services import DWELLING_LABELS, OWNERSHIP_LABELS

    return {"dwelling_labels": DWELLING_LABELS, "ownership_labels": OWNERSHIP_LABELS}


@bp.get("/my")
@resident_required
def mine() -> str:
    # What the resident can join around their homes, through participation's own service.
    from coop.participation import findable

    registrations = services.registrations_of(current_user)
    return render_template(
        "registrations/mine.html",
        registrations=registrations,
        timelines={r.id: services.timeline(r) for r in registrations},
        plans={r.id: next_steps(r) for r in registrations},
        take_part=findable.for_resident(current_user._get_current_object()),
        **_home_labels(),
    )


def _own_registration(registration_id: int, action: str) -> Any:
    registration = services.get_registration(registration_id)
    require(current_user, registration, action)
    return registration


@bp.get("/my/registrations/<int:registration_id>")
@resident_required
def detail(registration_id: int) -> str:
    registration = _own_registration(registration_id, "view")
    return render_template(
        "registrations/detail.html",
        registration=registration,
        timeline=services.timeline(registration),
        # The work on the home, per measure: installer, survey, quote, installation.
        lines=[line for line in fieldwork.lines_of_registration(registration) if line.current],
        can_edit=services.can_edit(registration),
        can_withdraw=services.can_withdraw(registration),
        plan=next_steps(registration),
        **_home_labels(),
    )


@bp.route("/my/registrations/<int:registration_id>/edit", methods=["GET", "POST"])
@resident_required
def edit(registration_id: int) -> Any:
    registration = _own_registration(registration_id, "edit")
    if not services.can_edit(registration):
        flash(ERROR_MESSAGES["not_editable"](), "error")
        return redirect(url_for("registrations.detail", registration_id=registration.id))
    household = registration.household
    initial: dict[str, Any] = {
        "name": registration.user.name,
        "phone": registration.user.phone,
        "dwelling_type": household.dwelling_type.value,
        "build_year": household.build_year,
        "ownership": household.ownership.value,
        "energy_label": household.energy_label or "",
    }
    for registration_measure in registration.measures:
        if registration_measure.withdrawn_at is not None:
            continue  # withdrawn: not ticked; ticking it again asks for it again
        initial[f"measure_{registration_measure.action_measure_id}"] = True
        initial[f"quantity_{registration_measure.action_measure_id}"] = (
            registration_measure.quantity
        )
    form = details_form_for(registration.action, data=initial)
    problem = None
    if form.validate_on_submit():
        try:
            services.update_details(
                registration,
                name=form.name.data,
                phone=form.phone.data or None,
                dwelling=form.dwelling(),
                measures=form.chosen_measures(),
            )
        except services.RegistrationError as exc:
            problem = ERROR_MESSAGES[exc.code]()
        else:
            flash(gettext("Your changes are saved."), "success")
            return redirect(url_for("registrations.detail", registration_id=registration.id))
    return render_template(
        "registrations/edit.html", registration=registration, form=form, problem=problem
    )


@bp.route("/my/registrations/<int:registration_id>/withdraw", methods=["GET", "POST"])
@resident_required
def withdraw(registration_id: int) -> Any:
    """Per measure: what withdrawing it does (which deposit is cancelled, refunded or kept), and
    a choice among the measures that can be withdrawn; only those are offered."""
    registration = _own_registration(registration_id, "withdraw")
    plans = withdrawal.measure_plans(registration)
    offered = [plan for plan in plans if plan.withdrawable]
    if not offered:
        flash(ERROR_MESSAGES["not_withdrawable"](), "error")
        return redirect(url_for("registrations.detail", registration_id=registration.id))
    # One measure to withdraw: no choice to make. Several: the resident ticks which.
    choose = len(offered) > 1
    form = WithdrawForm()
    problem = None
    if form.validate_on_submit():
        chosen = _chosen_measures(form, offered) if choose else [offered[0].measure.id]
        if chosen:
            try:
                done = services.withdraw(
                    registration, form.reason.data, actor=current_user, measure_ids=chosen
                )
            except services.RegistrationError as exc:
                db.session.rollback()
                problem = ERROR_MESSAGES.get(exc.code, ERROR_MESSAGES["not_withdrawable"])()
            else:
                if done.registration_withdrawn:
                    flash(
                        gettext(
                            "Your registration is withdrawn. We have sent you a confirmation "
                            "by email."
                        ),
                        "success",
                    )
                else:
                    flash(
                        gettext(
                            "What you chose is withdrawn; the rest of your registration goes "
                            "on. We have sent you a confirmation by email."
                        ),
                        "success",
                    )
                return redirect(url_for("registrations.detail", registration_id=registration.id))
    return render_template(
        "registrations/withdraw.html",
        registration=registration,
        form=form,
        plans=plans,
        offered=offered,
        choose=choose,
        going=[plan for plan in plans if plan.going],
        problem=problem,
    )


def _chosen_measures(form: WithdrawForm, offered: list[withdrawal.MeasurePlan]) -> list[int]:
    """The ticked measures; an error on the field when none, or one not offered, is ticked."""
    allowed = {plan.measure.id for plan in offered}
    raw = [value for value in (form.measures.data or []) if value]
    chosen = [int(value) for value in raw if value.isdigit() and int(value) in allowed]
    if not raw:
        form.measures.errors = [gettext("Choose at least one measure to withdraw.")]
        return []
    if len(chosen) != len(raw):
        form.measures.errors = [gettext("Choose among the measures that can be withdrawn.")]
        return []
    return chosen


@bp.get("/my/export")
@resident_required
def export() -> Response:
    require(current_user, current_user._get_current_object(), "export")
    return Response(
        data_export.export_zip(current_user._get_current_object()),
        mimetype="application/zip",
        headers={"Content-Disposition": 'attachment; filename="coop-my-data.zip"'},
    )


@bp.route("/my/erase", methods=["GET", "POST"])
@resident_required
def erase() -> Any:
    user = current_user._get_current_object()
    require(current_user, user, "erase")
    form = EraseForm()
    if form.validate_on_submit():
        logout_user()
        services.erase_resident(user)
        flash(gettext("Your account and all your data are erased."), "success")
        return redirect(url_for("actions.index"))
    # Before the resident confirms: exactly what the erasure ends, per registration and measure.
    registrations = services.registrations_of(user)
    return render_template(
        "registrations/erase.html",
        form=form,
        registrations=registrations,
        plans={r.id: withdrawal.measure_plans(r, erasing=True) for r in registrations},
    )
