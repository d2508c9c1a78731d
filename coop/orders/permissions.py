"""Who may see and answer orders, their lines (households) and quotes, and who keeps the VAT
rates quotes may use (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import Role, User
from coop.accounts.permissions import desk_admin_of, installer_user_of, staff_of
from coop.core import authz
from coop.orders.models import (
    OPEN_LINE,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Quote,
    VatRate,
)
from coop.orders.vat_rates import VatRateTable

# An installer sees the households of an order it was sent or accepted; once it declined, let
# it expire or the action was cancelled, only that the order existed.
_ORDER_WITH_HOUSEHOLDS = frozenset({OrderStatus.SENT, OrderStatus.ACCEPTED})
# Lines whose household the installer works for: it may see the resident's name, phone and
# email. Not before the order is accepted, and no longer once the household left.
_CONTACT_LINE = frozenset({*OPEN_LINE, LineStatus.COMPLETED})


@authz.policy(Order)
def _order(user: User | None, obj: Order, action: str) -> bool:
    # An installer's users answer their own company's orders; staff of the desk follow them.
    if installer_user_of(user, obj.installer_id):
        if action == "households":
            return obj.status in _ORDER_WITH_HOUSEHOLDS
        return action in {"view", "answer"}
    return action in {"view", "households"} and staff_of(user, obj.action.organisation_id)


@authz.policy(OrderLine)
def _order_line(user: User | None, line: OrderLine, action: str) -> bool:
    order = line.order
    registration = line.registration
    if registration is None:
        # Detached: the resident erased their account. The work stays in the order's figures;
        # there is no household to visit, contact or answer for.
        return action == "view" and staff_of(user, order.action.organisation_id)
    if installer_user_of(user, order.installer_id):
        if order.status not in _ORDER_WITH_HOUSEHOLDS:
            return False
        if action == "contact":
            return order.status is OrderStatus.ACCEPTED and line.status in _CONTACT_LINE
        return action in {"view", "work"}
    if user is not None and user.role is Role.RESIDENT:
        # The household's own work: survey, quote and confirmation.
        return registration.user_id == user.id and action in {"view", "respond"}
    return action == "view" and staff_of(user, order.action.organisation_id)


@authz.policy(Quote)
def _quote(user: User | None, obj: Quote, action: str) -> bool:
    # A quote is read by whoever may read its line; only the household decides on it.
    if action == "view":
        return _order_line(user, obj.line, "view")
    return action == "decide" and _order_line(user, obj.line, "respond")


# A desk's VAT rates, as the rest of a desk: its staff read them, its admins add, end and
# withdraw them (every quote on the desk's actions uses them, so not every colleague does).
@authz.policy(VatRateTable)
def _vat_rate_table(user: User | None, obj: VatRateTable, action: str) -> bool:
    if user is None:
        return False
    if action == "view":
        return staff_of(user, user.organisation_id)
    return action == "add" and desk_admin_of(user, user.organisation_id)


@authz.policy(VatRate)
def _vat_rate(user: User | None, obj: VatRate, action: str) -> bool:
    if action == "view":
        return staff_of(user, obj.organisation_id)
    return action == "end" and desk_admin_of(user, obj.organisation_id)
