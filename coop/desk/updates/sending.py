"""Sending an update, now or at a time: one delivery per recipient, each email its own outbox row
in the bulk lane, so an update to 10,000 residents never holds up a sign-up's confirmation."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy import update as sql_update

from coop.accounts.models import User
from coop.actions.models import Action
from coop.core import audit, jobs
from coop.core.mail import TemporaryMailError, send_email
from coop.core.models import EmailStatus, OutboxJob
from coop.core.time import utcnow
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.desk.updates.drafts import DELIVERY_JOB, TEMPLATE, UpdateError
from coop.desk.updates.segment import _message, _recipients, audience, unsubscribe_headers
from coop.extensions import db
from coop.registrations.models import (
    Registration,
)

log = logging.getLogger(__name__)


# --- sending -----------------------------------------------------------------------------------


def send_now(segment_update: SegmentUpdate, actor: User, now: datetime | None = None) -> int:
    """Send a draft to its segment; returns the number of messages queued."""
    if segment_update.status is not UpdateStatus.DRAFT:
        raise UpdateError("not_draft")
    if audience(segment_update).recipients == 0:
        raise UpdateError("no_recipients")
    queued = _start_sending(segment_update.id, UpdateStatus.DRAFT, actor, now or utcnow())
    if queued is None:
        raise UpdateError("not_draft")  # someone else pressed send a moment earlier
    return queued


def schedule(
    segment_update: SegmentUpdate, actor: User, send_at: datetime, now: datetime | None = None
) -> None:
    now = now or utcnow()
    if segment_update.status is not UpdateStatus.DRAFT:
        raise UpdateError("not_draft")
    if send_at <= now:
        raise UpdateError("send_at_past")
    if audience(segment_update).recipients == 0:
        raise UpdateError("no_recipients")
    segment_update.status = UpdateStatus.SCHEDULED
    segment_update.send_at = send_at
    audit.record(
        actor,
        segment_update.organisation_id,
        "update.schedule",
        segment_update,
        before={"status": UpdateStatus.DRAFT.value},
        after={"status": UpdateStatus.SCHEDULED.value, "send_at": send_at.isoformat()},
    )
    db.session.commit()


def cancel_schedule(segment_update: SegmentUpdate, actor: User) -> None:
    """Back to draft, unless the scheduler has just started sending it."""
    result = db.session.execute(
        sql_update(SegmentUpdate)
        .where(
            SegmentUpdate.id == segment_update.id,
            SegmentUpdate.status == UpdateStatus.SCHEDULED,
        )
        .values(status=UpdateStatus.DRAFT, send_at=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise UpdateError("not_scheduled")
    audit.record(
        actor,
        segment_update.organisation_id,
        "update.cancel_schedule",
        segment_update,
        before={"status": UpdateStatus.SCHEDULED.value},
        after={"status": UpdateStatus.DRAFT.value},
    )
    db.session.commit()


def send_due(now: datetime | None = None) -> int:
    """The scheduler's round: start every scheduled update whose time has come."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(SegmentUpdate.id)
            .where(SegmentUpdate.status == UpdateStatus.SCHEDULED, SegmentUpdate.send_at <= now)
            .order_by(SegmentUpdate.send_at, SegmentUpdate.id)
            .limit(50)
        )
    )
    db.session.rollback()
    started = 0
    for update_id in due:
        if _start_sending(update_id, UpdateStatus.SCHEDULED, None, now) is not None:
            started += 1
    return started


def _start_sending(
    update_id: int, expected: UpdateStatus, actor: User | None, now: datetime
) -> int | None:
    """Move ``expected`` -> SENDING and write the deliveries and their jobs, in one transaction.

    The conditional UPDATE takes the row lock; a second caller (a double click, a second
    scheduler) finds the status changed and gets None.
    """
    claim = sql_update(SegmentUpdate).where(
        SegmentUpdate.id == update_id, SegmentUpdate.status == expected
    )
    if expected is UpdateStatus.SCHEDULED:
        claim = claim.where(SegmentUpdate.send_at <= now)
    result = db.session.execute(claim.values(status=UpdateStatus.SENDING, sent_at=None))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return None
    segment_update = db.session.get(SegmentUpdate, update_id, populate_existing=True)
    assert segment_update is not None
    recipients = db.session.execute(
        _recipients(segment_update).order_by(Registration.user_id)
    ).all()
    deliveries = [
        UpdateDelivery(
            update_id=update_id,
            user_id=user_id,
            registration_id=registration_id,
            status=DeliveryStatus.SKIPPED if unsubscribed_at else DeliveryStatus.QUEUED,
            error="unsubscribed" if unsubscribed_at else None,
            created_at=now,
        )
        for user_id, registration_id, unsubscribed_at in recipients
    ]
    db.session.add_all(deliveries)
    db.session.flush()
    queued = [d for d in deliveries if d.status is DeliveryStatus.QUEUED]
    # One statement for all the jobs (10,000 residents: 10,000 rows); after the commit they go
    # to the bulk lane in chunks, behind every confirmation and login link.
    jobs.enqueue_many(
        DELIVERY_JOB, [(f"update-delivery:{d.id}", {"delivery_id": d.id}) for d in queued]
    )
    if not queued:
        segment_update.status = UpdateStatus.SENT
        segment_update.sent_at = now
    audit.record(
        actor,
        segment_update.organisation_id,
        "update.send",
        segment_update,
        before={"status": expected.value},
        after={
            "status": segment_update.status.value,
            "recipients": len(queued),
            "skipped_unsubscribed": len(deliveries) - len(queued),
        },
    )
    db.session.commit()
    log.info(
        "update %s sending: %d queued, %d skipped",
        update_id,
        len(queued),
        len(deliveries) - len(queued),
    )
    return len(queued)


def deliver(delivery_id: int) -> None:
    """The job of one delivery: send the message once and record how it went.

    A temporary failure (4xx, no connection) raises so the job is tried again; on the last
    attempt the delivery is marked failed with the reason instead, so staff see it. Whether the
    update is now sent is settled after the chunk (``finish_deliveries``), not per message.
    """
    # The delivery, its update, the resident and the action in one statement: at 10,000
    # messages every round trip per message counts.
    found = db.session.execute(
        select(UpdateDelivery, SegmentUpdate, User, Action)
        .join(SegmentUpdate, SegmentUpdate.id == UpdateDelivery.update_id)
        .join(Action, Action.id == SegmentUpdate.action_id)
        .outerjoin(User, User.id == UpdateDelivery.user_id)
        .where(UpdateDelivery.id == delivery_id)
    ).first()
    if found is None:
        return
    delivery, segment_update, user, _action = found
    if delivery.status is not DeliveryStatus.QUEUED:
        return
    if user is None or user.unsubscribed_at is not None:
        # Erased or unsubscribed after the update was queued: their wish counts.
        delivery.status = DeliveryStatus.SKIPPED
        delivery.error = "account erased" if user is None else "unsubscribed"
        return
    language, context = _message(segment_update, user)
    try:
        entry = send_email(
            key=f"update:{segment_update.id}:{user.id}",
            to=user.email,
            template=TEMPLATE,
            language=language,
            user_id=user.id,
            headers=unsubscribe_headers(user),
            **context,
        )
    except TemporaryMailError as exc:
        if not _last_attempt(delivery_id):
            raise
        delivery.status = DeliveryStatus.FAILED
        delivery.error = f"gave up after retries: {exc}"[:2000]
    else:
        if entry.status is EmailStatus.SENT:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = entry.sent_at or utcnow()
            delivery.error = None
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = entry.error or "refused by the mail server"


def finish_deliveries(batch: list[dict[str, Any]]) -> None:
    """After a chunk of deliveries: mark each of their updates sent once nothing is queued."""
    ids = [int(args["delivery_id"]) for args in batch]
    update_ids = set(
        db.session.scalars(
            select(UpdateDelivery.update_id).where(UpdateDelivery.id.in_(ids)).distinct()
        )
    )
    for update_id in sorted(update_ids):
        _finish_if_done(update_id)


def finish_stalled() -> int:
    """The scheduler's safety net: updates still "sending" with no delivery queued (the
    worker died between a chunk's last message and its check)."""
    sending = list(
        db.session.scalars(
            select(SegmentUpdate.id).where(SegmentUpdate.status == UpdateStatus.SENDING)
        )
    )
    finished = 0
    for update_id in sending:
        if _finish_if_done(update_id):
            finished += 1
    db.session.commit()
    return finished


def _last_attempt(delivery_id: int) -> bool:
    row = db.session.scalar(
        select(OutboxJob).where(OutboxJob.key == f"update-delivery:{delivery_id}")
    )
    if row is None:
        return True  # not run from the outbox: nobody will try again
    last: bool = row.attempts + 1 >= int(current_app.config["OUTBOX_MAX_ATTEMPTS"])
    return last


def _finish_if_done(update_id: int) -> bool:
    """The last chunk to finish marks the update sent (True when this call did).

    The update row is locked only here, after the chunk's messages went out and committed, so
    chunks of one update send in parallel; of two chunks finishing at once the second to take
    the lock sees the other's deliveries committed.
    """
    db.session.flush()
    segment_update = db.session.scalar(
        select(SegmentUpdate)
        .where(SegmentUpdate.id == update_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if segment_update is None or segment_update.status is not UpdateStatus.SENDING:
        return False
    # One seek in (update_id, status); a count would read every queued delivery each time.
    waiting = db.session.scalar(
        select(UpdateDelivery.id)
        .where(
            UpdateDelivery.update_id == update_id,
            UpdateDelivery.status == DeliveryStatus.QUEUED,
        )
        .limit(1)
    )
    if waiting is None:
        segment_update.status = UpdateStatus.SENT
        segment_update.sent_at = utcnow()
        return True
    return False
