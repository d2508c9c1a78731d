"""Updates from the desk to a segment of an action's residents, and the way out of them.

Composing stores a draft; sending writes one delivery row per resident and one job per
delivery (in the outbox's bulk lane, handed to workers in chunks) in the same transaction as the
status change, so a crash loses nothing and a second
click (or a second scheduler) sends nothing twice: the status moves DRAFT/SCHEDULED -> SENDING
in one conditional UPDATE that only one caller can win, ``(update_id, user_id)`` is unique and
every job and email has a key derived from the delivery.

Updates are not transactional mail: whoever unsubscribed is skipped (and the delivery log says
so); confirmations, reminders and the like keep coming.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Select, case, func, select
from sqlalchemy import update as sql_update

from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionMeasure
from coop.core import audit, jobs, tokens
from coop.core.mail import TemporaryMailError, render_email, send_email
from coop.core.models import EmailStatus, OutboxJob
from coop.core.time import utcnow
from coop.desk.models import DeliveryStatus, SegmentUpdate, UpdateDelivery, UpdateStatus
from coop.desk.services import LEFT
from coop.extensions import db
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)

log = logging.getLogger(__name__)

DELIVERY_JOB = "desk.send_update_delivery"
TEMPLATE = "segment_update"
CONTENT_FIELDS = ("action_id", "segment", "subject_nl", "subject_en", "body_nl", "body_en")
DELIVERY_PAGE_SIZE = 100


class UpdateError(Exception):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


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


# --- the segment -------------------------------------------------------------------------------


def _recipients(
    segment_update: SegmentUpdate,
) -> Select[int, int, datetime | None]:
    """(user id, first matching registration id, unsubscribed at) per resident in the segment.

    Grouped by user: a resident with two registrations (two addresses) gets one message.
    Without a status filter, residents who stepped out (withdrawn, expired, declined) are left
    out; a status filter picks exactly that status.
    """
    segment = segment_update.segment or {}
    query = (
        select(Registration.user_id, func.min(Registration.id), User.unsubscribed_at)
        .join(User, User.id == Registration.user_id)
        .where(
            Registration.action_id == segment_update.action_id,
            User.role == Role.RESIDENT,
            User.is_active_account.is_(True),
        )
        .group_by(Registration.user_id, User.unsubscribed_at)
    )
    if segment.get("status"):
        query = query.where(Registration.status == RegistrationStatus(segment["status"]))
    else:
        query = query.where(Registration.status.not_in(LEFT))
    if segment.get("measure_id"):
        query = query.where(
            Registration.id.in_(
                select(RegistrationMeasure.registration_id)
                .join(ActionMeasure, ActionMeasure.id == RegistrationMeasure.action_measure_id)
                .where(
                    ActionMeasure.action_id == segment_update.action_id,
                    ActionMeasure.measure_id == int(segment["measure_id"]),
                    # A measure the resident withdrew on its own is no longer theirs.
                    RegistrationMeasure.withdrawn_at.is_(None),
                )
            )
        )
    if segment.get("pc4"):
        query = query.join(Household, Household.id == Registration.household_id).where(
            Household.pc4 == str(segment["pc4"])
        )
    return query


@dataclass(frozen=True)
class Audience:
    recipients: int  # residents who will get the message
    unsubscribed: int  # residents in the segment who will be skipped


def audience(segment_update: SegmentUpdate) -> Audience:
    rows = _recipients(segment_update).subquery()
    total, unsubscribed = db.session.execute(
        select(
            func.count(),
            func.count(rows.c.unsubscribed_at),
        ).select_from(rows)
    ).one()
    return Audience(int(total or 0) - int(unsubscribed or 0), int(unsubscribed or 0))


@dataclass(frozen=True)
class Preview:
    user: User
    language: str
    subject: str
    text: str


def preview(segment_update: SegmentUpdate) -> Preview | None:
    """The message as the first matching resident will get it, in their language."""
    first = db.session.execute(
        _recipients(segment_update).order_by(Registration.user_id).limit(1)
    ).first()
    if first is None:
        return None
    user = db.session.get(User, first[0])
    assert user is not None
    language, context = _message(segment_update, user)
    subject, text, _html = render_email(TEMPLATE, language, **context)
    return Preview(user, language, subject, text)


def unsubscribe_link(user: User) -> str:
    token = tokens.sign("unsubscribe", {"u": user.id})
    return f"{current_app.config['BASE_URL']}/unsubscribe/{token}"


def unsubscribe_headers(user: User) -> dict[str, str]:
    """One-click unsubscribe (RFC 8058), which large mailbox providers require of bulk mail:
    the mail program POSTs ``List-Unsubscribe=One-Click`` to this address, without cookies."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_link(user)}/one-click>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _message(segment_update: SegmentUpdate, user: User) -> tuple[str, dict[str, Any]]:
    """The language and template context of ``segment_update`` for ``user``.

    English only when the resident reads English and the desk wrote the English version.
    """
    english = user.language == "en" and bool(segment_update.subject_en and segment_update.body_en)
    body = segment_update.body_en if english else segment_update.body_nl
    action = db.session.get(Action, segment_update.action_id)
    return ("en" if english else "nl"), {
        "name": user.name,
        "action": action,
        "update_subject": segment_update.subject_en if english else segment_update.subject_nl,
        "paragraphs": [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()],
        "unsubscribe_link": unsubscribe_link(user),
    }


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


# --- unsubscribe -------------------------------------------------------------------------------


def user_for_unsubscribe(token: str) -> User | None:
    payload = tokens.unsign("unsubscribe", token)
    if payload is None or not isinstance(payload.get("u"), int):
        return None
    return db.session.get(User, payload["u"])


def unsubscribe(user: User, now: datetime | None = None) -> None:
    """No more updates from now on; the first moment is kept when the link is used again."""
    if user.unsubscribed_at is None:
        user.unsubscribed_at = now or utcnow()
        db.session.commit()
        log.info("user %s unsubscribed from updates", user.id)
