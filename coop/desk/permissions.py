"""Who may see and manage the desk's updates to residents and read its audit log
(``coop.core.authz``)."""

from __future__ import annotations

from coop.accounts.models import User
from coop.accounts.permissions import desk_admin_of, staff_of
from coop.core import authz
from coop.core.audit import AuditEntry
from coop.desk.models import SegmentUpdate


@authz.policy(SegmentUpdate)
def _update(user: User | None, obj: SegmentUpdate, action: str) -> bool:
    return action in {"view", "manage"} and staff_of(user, obj.organisation_id)


@authz.policy(AuditEntry)
def _audit_entry(user: User | None, obj: AuditEntry, action: str) -> bool:
    return action == "view" and desk_admin_of(user, obj.organisation_id)
