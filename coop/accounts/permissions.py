"""Who an actor is, the roles that guard whole pages, and the rules for organisations and
accounts (``coop.core.authz`` asks; every domain's ``permissions`` module builds on these)."""

from __future__ import annotations

from typing import Any

from coop.accounts.models import Organisation, Role, User
from coop.core import authz


@authz.resolve_actor.provide
def user_of(actor: Any) -> User | None:
    return actor if isinstance(actor, User) and actor.is_active else None


def staff_of(user: User | None, organisation_id: int | None) -> bool:
    return (
        user is not None
        and user.role is Role.STAFF
        and organisation_id is not None
        and user.organisation_id == organisation_id
    )


def installer_user_of(user: User | None, installer_id: int) -> bool:
    return user is not None and user.role is Role.INSTALLER and user.installer_id == installer_id


def desk_admin_of(user: User | None, organisation_id: int | None) -> bool:
    return staff_of(user, organisation_id) and bool(user and user.is_desk_admin)


role_required = authz.role_required
staff_required = role_required(Role.STAFF)
installer_required = role_required(Role.INSTALLER)
resident_required = role_required(Role.RESIDENT)


def _may_deactivate(user: User | None, account: User) -> bool:
    """A desk admin switches access off (and on) for the staff of their own desk and the users
    of the installers in its registry; never for their own account (nobody locks themselves out)."""
    if user is None or not user.is_desk_admin or user.id == account.id:
        return False
    if account.role is Role.STAFF:
        return staff_of(user, account.organisation_id)
    if account.role is Role.INSTALLER and account.installer is not None:
        return staff_of(user, account.installer.organisation_id)
    return False


@authz.policy(Organisation)
def _organisation(user: User | None, obj: Organisation, action: str) -> bool:
    if action == "view":
        return staff_of(user, obj.id)
    # Inviting staff, reading the audit log and the desk's settings are for its admins.
    return action in {"invite", "audit", "configure"} and desk_admin_of(user, obj.id)


@authz.policy(User)
def _account(user: User | None, obj: User, action: str) -> bool:
    if action == "deactivate":
        return _may_deactivate(user, obj)
    # A person's own account: export or erase their data, set up two-factor login.
    return (
        user is not None and user.id == obj.id and action in {"view", "export", "erase", "security"}
    )
