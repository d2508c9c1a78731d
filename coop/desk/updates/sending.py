"""Sending an update, now or at a time: one delivery per recipient, each email its own outbox row
in the bulk lane, so an update to 10,000 residents never holds up a sign-up's confirmation."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import String, bindparam, case, cast, func, insert, literal, null, select
from sqlalchemy import update as sql_update

from coop.accounts.models import User
from coop.core import audit, jobs
from coop.core.mail import MergedEmail, Outcome, TemporaryMailError, send_rendered
from coop.core.models import EmailLog, EmailStatus, OutboxJob
from coop.core.time import utcnow
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.desk.updates.drafts import DELIVERY_JOB, TEMPLATE, UpdateError
from coop.desk.updates.segment import (
    RECIPIENT_FIELDS,
    _recipients,
    audience,
    letter_context,
    message_language,
    unsubscribe_headers,
    unsubscribe_link,
)
from coop.extensions import db

log = logging.getLogger(__name__)

_DELIVERIES = UpdateDelivery.__table__
_USERS = User.__table__
_EMAIL_LOG = EmailLog.__table__


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
    # The deliveries and their jobs are written by the database from the segment's query, two
    # statements however many residents (10,000 row objects took seconds).
    recipients = _recipients(segment_update).subquery()
    user_id, registration_id, unsubscribed_at = recipients.c
    unsubscribed = unsubscribed_at.is_not(None)
    db.session.execute(
        insert(_DELIVERIES).from_select(
            ["update_id", "user_id", "registration_id", "status", "error", "created_at"],
            select(
                literal(update_id),
                user_id,
                registration_id,
                case(
                    (unsubscribed, literal(DeliveryStatus.SKIPPED.value)),
                    else_=literal(DeliveryStatus.QUEUED.value),
                ),
                case((unsubscribed, literal("unsubscribed")), else_=null()),
                literal(now, type_=_DELIVERIES.c.created_at.type),
            ).order_by(user_id),
        )
    )
    of_update = _DELIVERIES.c.update_id == update_id
    # One job per queued delivery; after the commit they go to the bulk lane in chunks, behind
    # every confirmation and login link.
    queued = jobs.enqueue_for_each(
        DELIVERY_JOB,
        "update-delivery:",
        "delivery_id",
        select(_DELIVERIES.c.id).where(of_update, _DELIVERIES.c.status == DeliveryStatus.QUEUED),
    )
    skipped = db.session.scalar(
        select(func.count()).where(of_update, _DELIVERIES.c.status == DeliveryStatus.SKIPPED)
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
            "skipped_unsubscribed": skipped,
        },
    )
    db.session.commit()
    log.info(
        "update %s sending: %d queued, %d skipped",
        update_id,
        len(queued),
        skipped,
    )
    return len(queued)


# A delivery's statements, plain SQL built once (see ``deliver``).
_DELIVERY_AND_RESIDENT = (
    select(
        _DELIVERIES.c.status,
        _DELIVERIES.c.update_id,
        _USERS.c.id,
        _USERS.c.email,
        _USERS.c.name,
        _USERS.c.language,
        _USERS.c.unsubscribed_at,
        _EMAIL_LOG.c.status.label("logged_status"),
        _EMAIL_LOG.c.sent_at.label("logged_sent_at"),
        _EMAIL_LOG.c.error.label("logged_error"),
    )
    .select_from(
        _DELIVERIES.outerjoin(_USERS, _USERS.c.id == _DELIVERIES.c.user_id).outerjoin(
            # The message's own key (``update:<update>:<user>``): what was sent of it before.
            _EMAIL_LOG,
            _EMAIL_LOG.c.key
            == literal("update:")
            + cast(_DELIVERIES.c.update_id, String)
            + literal(":")
            + cast(_USERS.c.id, String),
        )
    )
    .where(_DELIVERIES.c.id == bindparam("delivery_id"))
)
# Its parameters named apart from the email log's: both are written with the job's end.
_DELIVERY_OUTCOME = (
    sql_update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("delivery_status", type_=_DELIVERIES.c.status.type),
        error=bindparam("delivery_error", type_=_DELIVERIES.c.error.type),
        sent_at=bindparam("delivery_sent_at", type_=_DELIVERIES.c.sent_at.type),
    )
)


class _Letter:
    """An update as its messages are made: its template rendered once per language (a mail
    merge, ``MergedEmail``), kept for the rows of one chunk (``jobs.chunk_memo``)."""

    def __init__(self, segment_update: SegmentUpdate) -> None:
        self.update = segment_update
        self.merged: dict[str, MergedEmail] = {}
        # Read now: each row's commit expires the update, and reading it again is a query.
        self.for_english_readers = message_language(segment_update, "en")

    def message(self, user_language: str | None, **values: str) -> tuple[str, str, str, str]:
        """(language, subject, text, HTML) for one recipient."""
        language = self.for_english_readers if user_language == "en" else "nl"
        if language not in self.merged:
            self.merged[language] = MergedEmail(
                TEMPLATE,
                language,
                RECIPIENT_FIELDS,
                **letter_context(self.update, language),
            )
        return language, *self.merged[language].render(**values)


def _letter(update_id: int) -> _Letter | None:
    memo = jobs.chunk_memo()
    key = ("update-letter", update_id)
    if key not in memo:
        segment_update = db.session.get(SegmentUpdate, update_id)
        memo[key] = None if segment_update is None else _Letter(segment_update)
    letter: _Letter | None = memo[key]
    return letter


def deliver(delivery_id: int) -> None:
    """The job of one delivery: send the message once and record how it went.

    A temporary failure (4xx, no connection) raises so the job is tried again; on the last
    attempt the delivery is marked failed with the reason instead, so staff see it. Whether the
    update is now sent is settled after the chunk (``finish_deliveries``), not per message.

    At 10,000 messages every statement per message counts: the delivery and its resident in one
    plain query, the update's text from the chunk's memo, the outcome in one UPDATE.
    """
    found = jobs.first_row(_DELIVERY_AND_RESIDENT, {"delivery_id": delivery_id})
    if found is None or found.status is not DeliveryStatus.QUEUED:
        return
    if found.id is None or found.unsubscribed_at is not None:
        # Erased or unsubscribed after the update was queued: their wish counts.
        reason = "account erased" if found.id is None else "unsubscribed"
        _record(delivery_id, DeliveryStatus.SKIPPED, reason)
        return
    letter = _letter(found.update_id)
    if letter is None:
        return
    link = unsubscribe_link(found.id)
    language, subject, text, html = letter.message(
        found.language, name=found.name, unsubscribe_link=link
    )
    try:
        outcome = send_rendered(
            key=f"update:{found.update_id}:{found.id}",
            to=found.email,
            subject=subject,
            text=text,
            html=html,
            template=TEMPLATE,
            language=language,
            user_id=found.id,
            headers=unsubscribe_headers(link),
            logged=None
            if found.logged_status is None
            else Outcome(found.logged_status, found.logged_sent_at, found.logged_error),
        )
    except TemporaryMailError as exc:
        if not _last_attempt(delivery_id):
            raise
        _record(delivery_id, DeliveryStatus.FAILED, f"gave up after retries: {exc}"[:2000])
    else:
        if outcome.status is EmailStatus.SENT:
            _record(delivery_id, DeliveryStatus.SENT, None, sent_at=outcome.sent_at or utcnow())
        else:
            _record(
                delivery_id, DeliveryStatus.FAILED, outcome.error or "refused by the mail server"
            )


def _record(
    delivery_id: int, status: DeliveryStatus, error: str | None, sent_at: datetime | None = None
) -> None:
    # A queued delivery (the only kind recorded) has no sent_at yet.
    jobs.write_with_done(
        _DELIVERY_OUTCOME,
        {
            "delivery_id": delivery_id,
            "delivery_status": status,
            "delivery_error": error,
            "delivery_sent_at": sent_at,
        },
    )


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
