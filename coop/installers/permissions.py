"""Who may see and manage an installer of the registry (``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import Role, User
from coop.accounts.permissions import staff_of
from coop.core import authz
from coop.installers.models import Installer


@authz.policy(Installer)
def _installer(user: User | None, obj: Installer, action: str) -> bool:
    if action in {"view", "manage"} and staff_of(user, obj.organisation_id):
        return True
    # An installer's own users see their company (the portal), never another's.
    return (
        action == "view"
        and user is not None
        and user.role is Role.INSTALLER
        and user.installer_id == obj.id
    )
