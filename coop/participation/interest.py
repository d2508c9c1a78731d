"""Heat-network interest campaigns: households register non-binding interest until the
deadline; reaching the threshold notifies the desk's staff and every interested household,
exactly once; interest can be withdrawn at any time.

"Exactly once" with concurrent pledges: every pledge locks the campaign's row before it counts,
so the pledges of one campaign are counted one after another. The one whose count first
reaches the threshold sets ``threshold_reached_at`` and enqueues the notifications in the same
transaction; the next one finds it set. The outbox keys are unique as a second guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import Role, User
from coop.actions.models import Neighbourhood
from coop.core import audit, jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation.models import InterestCampaign, InterestPledge
from coop.participation.services import HouseholdAddress, ParticipationError

log = logging.getLogger(__name__)


@dataclass
class CampaignDetails:
    title_nl: str
    title_en: str
    description_nl: str
    description_en: str
    household_count: int
    threshold_percent: int
    deadline_at: datetime


def create_campaign(
    actor: User, neighbourhood: Neighbourhood, details: CampaignDetails, now: datetime | None = None
) -> InterestCampaign:
    now = now or utcnow()
    if details.deadline_at <= now:
        raise ParticipationError("deadline_past")
    if details.household_count <= 0:
        raise ParticipationError("households_needed")
    if not 1 <= details.threshold_percent <= 100:
        raise ParticipationError("threshold_range")
    campaign = InterestCampaign(
        organisation_id=neighbourhood.organisation_id,
        neighbourhood_id=neighbourhood.id,
        **details.__dict__,
    )
    db.session.add(campaign)
    db.session.flush()
    audit.record(
        actor,
        campaign.organisation_id,
        "interest.create",
        campaign,
        after={"title": campaign.title_nl, "threshold_percent": campaign.threshold_percent},
    )
    db.session.commit()
    return campaign


def get_campaign(campaign_id: int) -> InterestCampaign | None:
    return db.session.get(InterestCampaign, campaign_id)


def campaigns_of(organisation_id: int) -> list[InterestCampaign]:
    return list(
        db.session.scalars(
            select(InterestCampaign)
            .where(InterestCampaign.organisation_id == organisation_id)
            .order_by(InterestCampaign.deadline_at.desc())
        )
    )


def open_campaigns(neighbourhood_id: int, now: datetime | None = None) -> list[InterestCampaign]:
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(InterestCampaign)
            .where(
                InterestCampaign.neighbourhood_id == neighbourhood_id,
                InterestCampaign.deadline_at > now,
            )
            .order_by(InterestCampaign.deadline_at)
        )
    )


def interested_count(campaign_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(InterestPledge)
            .where(InterestPledge.campaign_id == campaign_id, InterestPledge.withdrawn_at.is_(None))
        )
        or 0
    )


@dataclass(frozen=True)
class Progress:
    interested: int
    needed: int

    @property
    def share(self) -> float:
        """How far towards the threshold, 0 to 1 (the bar on the page)."""
        return min(self.interested / self.needed, 1.0) if self.needed else 1.0

    @property
    def to_go(self) -> int:
        return max(self.needed - self.interested, 0)


def progress(campaign: InterestCampaign) -> Progress:
    return Progress(interested_count(campaign.id), campaign.threshold_households)


def find_pledge(campaign: InterestCampaign, address: HouseholdAddress) -> InterestPledge | None:
    return db.session.scalar(
        select(InterestPledge).where(
            InterestPledge.campaign_id == campaign.id,
            InterestPledge.postcode == address.postcode,
            InterestPledge.house_number == address.house_number,
            InterestPledge.house_number_addition == address.addition,
        )
    )


def get_pledge(pledge_id: int) -> InterestPledge | None:
    return db.session.get(InterestPledge, pledge_id)


def _lock(campaign_id: int) -> InterestCampaign:
    locked = db.session.scalars(
        select(InterestCampaign)
        .where(InterestCampaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return locked


def pledge(
    campaign: InterestCampaign,
    *,
    address: HouseholdAddress,
    name: str,
    email: str,
    language: str,
    contact_opt_in: bool,
    consent: bool,
    now: datetime | None = None,
) -> InterestPledge:
    """Register a household's interest. The same address twice raises ``already_interested``
    (with the pledge) and stores nothing; a withdrawn household may register again."""
    now = now or utcnow()
    if not consent:
        raise ParticipationError("no_consent")
    if not campaign.is_open(now):
        raise ParticipationError("campaign_closed")
    if address.pc4 not in campaign.neighbourhood.pc4_list:
        raise ParticipationError("outside_neighbourhood")
    campaign_id = campaign.id
    campaign = _lock(campaign_id)
    existing = find_pledge(campaign, address)
    if existing is not None and existing.withdrawn_at is None:
        db.session.rollback()
        raise ParticipationError("already_interested", pledge=existing)
    if existing is not None:
        entry = existing
        entry.round += 1
        entry.withdrawn_at = None
    else:
        entry = InterestPledge(
            campaign_id=campaign.id,
            postcode=address.postcode,
            pc4=address.pc4,
            house_number=address.house_number,
            house_number_addition=address.addition,
            round=1,
        )
        db.session.add(entry)
    entry.street = address.street
    entry.name = name
    entry.email = email.strip().lower()
    entry.language = language
    entry.contact_opt_in = contact_opt_in
    entry.consent_at = now
    entry.created_at = now
    try:
        db.session.flush()
        jobs.enqueue(
            "participation.send_pledge",
            f"interest-pledge:{entry.id}:{entry.round}",
            pledge_id=entry.id,
            round=entry.round,
        )
        _check_threshold(campaign, now)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ParticipationError(
            "already_interested", pledge=find_pledge(campaign, address)
        ) from None
    log.info("interest pledged id=%s campaign=%s", entry.id, campaign_id)
    return entry


def _check_threshold(campaign: InterestCampaign, now: datetime) -> None:
    """Under the campaign's lock: the first time the count reaches the threshold, mark it and
    enqueue one notification per interested household and per staff member of the desk."""
    if campaign.threshold_reached_at is not None:
        return
    if interested_count(campaign.id) < campaign.threshold_households:
        return
    campaign.threshold_reached_at = now
    pledge_ids = db.session.scalars(
        select(InterestPledge.id).where(
            InterestPledge.campaign_id == campaign.id, InterestPledge.withdrawn_at.is_(None)
        )
    ).all()
    for pledge_id in pledge_ids:
        jobs.enqueue(
            "participation.send_threshold_reached",
            f"interest-threshold:{campaign.id}:pledge:{pledge_id}",
            campaign_id=campaign.id,
            pledge_id=pledge_id,
        )
    staff_ids = db.session.scalars(
        select(User.id).where(
            User.organisation_id == campaign.organisation_id,
            User.role == Role.STAFF,
            User.is_active_account.is_(True),
        )
    ).all()
    for user_id in staff_ids:
        jobs.enqueue(
            "participation.send_threshold_reached_staff",
            f"interest-threshold:{campaign.id}:staff:{user_id}",
            campaign_id=campaign.id,
            user_id=user_id,
        )
    log.info("interest threshold reached campaign=%s", campaign.id)


def withdraw(entry: InterestPledge, now: datetime | None = None) -> None:
    """Interest is non-binding: withdrawn at once, whatever the campaign's state. A threshold
    that was reached stays reached (it was announced)."""
    if entry.withdrawn_at is not None:
        raise ParticipationError("already_withdrawn")
    _lock(entry.campaign_id)
    db.session.refresh(entry)
    if entry.withdrawn_at is not None:
        db.session.rollback()
        raise ParticipationError("already_withdrawn")
    entry.withdrawn_at = now or utcnow()
    entry.contact_opt_in = False
    db.session.commit()


def erase_pledge(entry: InterestPledge) -> None:
    """Part of erasing a person; the caller commits. The row goes altogether: a withdrawn row
    counts nowhere (progress, the ambassadors' lists and ``pledges_by_pc4`` skip it), so only
    its name, email and address would remain. Under the campaign's lock, as every change to the
    count. ``threshold_reached_at`` is left alone: a threshold reached stays reached (it was
    announced, as with ``withdraw``), and one not reached is reached by a later pledge, counted
    without this one. Jobs already queued for the pledge find it gone and send nothing."""
    _lock(entry.campaign_id)
    db.session.delete(entry)


def pledges_by_pc4(campaign: InterestCampaign) -> list[tuple[str, int]]:
    rows = db.session.execute(
        select(InterestPledge.pc4, func.count())
        .where(InterestPledge.campaign_id == campaign.id, InterestPledge.withdrawn_at.is_(None))
        .group_by(InterestPledge.pc4)
        .order_by(InterestPledge.pc4)
    ).all()
    return [(pc4, int(n)) for pc4, n in rows]
