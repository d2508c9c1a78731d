"""Every table, imported in one place so that SQLAlchemy and Alembic see the whole schema."""

from coop.accounts.models import LoginToken, Organisation, User
from coop.actions.models import (
    Action,
    ActionFaq,
    ActionMeasure,
    ActionMilestone,
    Measure,
    Neighbourhood,
    PriceTier,
)
from coop.core.models import EmailLog, OutboxJob
from coop.installers.models import Installer, InstallerOffer
from coop.registrations.models import Household, Registration, RegistrationMeasure, StatusChange

__all__ = [
    "Action",
    "ActionFaq",
    "ActionMeasure",
    "ActionMilestone",
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
    "StatusChange",
    "User",
]
