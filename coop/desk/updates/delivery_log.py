"""The delivery log of an update: per recipient, what became of their email."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select

from coop.accounts.models import User
from coop.actions.models import Action
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.desk.updates.drafts import DELIVERY_PAGE_SIZE, delivery_counts_of
from coop.desk.updates.segment import Audience, Preview, audience, preview
from coop.extensions import db

log = logging.getLogger(__name__)


# --- the delivery log --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    delivery: UpdateDelivery
    name: str | None
    email: str | None


@dataclass(frozen=True)
class DeliveryLog:
    counts: dict[DeliveryStatus, int]
    rows: list[DeliveryRow]
    page: int
    has_next: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def delivery_log(segment_update: SegmentUpdate, page: int = 1) -> DeliveryLog:
    """Counts per status (GROUP BY) and one page of recipients, failures first."""
    page = max(page, 1)
    counts = delivery_counts_of([segment_update])[segment_update.id]
    order = {DeliveryStatus.FAILED: 0, DeliveryStatus.QUEUED: 1, DeliveryStatus.SKIPPED: 2}
    rows = db.session.execute(
        select(UpdateDelivery, User.name, User.email)
        .outerjoin(User, User.id == UpdateDelivery.user_id)
        .where(UpdateDelivery.update_id == segment_update.id)
        .order_by(
            _status_order(order),
            UpdateDelivery.id,
        )
        .limit(DELIVERY_PAGE_SIZE + 1)
        .offset((page - 1) * DELIVERY_PAGE_SIZE)
    ).all()
    return DeliveryLog(
        counts={status: counts.get(status, 0) for status in DeliveryStatus},
        rows=[DeliveryRow(d, name, email) for d, name, email in rows[:DELIVERY_PAGE_SIZE]],
        page=page,
        has_next=len(rows) > DELIVERY_PAGE_SIZE,
    )


def _status_order(order: dict[DeliveryStatus, int]) -> Any:
    return case(
        {status: rank for status, rank in order.items()}, value=UpdateDelivery.status, else_=3
    )


@dataclass(frozen=True)
class UpdatePage:
    update: SegmentUpdate
    action: Action
    audience: Audience | None  # before sending: who will get it
    preview: Preview | None
    log: DeliveryLog


def update_page(segment_update: SegmentUpdate, page: int = 1) -> UpdatePage:
    """Everything the update's page shows: the audience and a preview while it can still be
    changed, and the delivery log."""
    unsent = segment_update.status in (UpdateStatus.DRAFT, UpdateStatus.SCHEDULED)
    action = db.session.get(Action, segment_update.action_id)
    assert action is not None
    return UpdatePage(
        update=segment_update,
        action=action,
        audience=audience(segment_update) if unsent else None,
        preview=preview(segment_update),
        log=delivery_log(segment_update, page),
    )
