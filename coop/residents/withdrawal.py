"""Withdrawing a household's measures, one by one or all of them: the one service that ends a
measure's work. The resident's withdraw page, the desk withdrawing on a resident's behalf, the
withdrawal of a whole registration and the erasure of an account all call
``withdraw_measures``; nothing else ends a measure.

Each measure has its own lifecycle (waiting for an installer, assigned, survey planned, quoted,
accepted, installed, completed), and the rule is per measure:

* not accepted yet: can be withdrawn; nothing was asked or paid for it;
* accepted: can be withdrawn within COOLING_OFF_DAYS after its quote was accepted (the moment
  the contract is made; paying the deposit later does not move it). Its deposit is then no
  longer due when unpaid, and refunded in full when paid. After that period the resident
  cannot withdraw it on their own page (the desk settles it with the installer);
* installed or completed: never; its deposit is never refunded on a withdrawal.

Withdrawing a measure ends its order line (the installer is told), cancels or refunds its
deposit, records the change in the registration's history, emails the resident, and tells the
desk when work or money was involved. Withdrawing every measure still going withdraws the
registration; withdrawing some leaves the rest going, and the registration's status (a summary
for display: its least advanced measure) follows.

An erasure (``erasing=True``) ends every measure that is not installed, also accepted work past
its cooling-off period (its deposit is then cancelled when unpaid, and kept when paid: staff
decide about it with the installer); installed work stays in the installer's order and in the
books, without the person (``coop.orders.services.detach_lines``).
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coop.accounts.models import Role, User
from coop.core import audit, jobs
from coop.core.db import lock_row
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.models import Order, OrderLine, QuoteStatus
from coop.payments import services as payments
from coop.payments.models import Payment
from coop.payments.services import WithdrawalEffect
from coop.registrations import services as registrations
from coop.registrations.models import (
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)

log = logging.getLogger(__name__)

S = RegistrationStatus
# Where a measure's order line says it is.
_LINE_STEP = {
    "assigned": S.ASSIGNED,
    "survey_planned": S.SURVEY_PLANNED,
    "quoted": S.QUOTED,
    "accepted": S.ACCEPTED,
    "installed": S.INSTALLED,
    "completed": S.COMPLETED,
    "declined": S.DECLINED,
    "withdrawn": S.WITHDRAWN,
}
# A measure that has ended: nothing to withdraw any more.
ENDED_STEPS = frozenset({S.WITHDRAWN, S.DECLINED, S.EXPIRED})
# The work is done: never withdrawn, its deposit never refunded on a withdrawal.
DONE_STEPS = frozenset({S.INSTALLED, S.COMPLETED})
MAX_REASON = 2000


class Refusal(enum.StrEnum):
    """Why a measure cannot be withdrawn (now)."""

    ENDED = "ended"  # withdrawn, declined or lapsed already
    INSTALLED = "installed"  # the work is installed or completed
    COOLING_OFF_ENDED = "cooling_off_ended"  # accepted longer ago than the cooling-off period


@dataclass(frozen=True)
class MeasurePlan:
    """One measure of a household: how far it is, and what withdrawing it now would do."""

    measure: RegistrationMeasure
    step: RegistrationStatus
    line: OrderLine | None  # its current order line, if it has one
    accepted_at: datetime | None  # when its quote was accepted
    cooling_off_until: datetime | None  # the last moment it can be withdrawn once accepted
    deposit: Payment | None  # the deposit of its accepted quote
    refusal: Refusal | None  # None: it can be withdrawn (ended, when erasing)
    deposit_effect: WithdrawalEffect  # what withdrawing does with the deposit (or what stays)

    @property
    def withdrawable(self) -> bool:
        return self.refusal is None

    @property
    def going(self) -> bool:
        """Still under way: neither ended nor done."""
        return self.step not in ENDED_STEPS and self.step not in DONE_STEPS

    @property
    def installer_told(self) -> bool:
        """Withdrawing it ends an order line, and its installer hears."""
        return self.line is not None and self.step not in ENDED_STEPS | DONE_STEPS


def _step(registration: Registration, wish: RegistrationMeasure, line: OrderLine | None) -> S:
    if wish.withdrawn_at is not None:
        return S.WITHDRAWN
    if line is not None and line.status.value in _LINE_STEP:
        return _LINE_STEP[line.status.value]
    if registration.status in (S.PENDING_CONFIRMATION, S.WITHDRAWN, S.EXPIRED, S.DECLINED):
        # Before confirmation; or ended as a whole (also before measures ended one by one).
        return registration.status
    return S.CONFIRMED  # confirmed, waiting for an installer


def _rule(
    step: S,
    until: datetime | None,
    deposit: Payment | None,
    now: datetime,
    erasing: bool,
) -> tuple[Refusal | None, WithdrawalEffect]:
    def staying() -> WithdrawalEffect:
        # What stays when the measure is not withdrawn: a deposit due, or one kept.
        effect = payments.withdrawal_effect(deposit, refund_allowed=False)
        return WithdrawalEffect.DUE if effect is WithdrawalEffect.CANCELLED else effect

    if step in ENDED_STEPS:
        return Refusal.ENDED, WithdrawalEffect.NONE
    if step in DONE_STEPS:
        return Refusal.INSTALLED, staying()
    if step is S.ACCEPTED and (until is None or now > until):
        if erasing:
            return None, payments.withdrawal_effect(deposit, refund_allowed=False)
        return Refusal.COOLING_OFF_ENDED, staying()
    return None, payments.withdrawal_effect(deposit, refund_allowed=True)


def measure_plans(
    registration: Registration, now: datetime | None = None, *, erasing: bool = False
) -> list[MeasurePlan]:
    """Every measure of the registration with its step and what withdrawing it would do, in
    the order of the action's measures."""
    now = now or utcnow()
    lines = {
        line.registration_measure_id: line
        for line in db.session.scalars(
            select(OrderLine)
            .where(OrderLine.registration_id == registration.id, OrderLine.current.is_(True))
            .options(
                selectinload(OrderLine.quotes),
                selectinload(OrderLine.order).selectinload(Order.installer),
            )
        )
    }
    deposits = {p.quote_id: p for p in payments.deposits_of(registration) if p.quote_id}
    plans = []
    for wish in sorted(registration.measures, key=lambda m: (m.action_measure.position, m.id)):
        line = lines.get(wish.id)
        accepted = None
        if line is not None:
            accepted = next((q for q in line.quotes if q.status is QuoteStatus.ACCEPTED), None)
        accepted_at = accepted.decided_at if accepted is not None else None
        until = payments.cooling_off_until(accepted_at)
        deposit = deposits.get(accepted.id) if accepted is not None else None
        step = _step(registration, wish, line)
        refusal, effect = _rule(step, until, deposit, now, erasing)
        plans.append(MeasurePlan(wish, step, line, accepted_at, until, deposit, refusal, effect))
    return plans


def can_withdraw_any(registration: Registration, now: datetime | None = None) -> bool:
    return any(plan.withdrawable for plan in measure_plans(registration, now))


@dataclass(frozen=True)
class Withdrawal:
    """What one call withdrew, and whether the registration as a whole ended with it."""

    plans: list[MeasurePlan]
    registration_withdrawn: bool


def withdraw_measures(
    registration: Registration,
    measure_ids: Collection[int] | None,
    reason: str,
    *,
    actor: User | None,
    now: datetime | None = None,
    erasing: bool = False,
) -> Withdrawal:
    """Withdraw the measures ``measure_ids`` (None: every measure that can be withdrawn) as
    the rule above says, in one transaction. Refused as a whole (``RegistrationError``) when
    one of them cannot be withdrawn. The caller commits (so an erasure stays one transaction).
    """
    now = now or utcnow()
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise registrations.RegistrationError("reason_too_long")
    lock_row(registration)  # two withdrawals of one household wait for each other
    # The work moves on under the lines' locks (an installer reporting it installed): decide
    # on what is committed once they are ours.
    db.session.scalars(
        select(OrderLine)
        .where(OrderLine.registration_id == registration.id, OrderLine.current.is_(True))
        .with_for_update(of=OrderLine)
        .execution_options(populate_existing=True)
    ).all()
    plans = measure_plans(registration, now, erasing=erasing)
    if measure_ids is None:
        chosen = [p for p in plans if p.withdrawable]
    else:
        by_id = {p.measure.id: p for p in plans}
        wanted = set(measure_ids)
        if not wanted or any(i not in by_id for i in wanted):
            raise registrations.RegistrationError("unknown_measure")
        chosen = [by_id[i] for i in sorted(wanted)]
        if any(not p.withdrawable for p in chosen):
            raise registrations.RegistrationError("not_withdrawable")
    if not chosen:
        if erasing:
            return Withdrawal([], False)
        raise registrations.RegistrationError("not_withdrawable")

    chosen_ids = {p.measure.id for p in chosen}
    rest = [p for p in plans if p.measure.id not in chosen_ids]
    # Nothing left going and no work done: the registration as a whole is withdrawn (one entry
    # in its history); otherwise each measure's withdrawal is an entry of its own.
    whole = not any(p.going or p.step in DONE_STEPS for p in rest)
    changes: list[StatusChange] = []
    ended_lines: list[OrderLine] = []
    for plan in chosen:
        wish = plan.measure
        wish.withdrawn_at = now
        wish.withdrawal_reason = reason or None
        if not whole:
            change = StatusChange(
                from_status=plan.step,
                to_status=S.WITHDRAWN,
                at=now,
                actor_id=actor.id if actor is not None else None,
                note=reason or None,
                registration_measure_id=wish.id,
            )
            registration.history.append(change)
            changes.append(change)
        if plan.line is not None and orders.end_line(plan.line, now=now):
            ended_lines.append(plan.line)
        if plan.deposit is not None:
            payments.measure_withdrawn(
                plan.deposit,
                refund_allowed=plan.deposit_effect is WithdrawalEffect.REFUNDED,
                actor=actor,
                now=now,
            )
    db.session.flush()

    if whole:
        registration.withdrawal_reason = reason or None
        registrations.change_status(registration, S.WITHDRAWN, actor=actor, now=now, note=reason)
    else:
        orders.sync_registration(registration, actor=actor, now=now)
    registration.updated_at = now
    db.session.flush()

    token = uuid.uuid4().hex[:16]  # the keys of this withdrawal's emails never repeat
    if not erasing:
        _tell_resident(registration, changes, sorted(chosen_ids), whole=whole, token=token)
    involved = bool(ended_lines) or any(p.deposit is not None for p in chosen)
    if involved or (erasing and any(p.line is not None for p in plans)):
        _tell_desk(
            registration,
            [p for p in chosen],
            kept=[p for p in plans if p.step in DONE_STEPS] if erasing else [],
            erasing=erasing,
            token=token,
        )
    if actor is not None and actor.role is Role.STAFF:
        audit.record(
            actor,
            registration.action.organisation_id,
            "registration.withdraw_measures",
            registration,
            after={
                "measures": sorted(chosen_ids),
                "registration_withdrawn": whole,
                "reason": reason,
            },
        )
    log.info(
        "measures withdrawn registration=%s measures=%s whole=%s erasing=%s",
        registration.id,
        sorted(chosen_ids),
        whole,
        erasing,
    )
    return Withdrawal(chosen, whole)


def _tell_resident(
    registration: Registration,
    changes: list[StatusChange],
    measure_ids: list[int],
    *,
    whole: bool,
    token: str,
) -> None:
    change_ids = [c.id for c in changes]
    if whole:
        last = registration.history[-1]
        jobs.enqueue(
            "registrations.send_withdrawn",
            f"registration-withdrawn:{last.id}",
            registration_id=registration.id,
            status_change_id=last.id,
            measure_ids=measure_ids,
        )
    else:
        jobs.enqueue(
            "registrations.send_measures_withdrawn",
            f"measures-withdrawn:{change_ids[0]}:{token}",
            registration_id=registration.id,
            change_ids=change_ids,
            token=token,
        )


def _tell_desk(
    registration: Registration,
    chosen: list[MeasurePlan],
    *,
    kept: list[MeasurePlan],
    erasing: bool,
    token: str,
) -> None:
    """Each of the action's staff: which work ended, what became of the deposits, and (on an
    erasure) which installed work stays without the person. Only ids of rows that outlive an
    erasure go into the job."""
    action = registration.action
    staff = db.session.scalars(
        select(User.id).where(
            User.organisation_id == action.organisation_id,
            User.role == Role.STAFF,
            User.is_active_account.is_(True),
        )
    ).all()
    for user_id in staff:
        jobs.enqueue(
            "registrations.send_withdrawal_to_desk",
            f"withdrawal-desk:{token}:{user_id}",
            user_id=user_id,
            action_id=action.id,
            registration_id=None if erasing else registration.id,
            line_ids=[p.line.id for p in chosen if p.line is not None],
            payment_ids=[p.deposit.id for p in chosen if p.deposit is not None],
            kept_line_ids=[p.line.id for p in kept if p.line is not None],
            kept_payment_ids=[p.deposit.id for p in kept if p.deposit is not None],
            token=token,
        )
