"""What the desk keeps of its own work: the updates sent to residents (the audit log, which
every domain writes, is ``coop.core.audit``)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db


class UpdateStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"


class SegmentUpdate(db.Model):  # type: ignore[name-defined]
    """A message from the desk to a segment of residents (action, measure, status, PC4)."""

    __tablename__ = "segment_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    subject_nl: Mapped[str] = mapped_column(String(200))
    subject_en: Mapped[str] = mapped_column(String(200))
    body_nl: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    # The segment: {"measure_id": 3, "status": "confirmed", "pc4": "3524"}; absent = everyone.
    segment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[UpdateStatus] = mapped_column(
        enum_type(UpdateStatus), default=UpdateStatus.DRAFT
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # unsubscribed


class UpdateDelivery(db.Model):  # type: ignore[name-defined]
    """One recipient of an update: one message each, with its own outcome."""

    __tablename__ = "update_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("segment_updates.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL")
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_type(DeliveryStatus), default=DeliveryStatus.QUEUED
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("update_id", "user_id"),
        # The last delivery to finish looks for others still queued: one index seek, not a
        # scan of every delivery of a 10,000-recipient update for each message.
        Index("ix_update_deliveries_update_id_status", "update_id", "status"),
    )
