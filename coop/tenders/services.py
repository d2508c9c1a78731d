"""The rules of a tender round: staff invite installers once registration has closed; each
invited installer bids a unit price and a capacity per measure before the deadline and may
revise its bid until then; nobody else sees a bid before the deadline.

While a round takes bids, staff may move its deadline later (never earlier: an installer may be
counting on the time it was given; to shorten a round, cancel it and open a new one) and may
cancel it until matching has started with its bids. The invited installers get an email either
way; a cancelled round takes no bids and starts no matching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionMeasure, ActionStatus
from coop.core import audit, jobs
from coop.core.db import lock_row, unit_of_work
from coop.core.errors import DomainError
from coop.core.formatting import MAX_AMOUNT_CENTS
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.mail import installer_recipients
from coop.installers.models import Installer
from coop.tenders.models import BidLine, TenderInvitation, TenderRound

log = logging.getLogger(__name__)

# A round gives installers at least this long, and at most this long, to bid.
MIN_BIDDING_TIME = timedelta(hours=1)
MAX_BIDDING_TIME = timedelta(days=90)
MAX_CAPACITY_HOMES = 100_000


class TenderError(DomainError):
    """A rule stopped the operation; ``code`` names it, ``params`` fill in its message."""


@dataclass(frozen=True)
class BidInput:
    """What an installer offers for one measure of the action."""

    unit_price_cents: int
    capacity_homes: int


def rounds_of(action: Action) -> list[TenderRound]:
    return list(
        db.session.scalars(
            select(TenderRound)
            .where(TenderRound.action_id == action.id)
            .options(
                selectinload(TenderRound.invitations).selectinload(TenderInvitation.lines),
                selectinload(TenderRound.invitations).selectinload(TenderInvitation.installer),
            )
            .order_by(TenderRound.id)
        )
    )


def latest_round(action: Action) -> TenderRound | None:
    rounds = [r for r in rounds_of(action) if r.active]
    return rounds[-1] if rounds else None


def get_round(round_id: int) -> TenderRound | None:
    return db.session.get(TenderRound, round_id)


def get_invitation(invitation_id: int) -> TenderInvitation | None:
    return db.session.get(TenderInvitation, invitation_id)


@dataclass(frozen=True)
class Invitee:
    """An installer staff are about to invite, with the addresses the invitation goes to."""

    installer: Installer
    addresses: list[str]


def preview_round(
    action: Action,
    installer_ids: list[int],
    deadline: datetime,
    *,
    now: datetime | None = None,
) -> list[Invitee]:
    """Who would be emailed if staff opened this round, for them to check before sending.

    The same rules as ``open_round`` (raising the same ``TenderError``), so that what staff
    confirm can be sent; nothing is written.
    """
    installers = _check_new_round(action, installer_ids, deadline, now or utcnow())
    return [
        Invitee(
            installer, [address for address, _language, _user in installer_recipients(installer)]
        )
        for installer in sorted(installers, key=lambda i: (i.company_name.lower(), i.id))
    ]


def _check_new_round(
    action: Action, installer_ids: list[int], deadline: datetime, now: datetime
) -> list[Installer]:
    if action.status is not ActionStatus.CLOSED:
        raise TenderError("action_not_closed")
    current = latest_round(action)
    if current is not None and current.sealed(now):
        raise TenderError("round_running")
    if not installer_ids:
        raise TenderError("no_installers")
    if deadline < now + MIN_BIDDING_TIME:
        raise TenderError("deadline_too_soon")
    if deadline > now + MAX_BIDDING_TIME:
        raise TenderError("deadline_too_late")
    return _registry_installers(action, installer_ids)


def _registry_installers(action: Action, installer_ids: list[int]) -> list[Installer]:
    installers = list(
        db.session.scalars(
            select(Installer).where(
                Installer.id.in_(installer_ids),
                Installer.organisation_id == action.organisation_id,
            )
        )
    )
    if len(installers) != len(set(installer_ids)):
        raise TenderError("unknown_installer")
    return installers


@unit_of_work
def open_round(
    actor: User,
    action: Action,
    installer_ids: list[int],
    deadline: datetime,
    note: str = "",
    *,
    now: datetime | None = None,
) -> TenderRound:
    """Invite installers of the desk's registry to bid for a closed action."""
    now = now or utcnow()
    lock_row(action)  # one round at a time per action
    installers = _check_new_round(action, installer_ids, deadline, now)
    tender = TenderRound(
        action_id=action.id,
        deadline=deadline,
        note=note.strip(),
        opened_at=now,
        opened_by_id=actor.id,
        invitations=[TenderInvitation(installer_id=i.id, invited_at=now) for i in installers],
    )
    db.session.add(tender)
    db.session.flush()
    for invitation in tender.invitations:
        jobs.enqueue(
            "tenders.send_invitation",
            f"tender-invitation:{invitation.id}",
            invitation_id=invitation.id,
        )
    audit.record(
        actor,
        action.organisation_id,
        "tender.open",
        tender,
        after={
            "action_id": action.id,
            "deadline": deadline.isoformat(),
            "installers": sorted(i.company_name for i in installers),
        },
    )
    log.info("tender round opened id=%s action=%s", tender.id, action.id)
    return tender


@unit_of_work
def change_deadline(
    actor: User, tender: TenderRound, deadline: datetime, *, now: datetime | None = None
) -> TenderRound:
    """Give the installers more time: the new deadline is later than the current one, and the
    round is still taking bids. Every invited installer gets an email with the new deadline."""
    now = now or utcnow()
    # Locked, so that the scheduler's start of matching at the old deadline and this change do
    # not both happen (it locks the round too, and skips a round that is locked).
    lock_row(tender)
    if not tender.active:
        raise TenderError("round_cancelled")
    if not tender.sealed(now) or tender.matching_started_at is not None:
        raise TenderError("deadline_passed")
    if deadline <= tender.deadline:
        raise TenderError("deadline_not_later")
    if deadline < now + MIN_BIDDING_TIME:
        raise TenderError("deadline_too_soon")
    if deadline > now + MAX_BIDDING_TIME:
        raise TenderError("deadline_too_late")
    before = tender.deadline
    tender.deadline = deadline
    for invitation in tender.invitations:
        # A deadline only ever moves later, so the key (with the new deadline) never repeats.
        jobs.enqueue(
            "tenders.send_deadline_changed",
            f"tender-deadline:{invitation.id}:{int(deadline.timestamp())}",
            invitation_id=invitation.id,
            deadline=deadline.isoformat(),
        )
    audit.record(
        actor,
        tender.action.organisation_id,
        "tender.deadline",
        tender,
        before={"deadline": before.isoformat()},
        after={"deadline": deadline.isoformat()},
    )
    log.info("tender round deadline moved id=%s deadline=%s", tender.id, deadline.isoformat())
    return tender


@unit_of_work
def cancel_round(
    actor: User, tender: TenderRound, message: str, *, now: datetime | None = None
) -> TenderRound:
    """End a round before matching has used its bids: no more bids, no matching at its deadline,
    and every invited installer gets an email with ``message``."""
    now = now or utcnow()
    lock_row(tender)  # against the scheduler starting matching at this very moment
    if not tender.active:
        raise TenderError("round_cancelled")
    if tender.matching_started_at is not None:
        raise TenderError("matching_started")
    if not message.strip():
        raise TenderError("message_required")
    tender.cancelled_at = now
    tender.cancel_message = message.strip()
    for invitation in tender.invitations:
        jobs.enqueue(
            "tenders.send_cancelled",
            f"tender-cancelled:{invitation.id}",
            invitation_id=invitation.id,
        )
    audit.record(
        actor,
        tender.action.organisation_id,
        "tender.cancel",
        tender,
        after={"action_id": tender.action_id, "message": tender.cancel_message},
    )
    log.info("tender round cancelled id=%s action=%s", tender.id, tender.action_id)
    return tender


def invitations_of(installer: Installer) -> list[TenderInvitation]:
    """The rounds an installer was invited to, newest first (the installer's portal)."""
    return list(
        db.session.scalars(
            select(TenderInvitation)
            .join(TenderRound)
            .where(
                TenderInvitation.installer_id == installer.id, TenderRound.cancelled_at.is_(None)
            )
            .options(selectinload(TenderInvitation.lines))
            .order_by(TenderRound.deadline.desc(), TenderInvitation.id.desc())
        )
    )


def biddable_measures(invitation: TenderInvitation) -> list[ActionMeasure]:
    return list(invitation.round.action.measures)


@unit_of_work
def submit_bid(
    actor: User,
    invitation: TenderInvitation,
    bids: dict[int, BidInput],
    *,
    now: datetime | None = None,
) -> TenderInvitation:
    """Save the installer's bid (replacing an earlier one) while the round is still sealed.

    ``bids`` maps action measure ids to what is offered; a measure left out is not offered.
    """
    now = now or utcnow()
    if actor.role is not Role.INSTALLER or actor.installer_id != invitation.installer_id:
        raise TenderError("not_yours")
    # Locked, so that a bid saved at the last second and the deadline's matching do not race.
    lock_row(invitation)
    tender = invitation.round
    # Read again under the lock: staff may have cancelled the round or moved its deadline.
    db.session.refresh(tender)
    if not tender.active:
        raise TenderError("round_cancelled")
    if not tender.sealed(now):
        raise TenderError("deadline_passed")
    offered = {m.id for m in tender.action.measures}
    if not bids:
        raise TenderError("no_measures")
    for action_measure_id, bid in bids.items():
        if action_measure_id not in offered:
            raise TenderError("unknown_measure")
        if not 0 < bid.unit_price_cents <= MAX_AMOUNT_CENTS:
            raise TenderError("price_out_of_range")
        if not 0 < bid.capacity_homes <= MAX_CAPACITY_HOMES:
            raise TenderError("capacity_out_of_range")
    invitation.lines.clear()
    db.session.flush()
    for action_measure_id, bid in sorted(bids.items()):
        invitation.lines.append(
            BidLine(
                action_measure_id=action_measure_id,
                unit_price_cents=bid.unit_price_cents,
                capacity_homes=bid.capacity_homes,
            )
        )
    invitation.submitted_at = now
    invitation.submitted_by_id = actor.id
    invitation.revisions += 1
    log.info("bid saved invitation=%s revision=%s", invitation.id, invitation.revisions)
    return invitation


@dataclass(frozen=True)
class BidRow:
    """One installer's bid as staff compare them (after the deadline)."""

    invitation: TenderInvitation
    # action measure id -> the bid for it, None where the installer offers nothing
    lines: dict[int, BidLine | None]


@dataclass(frozen=True)
class BidComparison:
    tender: TenderRound
    sealed: bool
    measures: list[ActionMeasure]
    rows: list[BidRow]
    # action measure id -> the lowest unit price bid (None when nobody bid on it)
    lowest: dict[int, int | None]

    @property
    def submitted(self) -> int:
        return sum(1 for row in self.rows if row.invitation.submitted_at is not None)


def compare_bids(tender: TenderRound, now: datetime | None = None) -> BidComparison:
    """The bids side by side; while the round is sealed, only who has bid, never what."""
    now = now or utcnow()
    sealed = tender.sealed(now)
    measures = list(tender.action.measures)
    rows = []
    for invitation in tender.invitations:
        by_measure = {line.action_measure_id: line for line in invitation.lines}
        rows.append(
            BidRow(
                invitation,
                {}
                if sealed or invitation.submitted_at is None
                else {m.id: by_measure.get(m.id) for m in measures},
            )
        )
    lowest: dict[int, int | None] = {}
    for measure in measures:
        prices = [
            line.unit_price_cents for row in rows if (line := row.lines.get(measure.id)) is not None
        ]
        lowest[measure.id] = min(prices) if prices else None
    return BidComparison(tender, sealed, measures, rows, lowest)


def submitted_bids(tender: TenderRound) -> list[TenderInvitation]:
    """What matching uses: the invitations with a bid."""
    return [i for i in tender.invitations if i.submitted_at is not None and i.lines]


def rounds_past_deadline(now: datetime | None = None) -> list[TenderRound]:
    """Rounds whose deadline has passed and whose matching has not started yet, locked so that
    two schedulers start it once."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(TenderRound)
            .where(
                TenderRound.deadline <= now,
                TenderRound.cancelled_at.is_(None),
                TenderRound.matching_started_at.is_(None),
            )
            .order_by(TenderRound.id)
            .limit(50)
            .with_for_update(skip_locked=True)
        )
    )
