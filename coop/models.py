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
from coop.orders.models import (
    Batch,
    MatchingRun,
    Order,
    OrderLine,
    ProposedAssignment,
    Quote,
    QuoteItem,
    Review,
    SiteSurvey,
)
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationNote,
    StatusChange,
)
from coop.tenders.models import BidLine, TenderInvitation, TenderRound

__all__ = [
    "Action",
    "ActionEmailTemplate",
    "ActionFaq",
    "ActionMeasure",
    "ActionMilestone",
    "AuditEntry",
    "Batch",
    "BidLine",
    "EmailLog",
    "Household",
    "Installer",
    "InstallerOffer",
    "LoginToken",
    "MatchingRun",
    "Measure",
    "Neighbourhood",
    "Order",
    "OrderLine",
    "Organisation",
    "OutboxJob",
    "PriceTier",
    "ProposedAssignment",
    "Quote",
    "QuoteItem",
    "Registration",
    "RegistrationMeasure",
    "RegistrationNote",
    "Review",
    "SegmentUpdate",
    "SiteSurvey",
    "StatusChange",
    "TenderInvitation",
    "TenderRound",
    "UpdateDelivery",
    "User",
]
