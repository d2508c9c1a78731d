"""The desk's installer registry: list, add, change, invite a user of the company, export."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from coop.accounts.permissions import staff_required
from coop.accounts.services import AccountError
from coop.core import exports
from coop.core.authz import require
from coop.core.formatting import format_euros
from coop.installers import page_hooks, services
from coop.installers.forms import (
    InstallerForm,
    InviteInstallerUserForm,
    installer_form_for,
)
from coop.installers.models import Installer

bp = Blueprint("installers_desk", __name__, url_prefix="/desk/installers")

ERROR_MESSAGES = {
    "kvk_taken": lambda: gettext("An installer with this KvK number is already registered."),
    "bad_service_area": lambda: gettext("The service area cannot be read."),
    "unknown_measure": lambda: gettext("Choose measures from the catalogue only."),
    "bad_price": lambda: gettext("Enter a price above € 0."),
    "bad_capacity": lambda: gettext("Enter a number of homes from 1 to 1000."),
}
INVITE_MESSAGES = {
    "email_in_use": lambda: gettext(
        "This email address already has an account. Use another address."
    ),
}


def _installer(installer_id: int, action: str = "manage") -> Installer:
    installer = services.get_installer(installer_id)
    require(current_user, installer, action)
    assert installer is not None
    return installer


def _input(form: InstallerForm) -> services.InstallerInput:
    return services.InstallerInput(
        company_name=form.company_name.data,
        kvk_number=form.kvk_number.data,
        contact_name=form.contact_name.data,
        email=form.email.data,
        phone=form.phone.data or None,
        certifications=form.certifications.data or "",
        city=form.city.data,
        service_area=form.service_area.data,
        offers={
            measure_id: services.OfferInput(unit_price_cents=price, homes_per_week=capacity)
            for measure_id, (price, capacity) in form.chosen_offers().items()
        },
    )


@bp.get("/")
@staff_required
def index() -> str:
    require(current_user, current_user.organisation, "view")
    return render_template(
        "installers/desk/index.html",
        installers=services.installers_of(current_user.organisation_id),
    )


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def create() -> Any:
    require(current_user, current_user.organisation, "view")
    measures = services.catalogue()
    form = installer_form_for(measures)
    problem = None
    if form.validate_on_submit():
        try:
            installer = services.create_installer(current_user, _input(form))
        except services.InstallerError as exc:
            problem = ERROR_MESSAGES[exc.code]()
            if exc.code == "kvk_taken":
                form.kvk_number.errors = [problem]
                problem = None
        else:
            flash(gettext("The installer is registered."), "success")
            return redirect(url_for("installers_desk.detail", installer_id=installer.id))
    return render_template("installers/desk/form.html", form=form, installer=None, problem=problem)


@bp.get("/<int:installer_id>")
@staff_required
def detail(installer_id: int) -> str:
    # The residents' reviews come from the orders domain (orders build on installers).
    installer = _installer(installer_id, "view")
    return render_template(
        "installers/desk/detail.html",
        installer=installer,
        users=services.users_of(installer),
        invite_form=InviteInstallerUserForm(formdata=None),
        review_group=page_hooks.reviews_of_installer.call(installer.id),
    )


@bp.route("/<int:installer_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(installer_id: int) -> Any:
    installer = _installer(installer_id)
    initial: dict[str, Any] = {
        "company_name": installer.company_name,
        "kvk_number": installer.kvk_number,
        "certifications": ", ".join(installer.certifications.split(","))
        if installer.certifications
        else "",
        "contact_name": installer.contact_name,
        "email": installer.email,
        "phone": installer.phone or "",
        "city": installer.city,
        "service_area": installer.service_area.replace(",", ", "),
    }
    for offer in installer.offers:
        initial[f"offer_{offer.measure_id}"] = True
        initial[f"price_{offer.measure_id}"] = format_euros(offer.unit_price_cents)
        initial[f"capacity_{offer.measure_id}"] = offer.homes_per_week
    form = installer_form_for(services.catalogue(), data=initial)
    problem = None
    if form.validate_on_submit():
        try:
            changed = services.update_installer(current_user, installer, _input(form))
        except services.InstallerError as exc:
            problem = ERROR_MESSAGES[exc.code]()
            if exc.code == "kvk_taken":
                form.kvk_number.errors = [problem]
                problem = None
        else:
            if changed:
                flash(gettext("Your changes are saved."), "success")
            else:
                flash(gettext("Nothing was changed."), "info")
            return redirect(url_for("installers_desk.detail", installer_id=installer.id))
    return render_template(
        "installers/desk/form.html", form=form, installer=installer, problem=problem
    )


@bp.route("/<int:installer_id>/invite", methods=["GET", "POST"])
@staff_required
def invite(installer_id: int) -> Any:
    installer = _installer(installer_id)
    form = InviteInstallerUserForm()
    problem = None
    if form.validate_on_submit():
        try:
            user = services.invite_user(current_user, installer, form.email.data, form.name.data)
        except AccountError as exc:
            message = INVITE_MESSAGES.get(exc.code)
            problem = (
                message()
                if message
                else gettext("The invitation could not be sent. Check the details and try again.")
            )
            if exc.code == "email_in_use":
                form.email.errors = [problem]
                problem = None
        else:
            flash(gettext("We have sent an invitation to %(email)s.", email=user.email), "success")
            return redirect(url_for("installers_desk.detail", installer_id=installer.id))
    return render_template(
        "installers/desk/invite.html", installer=installer, form=form, problem=problem
    )


@bp.get("/export.<fmt>")
@staff_required
def export(fmt: str) -> Response:
    require(current_user, current_user.organisation, "view")
    if fmt not in exports.FORMATS:
        abort(404)
    table = services.export_table(current_user, fmt)
    return exports.response(table, fmt, stem="installers")
