"""One place that says who may do what with which object.

Views call ``require(user, obj, action)``; it aborts with 404 rather than 403 for someone else's
object, so guessing ids tells nothing about what exists. ``role_required`` guards whole pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeAlias, TypeVar

from flask import abort
from flask_login import AnonymousUserMixin, current_user, login_required

from coop.accounts.models import Organisation, Role, User
from coop.actions.models import Action, ActionStatus, Neighbourhood
from coop.core.time import utcnow
from coop.desk.models import AuditEntry, SegmentUpdate
from coop.installers.models import Installer
from coop.orders.models import OPEN_LINE, LineStatus, Order, OrderLine, OrderStatus, Quote
from coop.participation.ambassadors import Neighbour, ambassadorships_of, covers
from coop.participation.models import (
    Ambassador,
    InterestCampaign,
    Meeting,
    NeighbourhoodProfile,
    Survey,
    SurveyStatus,
)
from coop.payments.models import Payment
from coop.registrations.models import Registration
from coop.tenders.models import TenderInvitation

Actor: TypeAlias = User | AnonymousUserMixin | None
F = TypeVar("F", bound=Callable[..., Any])


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.is_active else None


def _staff_of(user: User | None, organisation_id: int | None) -> bool:
    return (
        user is not None
        and user.role is Role.STAFF
        and organisation_id is not None
        and user.organisation_id == organisation_id
    )


def _installer_user_of(user: User | None, installer_id: int) -> bool:
    return user is not None and user.role is Role.INSTALLER and user.installer_id == installer_id


# An installer sees the households of an order it was sent or accepted; once it declined, let
# it expire or the action was cancelled, only that the order existed.
_ORDER_WITH_HOUSEHOLDS = frozenset({OrderStatus.SENT, OrderStatus.ACCEPTED})
# Lines whose household the installer works for: it may see the resident's name, phone and
# email. Not before the order is accepted, and no longer once the household left.
_CONTACT_LINE = frozenset({*OPEN_LINE, LineStatus.COMPLETED})


def _authorize_order_line(user: User | None, line: OrderLine, action: str) -> bool:
    order = line.order
    registration = line.registration
    if registration is None:
        # Detached: the resident erased their account. The work stays in the order's figures;
        # there is no household to visit, contact or answer for.
        return action == "view" and _staff_of(user, order.action.organisation_id)
    if _installer_user_of(user, order.installer_id):
        if order.status not in _ORDER_WITH_HOUSEHOLDS:
            return False
        if action == "contact":
            return order.status is OrderStatus.ACCEPTED and line.status in _CONTACT_LINE
        return action in {"view", "work"}
    if user is not None and user.role is Role.RESIDENT:
        # The household's own work: survey, quote and confirmation.
        return registration.user_id == user.id and action in {"view", "respond"}
    return action == "view" and _staff_of(user, order.action.organisation_id)


def _may_deactivate(user: User | None, account: User) -> bool:
    """A desk admin switches access off (and on) for the staff of their own desk and the users
    of the installers in its registry; never for their own account (nobody locks themselves out)."""
    if user is None or not user.is_desk_admin or user.id == account.id:
        return False
    if account.role is Role.STAFF:
        return _staff_of(user, account.organisation_id)
    if account.role is Role.INSTALLER and account.installer is not None:
        return _staff_of(user, account.installer.organisation_id)
    return False


def authorize(actor: Actor, obj: Any, action: str) -> bool:
    user = _user(actor)
    if isinstance(obj, Order):
        # An installer's users answer their own company's orders; staff of the desk follow them.
        if _installer_user_of(user, obj.installer_id):
            if action == "households":
                return obj.status in _ORDER_WITH_HOUSEHOLDS
            return action in {"view", "answer"}
        return action in {"view", "households"} and _staff_of(user, obj.action.organisation_id)
    if isinstance(obj, OrderLine):
        return _authorize_order_line(user, obj, action)
    if isinstance(obj, Quote):
        # A quote is read by whoever may read its line; only the household decides on it.
        if action == "view":
            return _authorize_order_line(user, obj.line, "view")
        return action == "decide" and _authorize_order_line(user, obj.line, "respond")
    if isinstance(obj, TenderInvitation):
        if _installer_user_of(user, obj.installer_id):
            return action in {"view", "bid"}
        # Staff compare the bids on their own page, and only once the round is no longer
        # sealed; an invitation itself shows a bid, so before the deadline it is the bidder's.
        return (
            action == "view"
            and _staff_of(user, obj.round.action.organisation_id)
            and not obj.round.sealed(utcnow())
        )
    if isinstance(obj, Action):
        if action == "view" and obj.status in (ActionStatus.OPEN, ActionStatus.CLOSED):
            return True
        return action in {"view", "manage"} and _staff_of(user, obj.organisation_id)
    if isinstance(obj, Registration):
        if user is None:
            return False
        if user.role is Role.RESIDENT:
            return obj.user_id == user.id and action in {"view", "edit", "withdraw", "export"}
        return action in {"view", "manage"} and _staff_of(user, obj.action.organisation_id)
    if isinstance(obj, Payment):
        if user is None:
            return False
        if user.role is Role.RESIDENT:
            # A resident's own deposit: see it and pay it (never someone else's).
            registration = obj.registration
            return (
                action in {"view", "pay"}
                and registration is not None
                and registration.user_id == user.id
            )
        return action in {"view", "manage"} and _staff_of(user, obj.action.organisation_id)
    if isinstance(obj, Installer):
        if action in {"view", "manage"} and _staff_of(user, obj.organisation_id):
            return True
        # An installer's own users see their company (the portal), never another's.
        return (
            action == "view"
            and user is not None
            and user.role is Role.INSTALLER
            and user.installer_id == obj.id
        )
    if isinstance(obj, Neighbourhood | SegmentUpdate):
        return action in {"view", "manage"} and _staff_of(user, obj.organisation_id)
    if isinstance(obj, Organisation):
        if action == "view":
            return _staff_of(user, obj.id)
        # Inviting staff, reading the audit log and the desk's settings are for its admins.
        return (
            action in {"invite", "audit", "configure"}
            and _staff_of(user, obj.id)
            and bool(user and user.is_desk_admin)
        )
    if isinstance(obj, AuditEntry):
        return (
            action == "view"
            and _staff_of(user, obj.organisation_id)
            and bool(user and user.is_desk_admin)
        )
    if isinstance(obj, Meeting | InterestCampaign):
        # Meetings and interest campaigns are public; their lists and figures are the desk's.
        return action == "view" or (action == "manage" and _staff_of(user, obj.organisation_id))
    if isinstance(obj, Survey):
        if action == "view" and obj.status is not SurveyStatus.DRAFT:
            return True
        return action in {"view", "manage"} and _staff_of(user, obj.organisation_id)
    if isinstance(obj, NeighbourhoodProfile):
        organisation_id = obj.neighbourhood.organisation_id
        return action == "view" and (obj.is_public or _staff_of(user, organisation_id))
    if isinstance(obj, Ambassador):
        if action == "manage":
            return _staff_of(user, obj.neighbourhood.organisation_id)
        return action == "view" and user is not None and user.id == obj.user_id
    if isinstance(obj, Neighbour):
        # An ambassador: only the neighbours of their own street who opted in to contact.
        return (
            action in {"view", "contact"}
            and obj.opted_in
            and user is not None
            and user.role is Role.RESIDENT
            and any(covers(a, obj) for a in ambassadorships_of(user))
        )
    if isinstance(obj, User):
        if action == "deactivate":
            return _may_deactivate(user, obj)
        # A person's own account: export or erase their data, set up two-factor login.
        return (
            user is not None
            and user.id == obj.id
            and action in {"view", "export", "erase", "security"}
        )
    return False


def require(actor: Actor, obj: Any, action: str) -> None:
    if obj is None or not authorize(actor, obj, action):
        abort(404)


def role_required(*roles: Role) -> Callable[[F], F]:
    """Only logged-in users with one of ``roles``; others get 404 (or the login page)."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles or not current_user.is_active:
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


staff_required = role_required(Role.STAFF)
installer_required = role_required(Role.INSTALLER)
resident_required = role_required(Role.RESIDENT)
