"""The job outbox and the email log: the durable record of work to do and mail sent."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db


class JobStatus(enum.StrEnum):
    PENDING = "pending"  # written, maybe handed to the queue, not finished
    DONE = "done"
    FAILED = "failed"  # gave up after the last attempt; shows up for staff


class OutboxJob(db.Model):  # type: ignore[name-defined]
    """Work to be done after a commit, written in the same transaction as the state change.

    ``key`` is unique: asking twice for the same work (a double click, a retried request) stores
    it once. Arguments are ids only, so nothing personal travels through Redis.
    """

    __tablename__ = "outbox_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[JobStatus] = mapped_column(
        enum_type(JobStatus),
        default=JobStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The RQ job that carries this row (with others of its chunk); the sweep asks Redis for it.
    handed_as: Mapped[str | None] = mapped_column(String(100))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_outbox_jobs_status_run_after", "status", "run_after"),)


class EmailStatus(enum.StrEnum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class EmailLog(db.Model):  # type: ignore[name-defined]
    """One row per message we meant to send; ``key`` makes a retried job send nothing twice."""

    __tablename__ = "email_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    template: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(5))
    message_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[EmailStatus] = mapped_column(
        enum_type(EmailStatus),
        default=EmailStatus.SENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Bodies are kept only where the development mailbox shows them (no MAIL_SERVER).
    body_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PeriodicTaskState(db.Model):  # type: ignore[name-defined]
    """How each periodic task fared in its last round, written by whichever process ran the
    round (``coop scheduler``, ``coop sweep``, ``coop serve``'s thread), so that ``/healthz`` on
    every web node can say which task is failing until a round of it succeeds again."""

    __tablename__ = "periodic_task_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the first failed round after a success, cleared by the next success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)  # rounds failed in a row
    last_error: Mapped[str | None] = mapped_column(Text)
