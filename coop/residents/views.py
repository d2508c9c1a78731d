"""The resident's own pages: their registrations with the work on each measure, changing the
details, withdrawing measures, and exporting or erasing their data.

The routes belong to the ``registrations`` blueprint (their names and addresses are those of the
resident's registrations); they are written here, above orders and payments, because what they
show and do reaches into every domain (the work on the home, the deposits, participation).
``coop.create_app`` imports this module before it registers the blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, logout_user

from coop.accounts.permissions import resident_required
from coop.core.authz import require
from coop.orders import fieldwork
from coop.participation import findable
from coop.registrations import services as registration_services
from coop.registrations.desk_services import DWELLING_LABELS, OWNERSHIP_LABELS
from coop.registrations.forms import EraseForm, WithdrawForm, details_form_for
from coop.registrations.views import ERROR_MESSAGES, bp
from coop.residents import export as data_export
from coop.residents import services, withdrawal
from coop.residents.next_steps import next_steps


def _home_labels() -> dict[str, Any]:
    return {"dwelling_labels": DWELLING_LABELS, "ownership_labels": OWNERSHIP_LABELS}


@bp.get("/my")
@resident_required
def mine() -> str:
    registrations = registration_services.registrations_of(current_user)
    return render_template(
        "registrations/mine.html",
        registrations=registrations,
        timelines={r.id: services.timeline(r) for r in registrations},
        plans={r.id: next_steps(r) for r in registrations},
        # What the resident can join around their homes, through participation's own service.
        take_part=findable.for_resident(current_user._get_current_object()),
        **_home_labels(),
    )


def _own_registration(registration_id: int, action: str) -> Any:
    registration = registration_services.get_registration(registration_id)
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
        can_edit=registration_services.can_edit(registration),
        can_withdraw=services.can_withdraw(registration),
        plan=next_steps(registration),
        **_home_labels(),
    )


@bp.route("/my/registrations/<int:registration_id>/edit", methods=["GET", "POST"])
@resident_required
def edit(registration_id: int) -> Any:
    registration = _own_registration(registration_id, "edit")
    if not registration_services.can_edit(registration):
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
            registration_services.update_details(
                registration,
                name=form.name.data,
                phone=form.phone.data or None,
                dwelling=form.dwelling(),
                measures=form.chosen_measures(),
            )
        except registration_services.RegistrationError as exc:
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
            except registration_services.RegistrationError as exc:
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
    registrations = registration_services.registrations_of(user)
    return render_template(
        "registrations/erase.html",
        form=form,
        registrations=registrations,
        plans={r.id: withdrawal.measure_plans(r, erasing=True) for r in registrations},
    )
