"""The demand a tender round asks installers to bid on: per measure and postcode area, the
homes that have no installer yet.

Orders compute it (from the registrations without a current order line) and orders build on
tenders (matching uses the bids), so the demand's shape is declared here and
``coop.orders.services`` provides it when the application is built (``coop.core.hooks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coop.actions.models import Action, ActionMeasure
from coop.core.hooks import Hook


@dataclass(frozen=True)
class DemandGroup:
    """Homes of one measure in one postcode area that have no installer yet."""

    action_measure: ActionMeasure
    pc4: str
    homes: int
    quantity: int


open_demand: Hook[Callable[[Action], list[DemandGroup]]] = Hook("open_demand", lambda action: [])


def demand(action: Action) -> list[DemandGroup]:
    """The demand without an installer, per measure and postcode area (for bids and pages)."""
    return open_demand.call(action)
