"""The emails after a withdrawal: to the resident (what ended, what goes on, what became of the
deposits) and to the action's staff. Enqueued by ``coop.residents.withdrawal``; the job names
stay those of the registrations they are about."""

from __future__ import annotations

from typing import Any

from flask import current_app

from coop.accounts.mail import email_user
from coop.accounts.models import LoginPurpose, User
from coop.accounts.services import issue_login_token, login_link
from coop.actions.models import Action
from coop.core.jobs import job
from coop.extensions import db
from coop.orders.models import OrderLine
from coop.payments.models import Payment
from coop.registrations.jobs import send_to_household
from coop.registrations.models import Registration, StatusChange
from coop.residents import withdrawal
from coop.residents.withdrawal import MeasurePlan


@job("registrations.send_withdrawn")
def send_withdrawn(
    registration_id: int, status_change_id: int, measure_ids: list[int] | None = None
) -> None:
    """The registration is withdrawn (every measure still going was): with what became of the
    deposits of the measures withdrawn."""
    registration = db.session.get(Registration, registration_id)
    change = db.session.get(StatusChange, status_change_id)
    if registration is None or change is None:
        return
    send_to_household(
        registration,
        "registration_withdrawn",
        f"registration-withdrawn:{change.id}",
        reason=change.note,
        withdrawn=[
            p for p in withdrawal.measure_plans(registration) if p.measure.id in (measure_ids or [])
        ],
    )


@job("registrations.send_measures_withdrawn")
def send_measures_withdrawn(registration_id: int, change_ids: list[int], token: str) -> None:
    """Some measures are withdrawn and the others go on."""
    registration = db.session.get(Registration, registration_id)
    if registration is None or not change_ids:
        return
    withdrawn = _withdrawn_plans(registration, change_ids)
    if not withdrawn:
        return
    withdrawn_ids = {p.measure.id for p in withdrawn}
    send_to_household(
        registration,
        "measures_withdrawn",
        f"measures-withdrawn:{change_ids[0]}:{token}",
        reason=withdrawn[0].measure.withdrawal_reason,
        withdrawn=withdrawn,
        going=[
            p
            for p in withdrawal.measure_plans(registration)
            if p.measure.id not in withdrawn_ids and p.step not in withdrawal.ENDED_STEPS
        ],
        link=login_link(
            issue_login_token(
                registration.user,
                LoginPurpose.LOGIN,
                next_path=f"/my/registrations/{registration.id}",
            )
        ),
    )


def _withdrawn_plans(registration: Registration, change_ids: list[int]) -> list[MeasurePlan]:
    changes = [db.session.get(StatusChange, i) for i in change_ids]
    wanted = {c.registration_measure_id for c in changes if c is not None}
    return [p for p in withdrawal.measure_plans(registration) if p.measure.id in wanted]


@job("registrations.send_withdrawal_to_desk")
def send_withdrawal_to_desk(
    user_id: int,
    action_id: int,
    registration_id: int | None,
    line_ids: list[int],
    payment_ids: list[int],
    kept_line_ids: list[int],
    kept_payment_ids: list[int],
    token: str,
) -> None:
    """Tell one of the action's staff what a withdrawal (or an erasure, ``registration_id``
    None) ended: the order lines, the deposits, and the installed work kept without the
    person. Reads only rows that outlive an erasure."""
    user = db.session.get(User, user_id)
    action = db.session.get(Action, action_id)
    if user is None or not user.is_active or action is None:
        return
    registration = (
        db.session.get(Registration, registration_id) if registration_id is not None else None
    )
    # Erased meanwhile: the email still says what ended, without the address.
    email_user(
        user,
        "withdrawal_desk",
        key=f"withdrawal-desk:{token}:{user.id}",
        action=action,
        registration=registration,
        household=registration.household if registration is not None else None,
        lines=_rows(OrderLine, line_ids),
        payments=_rows(Payment, payment_ids),
        kept_lines=_rows(OrderLine, kept_line_ids),
        kept_payments=_rows(Payment, kept_payment_ids),
        footer="work",
        link=f"{current_app.config['BASE_URL']}/desk/registrations/{registration.id}"
        if registration is not None
        else f"{current_app.config['BASE_URL']}/desk/actions/{action.id}/payments",
    )


def _rows(model: Any, ids: list[int]) -> list[Any]:
    return [row for row in (db.session.get(model, i) for i in ids) if row is not None]
