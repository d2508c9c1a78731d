"""Figures for the staff's start page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from coop.actions.models import Action
from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus


@dataclass(frozen=True)
class ActionFigures:
    action: Action
    by_status: dict[RegistrationStatus, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def organisation_overview(organisation_id: int) -> list[ActionFigures]:
    actions = db.session.scalars(
        select(Action)
        .where(Action.organisation_id == organisation_id)
        .order_by(Action.registration_closes_at)
    ).all()
    counts: dict[int, dict[RegistrationStatus, int]] = {a.id: {} for a in actions}
    rows = db.session.execute(
        select(Registration.action_id, Registration.status, func.count())
        .join(Action, Action.id == Registration.action_id)
        .where(Action.organisation_id == organisation_id)
        .group_by(Registration.action_id, Registration.status)
    ).all()
    for action_id, status, count in rows:
        counts[action_id][status] = count
    return [ActionFigures(action, counts[action.id]) for action in actions]
