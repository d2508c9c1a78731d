"""Every table, imported in one place so that SQLAlchemy and Alembic see the whole schema."""

from coop.accounts.models import LoginLinkRequest, LoginToken, Organisation, User
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
from coop.core.audit import AuditEntry
from coop.core.models import EmailLog, OutboxJob, PeriodicTaskState
from coop.desk.models import SegmentUpdate, UpdateDelivery
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
from coop.participation.models import (
    Ambassador,
    AmbassadorContact,
    HouseholdCount,
    InterestCampaign,
    InterestPledge,
    Meeting,
    NeighbourhoodProfile,
    PerspectiveStatus,
    Rsvp,
    Survey,
    SurveyAnswer,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
)
from coop.payments.models import Payment, PaymentChange, RefundRun, StripeEvent

# Keeps registrations.search_text up to date on every flush (a listener, registered on import).
from coop.registrations import search as _search  # noqa: F401
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
    "Ambassador",
    "AmbassadorContact",
    "AuditEntry",
    "Batch",
    "BidLine",
    "EmailLog",
    "Household",
    "HouseholdCount",
    "Installer",
    "InstallerOffer",
    "InterestCampaign",
    "InterestPledge",
    "LoginLinkRequest",
    "LoginToken",
    "MatchingRun",
    "Measure",
    "Meeting",
    "Neighbourhood",
    "NeighbourhoodProfile",
    "Order",
    "OrderLine",
    "Organisation",
    "OutboxJob",
    "Payment",
    "PaymentChange",
    "PeriodicTaskState",
    "PerspectiveStatus",
    "PriceTier",
    "ProposedAssignment",
    "Quote",
    "QuoteItem",
    "RefundRun",
    "Registration",
    "RegistrationMeasure",
    "RegistrationNote",
    "Review",
    "Rsvp",
    "SegmentUpdate",
    "SiteSurvey",
    "StatusChange",
    "StripeEvent",
    "Survey",
    "SurveyAnswer",
    "SurveyOption",
    "SurveyQuestion",
    "SurveyResponse",
    "TenderInvitation",
    "TenderRound",
    "UpdateDelivery",
    "User",
]
