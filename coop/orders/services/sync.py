"""A registration's status follows its order lines: the summary of its measures' steps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from coop.accounts.models import User
from coop.extensions import db
from coop.orders.models import (
    OrderLine,
)
from coop.orders.services.rules import _LINE_TO_REGISTRATION, MATCHABLE
from coop.registrations import services as registrations
from coop.registrations.models import (
    JOURNEY,
    Registration,
    RegistrationStatus,
)

# --- a registration's status follows its order lines -------------------------------------------


def current_lines(registration: Registration) -> list[OrderLine]:
    return list(
        db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id, OrderLine.current.is_(True))
            .order_by(OrderLine.id)
        )
    )


def sync_registration(
    registration: Registration,
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Set the registration's status to where its least advanced measure is: a home is
    "installed" once all its work is installed. True when the status changed."""
    return bool(sync_registrations([registration], actor=actor, now=now, note=note))


def sync_registrations(
    wanted: Sequence[Registration],
    *,
    actor: User | None,
    now: datetime,
    note: str | None = None,
) -> list[Registration]:
    """``sync_registration`` for many at once, with one query for their lines (an approval
    moves thousands). Returns the registrations whose status changed."""
    lines: dict[int, dict[int, OrderLine]] = defaultdict(dict)
    ids = [r.id for r in wanted]
    for start in range(0, len(ids), 500):
        for line in db.session.scalars(
            select(OrderLine).where(
                OrderLine.registration_id.in_(ids[start : start + 500]),
                OrderLine.current.is_(True),
            )
        ):
            if line.registration_id is not None and line.registration_measure_id is not None:
                lines[line.registration_id][line.registration_measure_id] = line
    changed = []
    with db.session.no_autoflush:
        for registration in wanted:
            if registration.status not in (*MATCHABLE, RegistrationStatus.COMPLETED):
                continue
            target = _status_from_lines(registration, lines[registration.id])
            if target is not registration.status:
                registrations.change_status(registration, target, actor=actor, now=now, note=note)
                changed.append(registration)
    return changed


def _status_from_lines(
    registration: Registration, lines: dict[int, OrderLine]
) -> RegistrationStatus:
    steps: list[RegistrationStatus] = []
    for wish in registration.measures:
        if wish.withdrawn_at is not None:
            continue  # withdrawn on its own: no longer part of the household's progress
        line = lines.get(wish.id)
        if line is None:
            steps.append(RegistrationStatus.CONFIRMED)
        elif line.status in _LINE_TO_REGISTRATION:
            steps.append(_LINE_TO_REGISTRATION[line.status])
        # a declined or withdrawn measure no longer holds the home back
    return min(steps, key=JOURNEY.index) if steps else RegistrationStatus.DECLINED
