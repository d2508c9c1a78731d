"""Updates to residents: writing one (a draft for a segment of an action's residents) and
reading them back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from coop.accounts.models import User
from coop.actions.models import Action
from coop.core import audit
from coop.core.errors import DomainError
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.extensions import db
from coop.registrations.models import (
    RegistrationStatus,
)

log = logging.getLogger(__name__)

DELIVERY_JOB = "desk.send_update_delivery"

TEMPLATE = "segment_update"

CONTENT_FIELDS = ("action_id", "segment", "subject_nl", "subject_en", "body_nl", "body_en")

DELIVERY_PAGE_SIZE = 100


class UpdateError(DomainError):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""


@dataclass(frozen=True)
class UpdateInput:
    action: Action
    measure_id: int | None  # a measure of the catalogue
    status: RegistrationStatus | None
    pc4: str | None
    subject_nl: str
    subject_en: str
    body_nl: str
    body_en: str

    def segment(self) -> dict[str, Any]:
        segment: dict[str, Any] = {}
        if self.measure_id is not None:
            segment["measure_id"] = self.measure_id
        if self.status is not None:
            segment["status"] = self.status.value
        if self.pc4:
            segment["pc4"] = self.pc4
        return segment


def get_update(update_id: int) -> SegmentUpdate | None:
    return db.session.get(SegmentUpdate, update_id)


def updates_of(organisation_id: int, limit: int = 200) -> list[SegmentUpdate]:
    return list(
        db.session.scalars(
            select(SegmentUpdate)
            .where(SegmentUpdate.organisation_id == organisation_id)
            .order_by(SegmentUpdate.created_at.desc(), SegmentUpdate.id.desc())
            .limit(limit)
        )
    )


def delivery_counts_of(updates: list[SegmentUpdate]) -> dict[int, dict[DeliveryStatus, int]]:
    """Delivery counts per update, for a list page, in one GROUP BY."""
    counts: dict[int, dict[DeliveryStatus, int]] = {u.id: {} for u in updates}
    if not updates:
        return counts
    rows = db.session.execute(
        select(UpdateDelivery.update_id, UpdateDelivery.status, func.count())
        .where(UpdateDelivery.update_id.in_(list(counts)))
        .group_by(UpdateDelivery.update_id, UpdateDelivery.status)
    ).all()
    for update_id, status, count in rows:
        counts[update_id][status] = count
    return counts


def _check(data: UpdateInput) -> None:
    if data.measure_id is not None and data.measure_id not in {
        am.measure_id for am in data.action.measures
    }:
        raise UpdateError("measure_not_in_action")


def compose(actor: User, data: UpdateInput) -> SegmentUpdate:
    """Store a draft; nothing is sent until someone presses send (or the time comes)."""
    _check(data)
    segment_update = SegmentUpdate(
        organisation_id=data.action.organisation_id,
        action_id=data.action.id,
        created_by_id=actor.id,
        subject_nl=data.subject_nl,
        subject_en=data.subject_en,
        body_nl=data.body_nl,
        body_en=data.body_en,
        segment=data.segment(),
        status=UpdateStatus.DRAFT,
    )
    db.session.add(segment_update)
    db.session.flush()
    audit.record(
        actor,
        segment_update.organisation_id,
        "update.compose",
        segment_update,
        after=audit.snapshot(segment_update, CONTENT_FIELDS),
    )
    db.session.commit()
    return segment_update


def edit(segment_update: SegmentUpdate, actor: User, data: UpdateInput) -> None:
    if segment_update.status is not UpdateStatus.DRAFT:
        raise UpdateError("not_draft")
    _check(data)
    before = audit.snapshot(segment_update, CONTENT_FIELDS)
    segment_update.action_id = data.action.id
    segment_update.segment = data.segment()
    segment_update.subject_nl = data.subject_nl
    segment_update.subject_en = data.subject_en
    segment_update.body_nl = data.body_nl
    segment_update.body_en = data.body_en
    old, new = audit.changed(before, audit.snapshot(segment_update, CONTENT_FIELDS))
    if new:
        audit.record(
            actor,
            segment_update.organisation_id,
            "update.edit",
            segment_update,
            before=old,
            after=new,
        )
    db.session.commit()
