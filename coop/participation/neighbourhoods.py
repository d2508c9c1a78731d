"""The neighbourhood page: where the approach stands in the six Wijkkompas phases, the state of
each of the six perspectives, what residents can join now, and the progress so far with the
estimated gas and CO2 saving (the assumptions per measure are on the page).

Staff also keep here the neighbourhood's households per PC4 and per ownership type: the
denominators that show a survey's reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select

from coop.accounts.models import User
from coop.actions.models import Action, ActionMeasure, Measure, Neighbourhood
from coop.actions.services import public_actions
from coop.core import audit
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders.models import LineStatus, OrderLine
from coop.participation import interest, meetings, surveys
from coop.participation.models import (
    CountDimension,
    HouseholdCount,
    InterestCampaign,
    Meeting,
    NeighbourhoodProfile,
    Perspective,
    PerspectiveState,
    PerspectiveStatus,
    Survey,
    WijkPhase,
)
from coop.registrations.models import (
    Household,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
)

# Natural gas burnt in a Dutch home: 1.78 kg CO2 per m³ (the Dutch emission factor for
# natural gas, rounded).
CO2_KG_PER_M3_GAS = 1.78


@dataclass(frozen=True)
class SavingAssumption:
    """An average home's saving of one measure, per year. Rough national averages for a
    home built before 1975; a real home differs, which the page says."""

    measure_code: str
    gas_m3_per_year: int
    extra_kwh_per_year: int = 0  # a heat pump uses electricity instead


SAVINGS = {
    a.measure_code: a
    for a in (
        SavingAssumption("cavity_wall", 350),
        SavingAssumption("roof", 300),
        SavingAssumption("floor", 150),
        SavingAssumption("glazing", 200),
        SavingAssumption("hybrid_heat_pump", 700, 1800),
        SavingAssumption("full_heat_pump", 1200, 3500),
    )
}


def profile_of(neighbourhood: Neighbourhood) -> NeighbourhoodProfile | None:
    return db.session.get(NeighbourhoodProfile, neighbourhood.id)


def profile_for_page(neighbourhood_id: int) -> NeighbourhoodProfile | None:
    """The profile behind the public page; None when staff have not set one up."""
    return db.session.get(NeighbourhoodProfile, neighbourhood_id)


def perspective_states(profile: NeighbourhoodProfile | None) -> list[PerspectiveStatus]:
    """All six, in the Wijkkompas order; those never set are "not started"."""
    known = {p.perspective: p for p in (profile.perspectives if profile else [])}
    return [
        known.get(p)
        or PerspectiveStatus(
            perspective=p, state=PerspectiveState.NOT_STARTED, explanation_nl="", explanation_en=""
        )
        for p in Perspective
    ]


@dataclass
class CompassInput:
    phase: WijkPhase
    is_public: bool
    intro_nl: str
    intro_en: str
    # perspective -> (state, explanation NL, explanation EN)
    perspectives: dict[Perspective, tuple[PerspectiveState, str, str]] = field(default_factory=dict)


def save_compass(
    actor: User, neighbourhood: Neighbourhood, data: CompassInput, now: datetime | None = None
) -> NeighbourhoodProfile:
    profile = profile_of(neighbourhood)
    if profile is None:
        profile = NeighbourhoodProfile(neighbourhood_id=neighbourhood.id)
        db.session.add(profile)
    before = {"phase": profile.phase.value if profile.phase else None, "public": profile.is_public}
    profile.phase = data.phase
    profile.is_public = data.is_public
    profile.intro_nl = data.intro_nl
    profile.intro_en = data.intro_en
    profile.updated_at = now or utcnow()
    known = {p.perspective: p for p in profile.perspectives}
    for perspective, (state, explanation_nl, explanation_en) in data.perspectives.items():
        row = known.get(perspective)
        if row is None:
            row = PerspectiveStatus(perspective=perspective)
            profile.perspectives.append(row)
        row.state = state
        row.explanation_nl = explanation_nl
        row.explanation_en = explanation_en
    audit.record(
        actor,
        neighbourhood.organisation_id,
        "neighbourhood.compass",
        neighbourhood,
        before=before,
        after={"phase": data.phase.value, "public": data.is_public},
    )
    db.session.commit()
    return profile


def save_household_counts(
    actor: User,
    neighbourhood: Neighbourhood,
    counts: dict[CountDimension, dict[str, int | None]],
) -> None:
    """Replace the counts per PC4 and per ownership type; an empty value means unknown."""
    db.session.execute(
        delete(HouseholdCount).where(HouseholdCount.neighbourhood_id == neighbourhood.id)
    )
    for dimension, values in counts.items():
        for value, households in values.items():
            if households is not None:
                db.session.add(
                    HouseholdCount(
                        neighbourhood_id=neighbourhood.id,
                        dimension=dimension,
                        value=value,
                        households=households,
                    )
                )
    audit.record(
        actor,
        neighbourhood.organisation_id,
        "neighbourhood.household_counts",
        neighbourhood,
        after={
            d.value: {k: v for k, v in vals.items() if v is not None} for d, vals in counts.items()
        },
    )
    db.session.commit()


@dataclass(frozen=True)
class MeasureProgress:
    measure_code: str
    homes: int
    assumption: SavingAssumption | None

    @property
    def gas_m3(self) -> int:
        return self.homes * (self.assumption.gas_m3_per_year if self.assumption else 0)


@dataclass
class NeighbourhoodPage:
    neighbourhood: Neighbourhood
    profile: NeighbourhoodProfile
    perspectives: list[PerspectiveStatus]
    meetings: list[Meeting]
    actions: list[Action]
    surveys: list[Survey]
    campaigns: list[tuple[InterestCampaign, interest.Progress]]
    taking_part: int
    installed: list[MeasureProgress]

    @property
    def gas_m3_per_year(self) -> int:
        return sum(m.gas_m3 for m in self.installed)

    @property
    def co2_tonnes_per_year(self) -> float:
        return self.gas_m3_per_year * CO2_KG_PER_M3_GAS / 1000


# Registrations whose measures are all in place.
INSTALLED = (RegistrationStatus.INSTALLED, RegistrationStatus.COMPLETED)


@dataclass(frozen=True)
class AreaFigures:
    """Registrations of an organisation's actions in some postcode areas, for public pages."""

    taking_part: int  # registrations that have not stepped out (withdrawn, declined, expired)
    installed_by_measure: dict[str, int]  # measure code -> homes where it is installed


def area_figures(organisation_id: int, pc4s: list[str]) -> AreaFigures:
    in_area = (
        select(Registration.id)
        .join(Household, Household.id == Registration.household_id)
        .join(Action, Action.id == Registration.action_id)
        .where(Action.organisation_id == organisation_id, Household.pc4.in_(pc4s))
    )
    stepped_out = (
        RegistrationStatus.WITHDRAWN,
        RegistrationStatus.DECLINED,
        RegistrationStatus.EXPIRED,
    )
    taking_part = db.session.scalar(
        select(func.count()).select_from(
            in_area.where(Registration.status.not_in(stepped_out)).subquery()
        )
    )

    # Per measure: a roof installed counts while the same household's heat pump is still
    # quoted. A measure without an order line (imported data) follows its registration.
    def line_where(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return (
            select(OrderLine.id)
            .where(
                OrderLine.registration_measure_id == RegistrationMeasure.id,
                OrderLine.current.is_(True),
                *conditions,
            )
            .exists()
        )

    installed = or_(
        line_where(OrderLine.status.in_((LineStatus.INSTALLED, LineStatus.COMPLETED))),
        and_(
            Registration.status.in_(INSTALLED),
            RegistrationMeasure.withdrawn_at.is_(None),
            ~line_where(),
        ),
    )
    rows = db.session.execute(
        select(Measure.code, func.count())
        .select_from(RegistrationMeasure)
        .join(ActionMeasure, ActionMeasure.id == RegistrationMeasure.action_measure_id)
        .join(Measure, Measure.id == ActionMeasure.measure_id)
        .join(Registration, Registration.id == RegistrationMeasure.registration_id)
        .where(Registration.id.in_(in_area), installed)
        .group_by(Measure.code)
    ).all()
    return AreaFigures(int(taking_part or 0), {code: int(n) for code, n in rows})


def page(profile: NeighbourhoodProfile, now: datetime | None = None) -> NeighbourhoodPage:
    now = now or utcnow()
    neighbourhood = profile.neighbourhood
    areas = set(neighbourhood.pc4_list)
    actions = [
        a
        for a in public_actions(now=now)
        if a.organisation_id == neighbourhood.organisation_id and areas & set(a.pc4_list)
    ]
    figures = area_figures(neighbourhood.organisation_id, neighbourhood.pc4_list)
    installed = [
        MeasureProgress(code, figures.installed_by_measure.get(code, 0), SAVINGS.get(code))
        for code in SAVINGS
    ]
    return NeighbourhoodPage(
        neighbourhood=neighbourhood,
        profile=profile,
        perspectives=perspective_states(profile),
        meetings=meetings.upcoming_meetings(neighbourhood.id, now),
        actions=actions,
        surveys=surveys.open_surveys(neighbourhood.id),
        campaigns=[
            (c, interest.progress(c)) for c in interest.open_campaigns(neighbourhood.id, now)
        ],
        taking_part=figures.taking_part,
        installed=installed,
    )


def public_profiles() -> list[NeighbourhoodProfile]:
    return list(
        db.session.scalars(
            select(NeighbourhoodProfile).where(NeighbourhoodProfile.is_public.is_(True))
        )
    )
