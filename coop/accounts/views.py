"""Login and logout: magic links for residents, passwords for staff and installers."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from coop.accounts import services
from coop.accounts.forms import LoginLinkForm, LogoutForm, PasswordLoginForm, UseLinkForm
from coop.accounts.models import LoginPurpose, Role
from coop.core.web import safe_next
from coop.extensions import db, limiter
from coop.registrations import services as registrations

bp = Blueprint("accounts", __name__)


def _login_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


def home_for(role: Role) -> str:
    if role is Role.STAFF:
        return url_for("desk.home")
    if role is Role.INSTALLER:
        return url_for("desk.installer_home")
    return url_for("registrations.mine")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response:
    form = LoginLinkForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        services.request_login_link(
            form.email.data,
            str(get_locale() or "nl"),
            next_path=safe_next(form.next.data, "") or None,
        )
        return redirect(url_for("accounts.check_email"))
    return render_template("accounts/login.html", form=form)


@bp.get("/login/sent")
def check_email() -> str:
    return render_template("accounts/check_email.html")


@bp.route("/login/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def use_link(token: str) -> str | Response | tuple[str, int]:
    form = UseLinkForm()
    if request.method == "GET":
        return render_template("accounts/use_link.html", form=form, token=token)
    if not form.validate_on_submit():
        return render_template("accounts/use_link.html", form=form, token=token), 400
    result = services.redeem_login_link(token)
    if isinstance(result, services.LinkProblem):
        db.session.rollback()
        return render_template("accounts/link_problem.html", problem=result.value), 400
    confirmed = False
    target = safe_next(result.token.next_path, "")
    if result.token.purpose is LoginPurpose.CONFIRM_REGISTRATION and result.token.registration_id:
        registration = registrations.get_registration(result.token.registration_id)
        if registration is not None:
            confirmed = registrations.confirm(registration)
            target = url_for("registrations.detail", registration_id=registration.id)
    db.session.commit()
    login_user(result.user)
    if confirmed:
        flash(gettext("Thank you: your registration is confirmed."), "success")
    else:
        flash(gettext("You are logged in."), "success")
    return redirect(target or home_for(result.user.role))


@bp.route("/staff/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def staff_login() -> str | Response:
    form = PasswordLoginForm()
    error = None
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None and user.role in (Role.STAFF, Role.INSTALLER):
            login_user(user)
            return redirect(home_for(user.role))
        # The same answer for an unknown email and a wrong password.
        error = gettext("The email address or password is not correct.")
    return render_template("accounts/staff_login.html", form=form, error=error)


@bp.post("/logout")
@login_required
def logout() -> Response:
    form = LogoutForm()
    if form.validate_on_submit():
        logout_user()
        flash(gettext("You are logged out."), "success")
    return redirect(url_for("actions.index"))


@bp.app_context_processor
def _logout_form() -> dict[str, object]:
    # Emails are rendered outside a request (in jobs): no user, no form.
    if not has_request_context() or not current_user.is_authenticated:
        return {"logout_form": None}
    return {"logout_form": LogoutForm()}
