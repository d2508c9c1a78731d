"""Login and logout: magic links for residents, passwords for staff and installers."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from werkzeug.wrappers import Response as BaseResponse

from coop.accounts import services, sessions
from coop.accounts.forms import (
    ButtonForm,
    ChangePasswordForm,
    CodeForm,
    InviteForm,
    LoginLinkForm,
    LogoutForm,
    PasswordLoginForm,
    SetPasswordForm,
    UseLinkForm,
)
from coop.accounts.models import LoginPurpose, Role
from coop.accounts.permissions import role_required, staff_required
from coop.core import ratelimit
from coop.core.authz import require
from coop.core.web import mark_issued_link, safe_next
from coop.extensions import db, limiter

bp = Blueprint("accounts", __name__)

# Login links sent to one email address, whoever asks.
LINKS_PER_EMAIL = ratelimit.Limit("login-link-email", "RATELIMIT_PER_EMAIL")


def _login_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


def _public_limit() -> str:
    return str(current_app.config["RATELIMIT_SIGNUP"])


def _failed(response: BaseResponse) -> bool:
    """A login step that did not go on (it answers with its form again, or an error): only
    those count towards the limit per address, so an office behind one address logging in all
    day is never stopped."""
    return response.status_code != 302


def _accepted(response: BaseResponse) -> bool:
    return response.status_code == 302


def _too_many(exc: services.TooManyAttemptsError) -> str:
    return str(
        gettext(
            "Too many attempts for this account. Wait %(wait)s and try again.",
            wait=ratelimit.wait_text(exc.wait),
        )
    )


def home_for(role: Role) -> str:
    if role is Role.STAFF:
        return url_for("desk.home")
    if role is Role.INSTALLER:
        return url_for("portal.home")
    return url_for("registrations.mine")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_public_limit, methods=["POST"], deduct_when=_accepted)
def login() -> str | Response:
    form = LoginLinkForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        address = ratelimit.fingerprint(form.email.data)
        # Over the limit for this address, nothing is sent, and the answer is the same.
        if not LINKS_PER_EMAIL.wait(address):
            LINKS_PER_EMAIL.count(address)
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


def _link_problem(problem: services.LinkProblem) -> tuple[str, int]:
    if problem is not services.LinkProblem.INVALID:
        mark_issued_link()
    return render_template("accounts/link_problem.html", problem=problem.value), 400


# The routes with a token or key in their address (login links, invitations...) are limited to
# RATELIMIT_LOGIN failed uses per client address in coop.core.web, generated from the URL map.
@bp.route("/login/<token>", methods=["GET", "POST"])
def use_link(token: str) -> str | Response | tuple[str, int]:
    form = UseLinkForm()
    if request.method == "GET" or not form.validate_on_submit():
        # Looking changes nothing; a link that can no longer work says so at once.
        checked = services.check_login_link(token)
        if isinstance(checked, services.LinkProblem):
            return _link_problem(checked)
        page = render_template(
            "accounts/use_link.html",
            form=form,
            token=token,
            confirming=checked.purpose is LoginPurpose.CONFIRM_REGISTRATION,
        )
        return page if request.method == "GET" else (page, 400)
    result = services.redeem_login_link(token)
    if isinstance(result, services.LinkProblem):
        db.session.rollback()
        return _link_problem(result)
    confirmed = False
    target = safe_next(result.token.next_path, "")
    if result.token.purpose is LoginPurpose.CONFIRM_REGISTRATION and result.token.registration_id:
        # Registrations build on accounts: they confirm the registration the link was sent for.
        confirmation = services.registration_confirmed.call(result.token.registration_id)
        if confirmation is not None:
            confirmed, target = confirmation
    db.session.commit()
    sessions.start(result.user)
    if confirmed:
        flash(gettext("Thank you: your registration is confirmed."), "success")
    else:
        flash(gettext("You are logged in."), "success")
    return redirect(target or home_for(result.user.role))


@bp.route("/staff/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def staff_login() -> str | Response | tuple[str, int]:
    form = PasswordLoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.TooManyAttemptsError as exc:
            return render_template(
                "accounts/staff_login.html", form=form, error=_too_many(exc)
            ), 429
        if user is not None and user.role in (Role.STAFF, Role.INSTALLER):
            if services.totp_enabled(user):
                # Only a right password gets this far; the code step finishes the login.
                session[_PENDING_2FA] = {"user_id": user.id, "at": int(time.time())}
                return redirect(url_for("accounts.staff_login_code"))
            sessions.start(user)
            return redirect(home_for(user.role))
        # The same answer for an unknown email and a wrong password.
        error = gettext("The email address or password is not correct.")
    return render_template("accounts/staff_login.html", form=form, error=error)


@bp.post("/logout")
@login_required
def logout() -> Response:
    form = LogoutForm()
    if form.validate_on_submit():
        # Every session of the account ends: also one on another device, or a copied cookie.
        services.log_out(current_user._get_current_object())
        sessions.end_here()
        flash(gettext("You are logged out."), "success")
    return redirect(url_for("actions.index"))


@bp.app_context_processor
def _logout_form() -> dict[str, object]:
    # Emails are rendered outside a request (in jobs): no user, no form.
    if not has_request_context() or not current_user.is_authenticated:
        return {"logout_form": None}
    return {"logout_form": LogoutForm()}


# --- two-factor login: the code step ----------------------------------------------------------

_PENDING_2FA = "pending_2fa"


def _pending_user_id() -> int | None:
    """The user whose password was right a moment ago, while the code step may still follow."""
    pending = session.get(_PENDING_2FA)
    if not isinstance(pending, dict):
        return None
    user_id, at = pending.get("user_id"), pending.get("at")
    if not isinstance(user_id, int) or not isinstance(at, int):
        return None
    if time.time() - at > services.SECOND_STEP_TTL.total_seconds():
        return None
    return user_id


@bp.route("/staff/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def staff_login_code() -> str | Response | tuple[str, int]:
    user_id = _pending_user_id()
    if user_id is None:
        session.pop(_PENDING_2FA, None)
        flash(gettext("Log in with your email address and password first."), "error")
        return redirect(url_for("accounts.staff_login"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            user = services.verify_second_factor(user_id, form.code.data)
        except services.TooManyAttemptsError as exc:
            return render_template(
                "accounts/staff_login_code.html", form=form, error=_too_many(exc)
            ), 429
        if user is not None:
            sessions.start(user)  # a new session: the pending step is gone with the old one
            return redirect(home_for(user.role))
        error = gettext("The code is not correct. Try the newest code from your app.")
    return render_template("accounts/staff_login_code.html", form=form, error=error)


# --- invitations: choose a password -----------------------------------------------------------

_PASSWORD_MESSAGES = {
    "password_too_short": _l("Use at least 12 characters."),
    "password_is_email": _l("Do not use your email address as your password."),
    "password_common": _l(
        "This password is on lists of passwords that leaked or are used a lot (or is built "
        "on your name, email address or a common word), so it is tried first. Choose another."
    ),
    "password_guessable": _l(
        "This password is too easy to guess: avoid names, dates, words with a number and "
        "keyboard rows. A few unrelated words make a strong password."
    ),
    "password_unchanged": _l("Choose a password other than your current one."),
}


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> str | Response | tuple[str, int]:
    invitation = services.check_invitation(token)
    db.session.rollback()
    if isinstance(invitation, services.LinkProblem):
        if invitation is not services.LinkProblem.INVALID:
            mark_issued_link()
        return render_template("accounts/invitation_problem.html", problem=invitation.value), 400
    form = SetPasswordForm()
    form.email = invitation.user.email
    if form.validate_on_submit():
        try:
            result = services.accept_invitation(token, form.password.data)
        except services.AccountError as exc:
            form.password.errors = [_PASSWORD_MESSAGES.get(exc.code, str(exc.code))]
        else:
            if isinstance(result, services.LinkProblem):
                return render_template(
                    "accounts/invitation_problem.html", problem=result.value
                ), 400
            sessions.start(result)
            flash(gettext("Your password is set and you are logged in."), "success")
            return redirect(home_for(result.role))
    return render_template(
        "accounts/accept_invitation.html", form=form, invited=invitation.user, token=token
    )


# --- the team page: desk admins invite colleagues ---------------------------------------------


@bp.route("/desk/team", methods=["GET", "POST"])
@staff_required
def team() -> str | Response:
    organisation = current_user.organisation
    require(current_user, organisation, "invite")
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invited = services.invite_user(
                current_user,
                form.email.data,
                form.name.data,
                Role.STAFF,
                organisation_id=organisation.id,
                is_desk_admin=form.is_desk_admin.data,
            )
        except services.EmailInUseError:
            form.email.errors = [
                gettext("This email address already has an account. Use another address.")
            ]
        else:
            flash(gettext("Invitation sent to %(email)s.", email=invited.email), "success")
            return redirect(url_for("accounts.team"))
    return render_template(
        "accounts/team.html",
        form=form,
        members=services.team_of(organisation.id),
        resend_form=ButtonForm(),
        totp_enabled=services.totp_enabled,
    )


@bp.post("/desk/team/<int:user_id>/resend")
@staff_required
def resend_invitation(user_id: int) -> Response:
    organisation = current_user.organisation
    require(current_user, organisation, "invite")
    member = services.staff_member(organisation.id, user_id)
    if member is None:
        abort(404)
    form = ButtonForm()
    if form.validate_on_submit():
        try:
            services.resend_invitation(current_user, member)
        except services.AccountError:
            flash(gettext("%(name)s has already chosen a password.", name=member.name), "error")
        else:
            flash(gettext("A new invitation is sent to %(email)s.", email=member.email), "success")
    return redirect(url_for("accounts.team"))


# --- security: two-factor login for staff and installers --------------------------------------

_staff_or_installer = role_required(Role.STAFF, Role.INSTALLER)


def _security_page(form: CodeForm | None = None, error: str | None = None) -> str:
    require(current_user, current_user, "security")
    user = current_user._get_current_object()
    setting_up = bool(user.totp_secret) and not services.totp_enabled(user)
    return render_template(
        "accounts/security.html",
        enabled=services.totp_enabled(user),
        setting_up=setting_up,
        secret=user.totp_secret if setting_up else None,
        uri=services.totp_uri(user) if setting_up else None,
        code_form=form or CodeForm(),
        start_form=ButtonForm(),
        error=error,
    )


@bp.get("/account/security")
@_staff_or_installer
def security() -> str:
    return _security_page()


@bp.post("/account/security/setup")
@_staff_or_installer
def security_setup() -> Response:
    require(current_user, current_user, "security")
    form = ButtonForm()
    if form.validate_on_submit() and not services.totp_enabled(current_user):
        services.begin_totp_setup(current_user._get_current_object())
    return redirect(url_for("accounts.security"))


@bp.post("/account/security/confirm")
@limiter.limit(_login_limit, deduct_when=_failed)
@_staff_or_installer
def security_confirm() -> str | Response | tuple[str, int]:
    require(current_user, current_user, "security")
    user = current_user._get_current_object()
    form = CodeForm()
    if not user.totp_secret or services.totp_enabled(user):
        return redirect(url_for("accounts.security"))
    if form.validate_on_submit():
        try:
            confirmed = services.confirm_totp(user, form.code.data)
        except services.TooManyAttemptsError as exc:
            form.code.errors = [_too_many(exc)]
            return _security_page(form), 429
        if confirmed:
            # Every other session of the account has ended; this one goes on.
            sessions.stamp(user)
            flash(gettext("Two-factor login is on."), "success")
            return redirect(url_for("accounts.security"))
        form.code.errors = [gettext("The code is not correct. Try the newest code from your app.")]
    return _security_page(form)


@bp.post("/account/security/disable")
@limiter.limit(_login_limit, deduct_when=_failed)
@_staff_or_installer
def security_disable() -> str | Response | tuple[str, int]:
    require(current_user, current_user, "security")
    user = current_user._get_current_object()
    form = CodeForm()
    if not services.totp_enabled(user):
        return redirect(url_for("accounts.security"))
    if form.validate_on_submit():
        try:
            disabled = services.disable_totp(user, form.code.data)
        except services.TooManyAttemptsError as exc:
            form.code.errors = [_too_many(exc)]
            return _security_page(form), 429
        if disabled:
            sessions.stamp(user)
            flash(gettext("Two-factor login is off."), "success")
            return redirect(url_for("accounts.security"))
        form.code.errors = [gettext("The code is not correct. Try the newest code from your app.")]
    return _security_page(form)


# --- the account's own password ---------------------------------------------------------------


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@_staff_or_installer
def change_password() -> str | Response | tuple[str, int]:
    require(current_user, current_user, "security")
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    form.email = user.email
    status = 200
    if form.validate_on_submit():
        try:
            services.change_password(user, form.current.data, form.password.data)
        except services.TooManyAttemptsError as exc:
            form.current.errors = [_too_many(exc)]
            status = 429
        except services.AccountError as exc:
            if exc.code == "wrong_password":
                form.current.errors = [gettext("This is not your current password.")]
            else:
                form.password.errors = [_PASSWORD_MESSAGES.get(exc.code, str(exc.code))]
        else:
            # Every session of the account has ended, a copied one too; this one goes on.
            sessions.stamp(user)
            flash(
                gettext(
                    "Your password is changed. Where else you were logged in, you are logged out."
                ),
                "success",
            )
            return redirect(url_for("accounts.security"))
    return render_template("accounts/change_password.html", form=form), status


# --- ending access: deactivating staff and installer accounts ---------------------------------


def _account_back(user: object) -> str:
    installer_id = getattr(user, "installer_id", None)
    if installer_id is not None:
        return url_for("installers_desk.detail", installer_id=installer_id)
    return url_for("accounts.team")


def _set_active(user_id: int, active: bool) -> Response:
    user = services.account(user_id)
    if user is None or not services.may_deactivate(current_user._get_current_object(), user):
        abort(404)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if services.set_active(current_user._get_current_object(), user, active):
        flash(
            gettext("%(name)s can log in again.", name=user.name)
            if active
            else gettext(
                "The account of %(name)s is deactivated: logged out everywhere, and logging in "
                "no longer works.",
                name=user.name,
            ),
            "success",
        )
    return redirect(_account_back(user))


@bp.app_template_global()
def may_deactivate(actor: object, user: object) -> bool:
    """For the team page and the installer's page: whether to offer (de)activating ``user``."""
    return services.may_deactivate(actor, user)  # type: ignore[arg-type]


@bp.post("/desk/users/<int:user_id>/deactivate")
@staff_required
def deactivate(user_id: int) -> Response:
    return _set_active(user_id, False)


@bp.post("/desk/users/<int:user_id>/reactivate")
@staff_required
def reactivate(user_id: int) -> Response:
    return _set_active(user_id, True)
