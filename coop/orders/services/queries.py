"""Reading orders for the pages: an action's and an installer's orders, the demand's figures,
a measure's name."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from coop.actions.models import Action, ActionMeasure
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import (
    Batch,
    LineStatus,
    Order,
    OrderStatus,
)
from coop.orders.services.batches import unassigned_homes

# --- reading for the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSummary:
    order: Order
    homes: int
    by_status: dict[LineStatus, int]


def orders_of_action(action: Action) -> list[OrderSummary]:
    orders = db.session.scalars(
        select(Order)
        .where(Order.action_id == action.id)
        .options(selectinload(Order.lines))
        .order_by(Order.id.desc())
    )
    return [_summary(order) for order in orders]


def orders_of_installer(installer: Installer) -> list[OrderSummary]:
    orders = db.session.scalars(
        select(Order)
        .where(Order.installer_id == installer.id)
        .options(selectinload(Order.lines), selectinload(Order.action))
        .order_by(Order.sent_at.desc(), Order.id.desc())
    )
    return [_summary(order) for order in orders]


def _summary(order: Order) -> OrderSummary:
    counts: dict[LineStatus, int] = defaultdict(int)
    for line in order.lines:
        counts[line.status] += 1
    return OrderSummary(order, len(order.lines), dict(counts))


@dataclass(frozen=True)
class DemandFigures:
    homes_waiting: int  # matchable household measures without an installer
    batches: int
    orders_open: int  # sent, no answer yet
    households_waiting: int = 0  # households with at least one of those measures


def demand_figures(action: Action) -> DemandFigures:
    homes = unassigned_homes(action.id)
    waiting = len(homes)
    batches = db.session.scalar(
        select(func.count()).select_from(Batch).where(Batch.action_id == action.id)
    )
    orders_open = db.session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.action_id == action.id, Order.status == OrderStatus.SENT)
    )
    return DemandFigures(
        waiting,
        int(batches or 0),
        int(orders_open or 0),
        len({h.registration_id for h in homes}),
    )


def measure_name(action_measure: ActionMeasure, language: str) -> str:
    measure = action_measure.measure
    return measure.name_en if language == "en" else measure.name_nl
