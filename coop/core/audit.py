"""The audit log: who changed what, when. Every domain calls ``record`` inside its service's
transaction; desk admins read the log (``coop.desk``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, inspect, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.core.db import UTCDateTime
from coop.core.time import utcnow
from coop.extensions import db


class AuditEntry(db.Model):  # type: ignore[name-defined]
    """Who changed what, when, with the values before and after; read by desk admins."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verb: Mapped[str] = mapped_column(String(60))  # "action.publish", "installer.update"...
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # The account (``coop.accounts.models.User``), named rather than imported: core stands
    # below the domains.
    actor: Mapped[Any] = relationship("User")

    __table_args__ = (Index("ix_audit_log_organisation_at", "organisation_id", "at"),)


def snapshot(obj: Any, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The column values of ``obj`` as JSON-safe data (for the before/after of an entry)."""
    names = (
        list(fields) if fields is not None else [c.key for c in inspect(obj).mapper.column_attrs]
    )
    data: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Enum):
            value = value.value
        data[name] = value
    return data


def record(
    actor: Any | None,
    organisation_id: int,
    verb: str,
    obj: Any | None = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits)."""
    entry = AuditEntry(
        organisation_id=organisation_id,
        actor_id=actor.id if actor is not None else None,
        verb=verb,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=getattr(obj, "id", None),
        before=before,
        after=after,
    )
    db.session.add(entry)
    return entry


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, so an entry shows what was actually changed."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def entries_for(organisation_id: int, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.organisation_id == organisation_id)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
