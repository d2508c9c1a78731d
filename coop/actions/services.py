"""Reading actions for the public pages: open actions by postcode, tiers and participation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.actions.models import Action, ActionMeasure, ActionStatus, PriceTier
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.services import participants_by_measure


def public_actions(pc4: str | None = None, now: datetime | None = None) -> list[Action]:
    """Published actions whose registration window has not closed, optionally for one PC4."""
    now = now or utcnow()
    actions = db.session.scalars(
        select(Action)
        .where(Action.status == ActionStatus.OPEN, Action.registration_closes_at > now)
        .order_by(Action.registration_closes_at)
    ).all()
    if pc4 is None:
        return list(actions)
    return [action for action in actions if pc4 in action.pc4_list]


def action_by_slug(slug: str) -> Action | None:
    return db.session.scalar(
        select(Action)
        .where(Action.slug == slug)
        .options(
            selectinload(Action.measures).selectinload(ActionMeasure.tiers),
            selectinload(Action.milestones),
            selectinload(Action.faqs),
        )
    )


@dataclass(frozen=True)
class MeasureOffer:
    """One measure on the action page: what it costs now and what it costs at each tier."""

    action_measure: ActionMeasure
    participants: int
    tiers: list[PriceTier]
    reached: PriceTier | None
    next_tier: PriceTier | None

    @property
    def current_price_cents(self) -> int:
        return (
            self.reached.price_cents if self.reached else self.action_measure.indicative_price_cents
        )

    @property
    def homes_to_next_tier(self) -> int | None:
        return (
            None if self.next_tier is None else self.next_tier.min_participants - self.participants
        )


def measure_offers(action: Action) -> list[MeasureOffer]:
    counts = participants_by_measure(action)
    offers = []
    for action_measure in action.measures:
        participants = counts.get(action_measure.id, 0)
        tiers = list(action_measure.tiers)
        reached = None
        next_tier = None
        for tier in tiers:
            if participants >= tier.min_participants:
                reached = tier
            elif next_tier is None:
                next_tier = tier
        offers.append(MeasureOffer(action_measure, participants, tiers, reached, next_tier))
    return offers
