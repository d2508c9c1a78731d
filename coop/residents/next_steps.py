"""What happens next for one registration, and when: the resident's own page reads it.

Built from what is known: the action's planning (the day registration closes and the milestones
staff entered, such as matching, quotes or the installation window) and, per measure, the dates
its installer set (the site survey, the day a quote must be decided on, the installation day).
Nothing is guessed: a date that does not exist yet is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from coop.actions.models import ActionMilestone, Measure
from coop.core.time import AMSTERDAM, utcnow
from coop.orders.fieldwork import lines_of_registration
from coop.orders.models import LineStatus, QuoteStatus, SurveyStatus
from coop.registrations.models import ENDED, Registration, RegistrationStatus


@dataclass(frozen=True)
class PlanEntry:
    """One dated step. ``kind`` says which (the page words it): ``registration_closes``,
    ``milestone`` (with its own ``milestone`` label), ``survey``, ``quote_decide`` or
    ``installation``, the last three for one ``measure``."""

    kind: str
    on: date
    at: datetime | None = None
    past: bool = False
    milestone: ActionMilestone | None = None
    measure: Measure | None = None


@dataclass(frozen=True)
class NextSteps:
    status: RegistrationStatus
    entries: list[PlanEntry]

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def _day(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def next_steps(registration: Registration, now: datetime | None = None) -> NextSteps:
    """The action's planning and the dates of each measure's work, in date order."""
    now = now or utcnow()
    today = _day(now)
    action = registration.action
    # Staff may close registration before its planned day: then that moment is the one.
    closes = action.registration_closes_at
    if action.closed_at is not None and action.closed_at < closes:
        closes = action.closed_at
    entries: list[PlanEntry] = [
        PlanEntry("registration_closes", _day(closes), at=closes, past=closes <= now)
    ]
    entries += [
        PlanEntry("milestone", m.on_date, past=m.on_date < today, milestone=m)
        for m in action.milestones
    ]
    for line in lines_of_registration(registration):
        if not line.current:
            continue
        measure = line.measure
        survey = line.survey
        if (
            survey is not None
            and line.status is LineStatus.SURVEY_PLANNED
            and survey.status is SurveyStatus.PLANNED
        ):
            entries.append(
                PlanEntry(
                    "survey",
                    _day(survey.starts_at),
                    at=survey.starts_at,
                    past=survey.starts_at <= now,
                    measure=measure,
                )
            )
        quote = line.quote
        if quote is not None and quote.status is QuoteStatus.SENT:
            entries.append(
                PlanEntry(
                    "quote_decide",
                    quote.valid_until,
                    past=quote.valid_until < today,
                    measure=measure,
                )
            )
        if line.installation_planned_on and line.installed_on is None:
            entries.append(
                PlanEntry(
                    "installation",
                    line.installation_planned_on,
                    past=line.installation_planned_on < today,
                    measure=measure,
                )
            )
    entries.sort(key=lambda e: (e.on, e.kind))
    return NextSteps(registration.status, entries)
