"""The rules' figures shared by the order services (which registrations can be matched, how long
an installer has to answer, the registry's capacity), and the error every rule raises."""

from __future__ import annotations

import logging
from datetime import timedelta

from coop.core.errors import DomainError
from coop.orders.models import (
    OPEN_LINE,
    LineStatus,
)
from coop.registrations.models import (
    RegistrationStatus,
)

log = logging.getLogger(__name__)

# Registrations whose homes are matched: confirmed, and not ended or completed.
MATCHABLE = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.SURVEY_PLANNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
)

# Lines that take up an installer's committed capacity.
USING_CAPACITY = (*OPEN_LINE, LineStatus.COMPLETED)

_LINE_TO_REGISTRATION = {
    LineStatus.ASSIGNED: RegistrationStatus.ASSIGNED,
    LineStatus.SURVEY_PLANNED: RegistrationStatus.SURVEY_PLANNED,
    LineStatus.QUOTED: RegistrationStatus.QUOTED,
    LineStatus.ACCEPTED: RegistrationStatus.ACCEPTED,
    LineStatus.INSTALLED: RegistrationStatus.INSTALLED,
    LineStatus.COMPLETED: RegistrationStatus.COMPLETED,
}

MAX_REGISTRY_WEEKS = 104

# An installer that has not answered hears once when a day is left.
ORDER_REMINDER_BEFORE = timedelta(hours=24)

MAX_DECLINE_REASON = 2000


class OrderError(DomainError):
    """A rule stopped the operation; ``code`` names it, ``params`` fill in its message."""
