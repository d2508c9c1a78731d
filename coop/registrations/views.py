"""The resident's pages: sign up for an action, and their own registrations."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_login import current_user

from coop.accounts import services as accounts
from coop.actions import services as actions
from coop.core import address_lookup, ratelimit
from coop.core.authz import authorize
from coop.core.forms import address_looked_up
from coop.core.time import utcnow
from coop.extensions import limiter
from coop.registrations import services
from coop.registrations.forms import (
    registration_form_for,
)

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
    return ratelimit.take((SIGNUPS, client), (SIGNUPS_PER_EMAIL, address))


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
