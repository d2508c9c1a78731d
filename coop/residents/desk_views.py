"""The staff's page of one registration: its measures and what withdrawing each would do, its
history, notes and emails; adding a note, and withdrawing measures on the resident's behalf.

The routes belong to the ``registrations_desk`` blueprint; they are written here, above orders
and payments, because the page shows the work and deposits of each measure and the withdrawal
ends them (``coop.residents.withdrawal``). ``coop.create_app`` imports this module before it
registers the blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from coop.accounts.permissions import staff_required
from coop.registrations import desk_services
from coop.registrations import services as registration_services
from coop.registrations.desk_forms import DeskWithdrawForm, NoteForm
from coop.registrations.desk_views import bp, registration_or_404
from coop.registrations.models import Registration
from coop.residents import services, withdrawal


def _render_detail(
    registration: Registration,
    note_form: NoteForm,
    status: int = 200,
    withdraw_form: DeskWithdrawForm | None = None,
    problem: str | None = None,
) -> Any:
    return (
        render_template(
            "registrations/desk/detail.html",
            registration=registration,
            plans=withdrawal.measure_plans(registration),
            withdraw_form=withdraw_form or DeskWithdrawForm(formdata=None),
            withdraw_problem=problem,
            history=desk_services.history(registration),
            notes=desk_services.notes_of(registration),
            emails=desk_services.emails_of(registration),
            note_form=note_form,
            status_labels=desk_services.STATUS_LABELS,
            ownership_labels=desk_services.OWNERSHIP_LABELS,
            dwelling_labels=desk_services.DWELLING_LABELS,
        ),
        status,
    )


@bp.get("/<int:registration_id>")
@staff_required
def detail(registration_id: int) -> Any:
    registration = registration_or_404(registration_id, "view")
    return _render_detail(registration, NoteForm(formdata=None))


@bp.post("/<int:registration_id>/notes")
@staff_required
def add_note(registration_id: int) -> Any:
    registration = registration_or_404(registration_id)
    form = NoteForm()
    if form.validate_on_submit():
        try:
            desk_services.add_note(current_user, registration, form.body.data)
        except desk_services.NoteError:
            form.body.errors = [gettext("Write the note first.")]
        else:
            flash(gettext("The note is added."), "success")
            return redirect(
                url_for("registrations_desk.detail", registration_id=registration.id)
                + "#notes-title"
            )
    return _render_detail(registration, form)


@bp.post("/<int:registration_id>/withdraw")
@staff_required
def withdraw(registration_id: int) -> Any:
    """Withdraw measures on the resident's behalf, through the same service and rules as the
    resident's own page (an installed measure never; an accepted one within its cooling-off
    period)."""
    registration = registration_or_404(registration_id)
    form = DeskWithdrawForm()
    offered = {p.measure.id for p in withdrawal.measure_plans(registration) if p.withdrawable}
    problem = None
    if form.validate_on_submit():
        raw = [value for value in (form.measures.data or []) if value]
        chosen = [int(v) for v in raw if v.isdigit() and int(v) in offered]
        if not raw:
            form.measures.errors = [gettext("Choose at least one measure to withdraw.")]
        elif len(chosen) != len(raw):
            form.measures.errors = [gettext("Choose among the measures that can be withdrawn.")]
        else:
            try:
                done = services.withdraw(
                    registration, form.reason.data, actor=current_user, measure_ids=chosen
                )
            except registration_services.RegistrationError:
                problem = gettext(
                    "This can no longer be withdrawn: the measure moved on meanwhile. Look at "
                    "its progress below."
                )
            else:
                flash(
                    gettext("The registration is withdrawn.")
                    if done.registration_withdrawn
                    else gettext("The chosen measures are withdrawn; the others go on."),
                    "success",
                )
                return redirect(
                    url_for("registrations_desk.detail", registration_id=registration.id)
                )
    return _render_detail(
        registration, NoteForm(formdata=None), withdraw_form=form, problem=problem
    )
