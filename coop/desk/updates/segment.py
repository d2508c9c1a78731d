"""An update's segment: who gets it (confirmed residents of the action, by measure, status and
postcode area, never those who unsubscribed), the preview, and each recipient's message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select

from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionMeasure
from coop.core import tokens
from coop.core.mail import render_email
from coop.desk.models import SegmentUpdate
from coop.desk.services import LEFT
from coop.desk.updates.drafts import TEMPLATE
from coop.extensions import db
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)

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


def unsubscribe_link(user: User | int) -> str:
    user_id = user if isinstance(user, int) else user.id
    token = tokens.sign("unsubscribe", {"u": user_id})
    return f"{current_app.config['BASE_URL']}/unsubscribe/{token}"


def unsubscribe_headers(user: User | str) -> dict[str, str]:
    """One-click unsubscribe (RFC 8058), which large mailbox providers require of bulk mail:
    the mail program POSTs ``List-Unsubscribe=One-Click`` to this address, without cookies.
    ``user``: the resident, or their ``unsubscribe_link`` made already."""
    link = user if isinstance(user, str) else unsubscribe_link(user)
    return {
        "List-Unsubscribe": f"<{link}/one-click>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def message_language(segment_update: SegmentUpdate, user_language: str | None) -> str:
    """English only when the resident reads English and the desk wrote the English version."""
    english = user_language == "en" and bool(segment_update.subject_en and segment_update.body_en)
    return "en" if english else "nl"


def letter_context(segment_update: SegmentUpdate, language: str) -> dict[str, Any]:
    """What the update's template needs in ``language``, but the recipient's own values
    (``RECIPIENT_FIELDS``)."""
    english = language == "en"
    body = segment_update.body_en if english else segment_update.body_nl
    return {
        "action": db.session.get(Action, segment_update.action_id),
        "update_subject": segment_update.subject_en if english else segment_update.subject_nl,
        "paragraphs": [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()],
    }


# The values of an update's message that differ per recipient.
RECIPIENT_FIELDS = ("name", "unsubscribe_link")


def _message(segment_update: SegmentUpdate, user: User) -> tuple[str, dict[str, Any]]:
    """The language and template context of ``segment_update`` for ``user``."""
    language = message_language(segment_update, user.language)
    return language, {
        **letter_context(segment_update, language),
        "name": user.name,
        "unsubscribe_link": unsubscribe_link(user),
    }
