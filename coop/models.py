"""Every table, imported in one place so that SQLAlchemy and Alembic see the whole schema."""

from coop.accounts.models import LoginToken, Organisation, User
from coop.actions.models import (
    Action,
    ActionEmailTemplate,
    ActionFaq,
    ActionMeasure,
    ActionMilestone,
    Measure,
    Neighbourhood,
    PriceTier,
)
from coop.core.models import EmailLog, OutboxJob
from coop.desk.models import AuditEntry, SegmentUpdate, UpdateDelivery
from coop.installers.models import Installer, InstallerOffer
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationNote,
    StatusChange,
)

__all__ = [
    "Action",
    "ActionEmailTemplate",
    "ActionFaq",
    "ActionMeasure",
    "ActionMilestone",
    "AuditEntry",
    "EmailLog",
    "Household",
    "Installer",
    "InstallerOffer",
    "LoginToken",
    "Measure",
    "Neighbourhood",
    "Organisation",
    "OutboxJob",
    "PriceTier",
    "Registration",
    "RegistrationMeasure",
    "RegistrationNote",
    "SegmentUpdate",
    "StatusChange",
    "UpdateDelivery",
    "User",
]
