"""A deposit's history, and the only way its status changes (``models.TRANSITIONS``): every move
is a ``PaymentChange``; a deposit that needs a person is flagged."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from coop.accounts.models import Role, User
from coop.core import jobs
from coop.extensions import db
from coop.payments.models import (
    TRANSITIONS,
    FlagReason,
    Payment,
    PaymentChange,
    PaymentStatus,
)
from coop.payments.services.policy import PaymentError

log = logging.getLogger(__name__)


# --- the history and the only way a status changes ------------------------------------------


def _move(
    payment: Payment,
    to: PaymentStatus,
    *,
    now: datetime,
    actor: User | None = None,
    event_id: str | None = None,
    note: str | None = None,
) -> None:
    if to not in TRANSITIONS[payment.status]:
        # A caller that gets here has a bug: the rules below only ask for allowed moves.
        raise PaymentError("transition", status=payment.status.value, to=to.value)
    payment.changes.append(
        PaymentChange(
            at=now,
            from_status=payment.status,
            to_status=to,
            actor_id=actor.id if actor else None,
            stripe_event_id=event_id,
            note=note,
        )
    )
    log.info(
        "payment id=%s %s -> %s%s",
        payment.id,
        payment.status.value,
        to.value,
        f" event={event_id}" if event_id else "",
    )
    payment.status = to
    payment.updated_at = now


def _flag(
    payment: Payment,
    reason: FlagReason,
    *,
    now: datetime,
    actor: User | None = None,
    event_id: str | None = None,
    note: str | None = None,
) -> None:
    _move(payment, PaymentStatus.FLAGGED, now=now, actor=actor, event_id=event_id, note=note)
    payment.flag_reason = reason
    payment.flagged_at = now
    for user_id in _staff_ids(payment.action.organisation_id):
        jobs.enqueue(
            "payments.send_deposit_flagged",
            f"deposit-flagged:{payment.id}:{reason.value}:{payment.refund_attempts}:{user_id}",
            payment_id=payment.id,
            user_id=user_id,
        )


def _staff_ids(organisation_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(User.id).where(
                User.organisation_id == organisation_id,
                User.role == Role.STAFF,
                User.is_active_account.is_(True),
            )
        )
    )
