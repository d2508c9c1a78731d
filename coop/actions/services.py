"""Actions: reading them for the public pages (open actions by postcode, tiers and participation)
and managing them from the desk (details, measures and tiers, neighbourhoods, status changes)."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from coop.accounts.models import Role, User
from coop.actions import events
from coop.actions import participants as taking_part
from coop.actions.models import (
    Action,
    ActionMeasure,
    ActionStatus,
    Measure,
    Neighbourhood,
    PriceTier,
)
from coop.core import audit, jobs
from coop.core.db import unit_of_work
from coop.core.errors import DomainError
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)


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


def action_by_slug(slug: str, *, page: bool = True) -> Action | None:
    """The action with what its public page shows; ``page=False``: with its measures and its
    desk only, which is all the sign-up form needs (one query instead of five, on every
    sign-up). The desk comes along for its address-lookup switch, which the form asks once on
    its page and twice on a POST: held by the action, it is asked of the session's identity
    map, not of the database (a desk looked up on its own is let go at once, and fetched again)."""
    if not page:
        return (
            db.session.execute(
                select(Action)
                .where(Action.slug == slug)
                .options(joinedload(Action.measures), joinedload(Action.organisation))
            )
            .unique()
            .scalar_one_or_none()
        )
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
    counts = taking_part.by_measure.call(action)
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


# --- the desk: managing an organisation's actions ---------------------------------------------


class ActionError(DomainError):
    """A rule stopped the change; ``code`` names it (the view shows the message), ``params``
    give the details the message needs (which tier, ...)."""


_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 80


@dataclass(frozen=True)
class ActionRow:
    action: Action
    registrations: int


@dataclass
class ActionDetails:
    """What staff fill in for an action; times are aware UTC datetimes."""

    title_nl: str
    title_en: str
    summary_nl: str
    summary_en: str
    description_nl: str
    description_en: str
    slug: str  # empty: made from the Dutch title
    registration_opens_at: datetime
    registration_closes_at: datetime
    contact_email: str
    contact_phone: str | None
    postcode_areas: list[str] = field(default_factory=list)
    neighbourhood_ids: list[int] = field(default_factory=list)
    order_response_days: int = 5


def registration_counts(action_ids: list[int]) -> dict[int, int]:
    """Registrations that still count (not withdrawn or expired), per action."""
    return taking_part.registrations_per_action.call(action_ids) if action_ids else {}


def organisation_actions(organisation_id: int) -> list[ActionRow]:
    actions = list(
        db.session.scalars(
            select(Action)
            .where(Action.organisation_id == organisation_id)
            .order_by(Action.registration_closes_at.desc(), Action.id.desc())
        )
    )
    counts = registration_counts([a.id for a in actions])
    return [ActionRow(action, counts.get(action.id, 0)) for action in actions]


def action_for_desk(action_id: int) -> Action | None:
    return db.session.scalar(
        select(Action)
        .where(Action.id == action_id)
        .options(
            selectinload(Action.measures).selectinload(ActionMeasure.tiers),
            selectinload(Action.neighbourhoods),
        )
    )


def catalogue() -> list[Measure]:
    return list(db.session.scalars(select(Measure).order_by(Measure.id)))


def slug_from_title(title: str) -> str:
    """ "Samen isoleren in Oost!" -> "samen-isoleren-in-oost"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[: SLUG_MAX - 4].rstrip("-") or "actie"


def slug_taken(slug: str, exclude_action_id: int | None = None) -> bool:
    query = select(Action.id).where(Action.slug == slug)
    if exclude_action_id is not None:
        query = query.where(Action.id != exclude_action_id)
    return db.session.scalar(query) is not None


def _free_slug(base: str) -> str:
    slug, n = base, 2
    while slug_taken(slug):
        slug, n = f"{base}-{n}", n + 1
    return slug


def parse_pc4_list(text: str) -> tuple[list[str], list[str]]:
    """ "3521, 3522 3521" -> (["3521", "3522"], []); the second list holds what is not a PC4."""
    good: set[str] = set()
    bad: list[str] = []
    for part in re.split(r"[\s,;]+", text or ""):
        if not part:
            continue
        if re.fullmatch(r"\d{4}", part) and 1000 <= int(part) <= 9999:
            good.add(part)
        elif part not in bad:
            bad.append(part)
    return sorted(good), bad


def _organisation_neighbourhoods(organisation_id: int, ids: list[int]) -> list[Neighbourhood]:
    if not ids:
        return []
    found = list(
        db.session.scalars(
            select(Neighbourhood).where(
                Neighbourhood.id.in_(ids), Neighbourhood.organisation_id == organisation_id
            )
        )
    )
    if len(found) != len(set(ids)):  # someone else's neighbourhood, or a guessed id
        raise ActionError("unknown_neighbourhood")
    return found


def _action_snapshot(action: Action) -> dict[str, Any]:
    data = audit.snapshot(action)
    data.pop("updated_at", None)
    data["neighbourhood_ids"] = sorted(n.id for n in action.neighbourhoods)
    return data


def _check_details(details: ActionDetails, exclude_action_id: int | None) -> None:
    if details.registration_closes_at <= details.registration_opens_at:
        raise ActionError("window_order")
    if details.slug:
        if not _SLUG.match(details.slug) or len(details.slug) > SLUG_MAX:
            raise ActionError("slug_invalid")
        if slug_taken(details.slug, exclude_action_id):
            raise ActionError("slug_taken")


def _apply_details(action: Action, details: ActionDetails) -> None:
    action.title_nl = details.title_nl
    action.title_en = details.title_en
    action.summary_nl = details.summary_nl
    action.summary_en = details.summary_en
    action.description_nl = details.description_nl
    action.description_en = details.description_en
    action.registration_opens_at = details.registration_opens_at
    action.registration_closes_at = details.registration_closes_at
    action.contact_email = details.contact_email
    action.contact_phone = details.contact_phone or None
    action.postcode_areas = ",".join(details.postcode_areas)
    action.order_response_days = details.order_response_days
    action.neighbourhoods = _organisation_neighbourhoods(
        action.organisation_id, details.neighbourhood_ids
    )


def create_action(actor: User, details: ActionDetails) -> Action:
    """A new draft action of the actor's organisation."""
    assert actor.organisation_id is not None
    _check_details(details, None)
    action = Action(
        organisation_id=actor.organisation_id,
        status=ActionStatus.DRAFT,
        slug=details.slug or _free_slug(slug_from_title(details.title_nl)),
    )
    _apply_details(action, details)
    db.session.add(action)
    try:
        db.session.flush()
    except IntegrityError as exc:  # the slug was taken between our check and the insert
        db.session.rollback()
        raise ActionError("slug_taken") from exc
    audit.record(
        actor, action.organisation_id, "action.create", action, after=_action_snapshot(action)
    )
    db.session.commit()
    log.info("action created id=%s by user id=%s", action.id, actor.id)
    return action


def _refuse_if_cancelled(action: Action) -> None:
    if action.status is ActionStatus.CANCELLED:
        raise ActionError("action_cancelled")


def update_action(actor: User, action: Action, details: ActionDetails) -> Action:
    _refuse_if_cancelled(action)
    _check_details(details, action.id)
    before = _action_snapshot(action)
    _apply_details(action, details)
    action.slug = details.slug or action.slug
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise ActionError("slug_taken") from exc
    old, new = audit.changed(before, _action_snapshot(action))
    if new:
        audit.record(actor, action.organisation_id, "action.update", action, before=old, after=new)
    db.session.commit()
    return action


# --- status transitions -----------------------------------------------------------------------


def _locked(action: Action) -> Action:
    """The action re-read under a row lock, so two transitions (a click and the scheduler)
    cannot both start from the same status."""
    db.session.refresh(action, with_for_update=True)
    return action


def _transition(
    actor: User | None,
    action: Action,
    verb: str,
    to: ActionStatus,
    *,
    closed_at: datetime | None,
    extra: dict[str, Any] | None = None,
) -> None:
    before = {"status": action.status.value, "closed_at": _iso(action.closed_at)}
    action.status = to
    action.closed_at = closed_at
    after = {"status": to.value, "closed_at": _iso(closed_at), **(extra or {})}
    audit.record(actor, action.organisation_id, verb, action, before=before, after=after)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@unit_of_work
def publish_action(actor: User, action: Action, now: datetime | None = None) -> None:
    """Draft -> open: residents can find it and register within its window."""
    now = now or utcnow()
    action = _locked(action)
    if action.status is not ActionStatus.DRAFT:
        raise ActionError("cannot_publish", status=action.status.value)
    if not action.measures:
        raise ActionError("no_measures")
    if action.registration_closes_at <= now:
        raise ActionError("window_over")
    _transition(actor, action, "action.publish", ActionStatus.OPEN, closed_at=None)
    db.session.commit()


@unit_of_work
def close_action(actor: User | None, action: Action, now: datetime | None = None) -> None:
    """Open -> closed: no new registrations; batching and matching can start."""
    now = now or utcnow()
    action = _locked(action)
    if action.status is not ActionStatus.OPEN:
        raise ActionError("cannot_close", status=action.status.value)
    _transition(actor, action, "action.close", ActionStatus.CLOSED, closed_at=now)
    _registration_closed(action)
    db.session.commit()


def _registration_closed(action: Action) -> None:
    # Orders build on actions: closing registration starts grouping the demand.
    events.registration_closed.send(action)


@unit_of_work
def reopen_action(actor: User, action: Action, now: datetime | None = None) -> None:
    """Closed -> open, only while the window is still open (extend it first otherwise)."""
    now = now or utcnow()
    action = _locked(action)
    if action.status is not ActionStatus.CLOSED:
        raise ActionError("cannot_reopen", status=action.status.value)
    if action.registration_closes_at <= now:
        raise ActionError("window_over_reopen")
    _transition(actor, action, "action.reopen", ActionStatus.OPEN, closed_at=None)
    db.session.commit()


@unit_of_work
def cancel_action(actor: User, action: Action, reason: str, now: datetime | None = None) -> None:
    """Any status -> cancelled, with the reason in the audit log (the action has no column)."""
    now = now or utcnow()
    action = _locked(action)
    if action.status is ActionStatus.CANCELLED:
        raise ActionError("cannot_cancel", status=action.status.value)
    if not reason.strip():
        raise ActionError("reason_required")
    _transition(
        actor,
        action,
        "action.cancel",
        ActionStatus.CANCELLED,
        closed_at=action.closed_at or now,
        extra={"reason": reason},
    )
    # A cancelled action's open orders end with it; deposits not paid are no longer due, those
    # paid are all refunded, by one refund run (orders and payments build on actions).
    events.action_cancelled.send(action, actor=actor, now=now)
    db.session.commit()


def close_ended_actions(now: datetime | None = None) -> int:
    """Close every open action whose registration window has passed, and tell its staff.

    One email per staff member per action (the outbox key); a second round finds nothing open.
    """
    now = now or utcnow()
    ended = list(
        db.session.scalars(
            select(Action)
            .where(Action.status == ActionStatus.OPEN, Action.registration_closes_at <= now)
            .order_by(Action.id)
            .with_for_update(skip_locked=True)
        )
    )
    for action in ended:
        _transition(None, action, "action.auto_close", ActionStatus.CLOSED, closed_at=now)
        _registration_closed(action)
        staff = db.session.scalars(
            select(User.id).where(
                User.organisation_id == action.organisation_id,
                User.role == Role.STAFF,
                User.is_active_account.is_(True),
            )
        )
        for user_id in staff:
            jobs.enqueue(
                "actions.send_closed_notice",
                f"action-closed:{action.id}:{user_id}",
                action_id=action.id,
                user_id=user_id,
            )
        log.info("action closed at the end of its window id=%s", action.id)
    db.session.commit()
    return len(ended)


# --- measures offered and their group price tiers ---------------------------------------------


def tier_problem(indicative_price_cents: int, tiers: list[tuple[int, int]]) -> ActionError | None:
    """Tiers (min participants, price per unit in cents) in the order given: each must start at
    more homes than the one before and cost less, and all less than the indicative price."""
    previous_min, previous_price = 0, indicative_price_cents
    for number, (min_participants, price_cents) in enumerate(tiers, start=1):
        if min_participants < 1:
            return ActionError("tier_min_positive", tier=number)
        if price_cents < 1:
            return ActionError("tier_price_positive", tier=number)
        if min_participants <= previous_min:
            return ActionError("tier_thresholds_increase", tier=number)
        if price_cents >= previous_price:
            code = "tier_below_indicative" if number == 1 else "tier_prices_decrease"
            return ActionError(code, tier=number)
        previous_min, previous_price = min_participants, price_cents
    return None


def _offer_snapshot(offer: ActionMeasure) -> dict[str, Any]:
    return {
        "measure": offer.measure.code if offer.measure else offer.measure_id,
        "indicative_price_cents": offer.indicative_price_cents,
        "tiers": [[t.min_participants, t.price_cents] for t in offer.tiers],
    }


def _check_offer(indicative_price_cents: int, tiers: list[tuple[int, int]]) -> None:
    if indicative_price_cents < 1:
        raise ActionError("price_positive")
    problem = tier_problem(indicative_price_cents, tiers)
    if problem is not None:
        raise problem


def offer_for(action: Action, action_measure_id: int) -> ActionMeasure | None:
    """One of ``action``'s offers; None for another action's (whatever the id says)."""
    return next((m for m in action.measures if m.id == action_measure_id), None)


def offer_measure(
    actor: User,
    action: Action,
    measure_id: int,
    indicative_price_cents: int,
    tiers: list[tuple[int, int]],
) -> ActionMeasure:
    _refuse_if_cancelled(action)
    measure = db.session.get(Measure, measure_id)
    if measure is None:
        raise ActionError("unknown_measure")
    if any(m.measure_id == measure_id for m in action.measures):
        raise ActionError("measure_already_offered")
    _check_offer(indicative_price_cents, tiers)
    offer = ActionMeasure(
        measure=measure,
        position=max((m.position for m in action.measures), default=-1) + 1,
        indicative_price_cents=indicative_price_cents,
        tiers=[PriceTier(min_participants=n, price_cents=p) for n, p in tiers],
    )
    action.measures.append(offer)
    try:
        db.session.flush()
    except IntegrityError as exc:  # added twice at the same moment
        db.session.rollback()
        raise ActionError("measure_already_offered") from exc
    audit.record(
        actor, action.organisation_id, "action.measure_add", offer, after=_offer_snapshot(offer)
    )
    db.session.commit()
    return offer


def update_offer(
    actor: User, offer: ActionMeasure, indicative_price_cents: int, tiers: list[tuple[int, int]]
) -> None:
    _refuse_if_cancelled(offer.action)
    _check_offer(indicative_price_cents, tiers)
    before = _offer_snapshot(offer)
    offer.indicative_price_cents = indicative_price_cents
    offer.tiers.clear()
    # Tiers are unique per (offer, min participants): delete the old ones before inserting.
    db.session.flush()
    offer.tiers.extend(PriceTier(min_participants=n, price_cents=p) for n, p in tiers)
    db.session.flush()
    old, new = audit.changed(before, _offer_snapshot(offer))
    if new:
        audit.record(
            actor,
            offer.action.organisation_id,
            "action.measure_update",
            offer,
            before=old,
            after=new,
        )
    db.session.commit()


def offer_in_use(offer: ActionMeasure) -> bool:
    """Whether any registration (whatever its status) chose this measure."""
    return taking_part.offer_chosen.call(offer)


@unit_of_work
def remove_offer(actor: User, offer: ActionMeasure) -> None:
    """Stop offering a measure, only while no registration uses it."""
    action = offer.action
    _refuse_if_cancelled(action)
    if offer_in_use(offer):
        raise ActionError("measure_in_use")
    before = _offer_snapshot(offer)
    audit.record(actor, action.organisation_id, "action.measure_remove", offer, before=before)
    action.measures.remove(offer)
    db.session.commit()
