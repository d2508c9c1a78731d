"""Figures for the staff: the start page, the dashboards per action and per neighbourhood, and
the audit log.

Every figure is counted by the database (GROUP BY), with a fixed, small number of queries per
page whatever the number of registrations: nothing here loads registrations into Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import selectinload

from coop.accounts.models import Organisation
from coop.actions.models import Action, ActionMeasure, Measure, Neighbourhood
from coop.actions.neighbourhoods import (
    get_neighbourhood as get_neighbourhood,  # the desk's pages ask it here
)
from coop.actions.services import MeasureOffer, measure_offers
from coop.core import address_lookup, audit
from coop.core.audit import AuditEntry
from coop.core.time import AMSTERDAM
from coop.extensions import db
from coop.orders.models import LineStatus, OrderLine, Quote, QuoteStatus, SiteSurvey
from coop.registrations.models import (
    JOURNEY,
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)


@dataclass(frozen=True)
class ActionFigures:
    action: Action
    by_status: dict[RegistrationStatus, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def organisation_overview(organisation_id: int) -> list[ActionFigures]:
    actions = db.session.scalars(
        select(Action)
        .where(Action.organisation_id == organisation_id)
        .order_by(Action.registration_closes_at)
    ).all()
    counts: dict[int, dict[RegistrationStatus, int]] = {a.id: {} for a in actions}
    rows = db.session.execute(
        select(Registration.action_id, Registration.status, func.count())
        .join(Action, Action.id == Registration.action_id)
        .where(Action.organisation_id == organisation_id)
        .group_by(Registration.action_id, Registration.status)
    ).all()
    for action_id, status, count in rows:
        counts[action_id][status] = count
    return [ActionFigures(action, counts[action.id]) for action in actions]


def organisation_neighbourhoods(organisation_id: int) -> list[Neighbourhood]:
    return list(
        db.session.scalars(
            select(Neighbourhood)
            .where(Neighbourhood.organisation_id == organisation_id)
            .order_by(Neighbourhood.name)
        )
    )


def organisation_actions(organisation_id: int) -> list[Action]:
    return list(
        db.session.scalars(
            select(Action)
            .where(Action.organisation_id == organisation_id)
            .order_by(Action.registration_closes_at.desc(), Action.id)
        )
    )


def catalogue_measures() -> list[Measure]:
    return list(db.session.scalars(select(Measure).order_by(Measure.id)))


def action_for_dashboard(action_id: int) -> Action | None:
    """The action with its measures and tiers in two queries (``measure_offers`` reads them)."""
    return db.session.scalar(
        select(Action)
        .where(Action.id == action_id)
        .options(
            selectinload(Action.measures).selectinload(ActionMeasure.tiers),
            selectinload(Action.neighbourhoods),
        )
    )


# --- dashboards ------------------------------------------------------------------------------

# Those who stepped out: not counted as demand in the breakdowns (their history still counts
# in the funnel, up to where they got).
LEFT = frozenset(
    {RegistrationStatus.DECLINED, RegistrationStatus.WITHDRAWN, RegistrationStatus.EXPIRED}
)
# The funnel as the desk explains it; survey_planned and completed fold into their neighbours.
FUNNEL = (
    RegistrationStatus.PENDING_CONFIRMATION,  # "registered": everyone who signed up
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
)
_RANK = {status: index for index, status in enumerate(JOURNEY)}
# Someone who declined a quote got one, even when the history does not show it.
_LEFT_AT_LEAST = {RegistrationStatus.DECLINED: _RANK[RegistrationStatus.QUOTED]}
# A longer span than this is shown per week instead of per day.
DAYS_PER_DAY_CHART = 62


_Columns = TypeVarTuple("_Columns")
FunnelStep = tuple[RegistrationStatus, int]


@dataclass(frozen=True)
class Scope:
    """Which registrations a dashboard counts: one action's, or an organisation's in some PC4s."""

    action_id: int | None = None
    organisation_id: int | None = None
    pc4s: tuple[str, ...] | None = None

    def apply(
        self, query: Select[*_Columns], *, households_joined: bool = False
    ) -> Select[*_Columns]:
        conditions: list[ColumnElement[bool]] = []
        if self.action_id is not None:
            conditions.append(Registration.action_id == self.action_id)
        if self.organisation_id is not None:
            conditions.append(
                Registration.action_id.in_(
                    select(Action.id).where(Action.organisation_id == self.organisation_id)
                )
            )
        if self.pc4s is not None:
            if not households_joined:
                query = query.join(Household, Household.id == Registration.household_id)
            conditions.append(Household.pc4.in_(self.pc4s))
        return query.where(*conditions)


@dataclass(frozen=True)
class Participation:
    neighbourhood: Neighbourhood
    registrations: int

    @property
    def households(self) -> int | None:
        count = self.neighbourhood.household_count
        return count if count and count > 0 else None

    @property
    def rate(self) -> float | None:
        """Share of the neighbourhood's households taking part; None when not known."""
        return None if self.households is None else self.registrations / self.households


@dataclass
class Dashboard:
    scope: Scope
    by_status: dict[RegistrationStatus, int] = field(default_factory=dict)
    period: Literal["day", "week"] = "day"
    over_time: list[tuple[date, int]] = field(default_factory=list)
    by_measure: list[tuple[Measure, int]] = field(default_factory=list)
    by_pc4: list[tuple[str, int]] = field(default_factory=list)
    by_ownership: list[tuple[Ownership, int]] = field(default_factory=list)
    by_dwelling_type: list[tuple[DwellingType, int]] = field(default_factory=list)
    # How many households, and how many of their measures, got at least as far as each step.
    funnel: list[FunnelStep] = field(default_factory=list)
    measure_funnel: list[FunnelStep] = field(default_factory=list)
    participation: list[Participation] = field(default_factory=list)
    offers: list[MeasureOffer] = field(default_factory=list)  # action dashboards only
    by_action: list[tuple[Action, int]] = field(default_factory=list)  # neighbourhood only
    households: int | None = None  # distinct households taking part (neighbourhood only)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def active(self) -> int:
        return sum(n for status, n in self.by_status.items() if status not in LEFT)


def action_dashboard(action: Action, today: date | None = None) -> Dashboard:
    scope = Scope(action_id=action.id)
    dashboard = _common(scope, today)
    by_pc4 = dict(dashboard.by_pc4)
    dashboard.participation = [
        Participation(n, sum(by_pc4.get(pc4, 0) for pc4 in n.pc4_list))
        for n in _neighbourhoods_of(action)
    ]
    dashboard.offers = measure_offers(action)
    return dashboard


def neighbourhood_dashboard(neighbourhood: Neighbourhood, today: date | None = None) -> Dashboard:
    scope = Scope(organisation_id=neighbourhood.organisation_id, pc4s=tuple(neighbourhood.pc4_list))
    dashboard = _common(scope, today)
    # A household taking part in two actions is one household of the neighbourhood.
    dashboard.households = int(
        db.session.scalar(
            scope.apply(
                select(func.count(func.distinct(Registration.household_id))).where(
                    Registration.status.not_in(LEFT)
                )
            )
        )
        or 0
    )
    dashboard.participation = [Participation(neighbourhood, dashboard.households)]
    rows = db.session.execute(
        scope.apply(
            select(Registration.action_id, func.count())
            .where(Registration.status.not_in(LEFT))
            .group_by(Registration.action_id)
        )
    ).all()
    actions = {
        a.id: a
        for a in db.session.scalars(
            select(Action).where(Action.id.in_([action_id for action_id, _ in rows]))
        )
    }
    dashboard.by_action = sorted(
        ((actions[action_id], count) for action_id, count in rows),
        key=lambda item: (-item[1], item[0].id),
    )
    return dashboard


def _common(scope: Scope, today: date | None) -> Dashboard:
    dashboard = Dashboard(scope)
    _household_breakdowns(dashboard)
    _over_time(dashboard, today)
    _by_measure(dashboard)
    dashboard.funnel, dashboard.measure_funnel = _funnel(scope)
    return dashboard


def _household_breakdowns(dashboard: Dashboard) -> None:
    """Status, PC4, ownership and dwelling type in one GROUP BY over the scope."""
    rows = db.session.execute(
        dashboard.scope.apply(
            select(
                Registration.status,
                Household.pc4,
                Household.ownership,
                Household.dwelling_type,
                func.count(),
            )
            .join(Household, Household.id == Registration.household_id)
            .group_by(
                Registration.status, Household.pc4, Household.ownership, Household.dwelling_type
            ),
            households_joined=True,
        )
    ).all()
    by_status: dict[RegistrationStatus, int] = defaultdict(int)
    by_pc4: dict[str, int] = defaultdict(int)
    by_ownership: dict[Ownership, int] = defaultdict(int)
    by_dwelling: dict[DwellingType, int] = defaultdict(int)
    for status, pc4, ownership, dwelling_type, count in rows:
        by_status[status] += count
        if status in LEFT:
            continue
        by_pc4[pc4] += count
        by_ownership[ownership] += count
        by_dwelling[dwelling_type] += count
    dashboard.by_status = dict(by_status)
    dashboard.by_pc4 = sorted(by_pc4.items())
    dashboard.by_ownership = [(o, by_ownership[o]) for o in Ownership]
    dashboard.by_dwelling_type = [(d, by_dwelling[d]) for d in DwellingType]


def _hour_bucket() -> ColumnElement[Any]:
    # Amsterdam is a whole number of hours from UTC, so UTC hours fold exactly into local days.
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", Registration.created_at)
    return func.strftime("%Y-%m-%d %H:00:00", Registration.created_at)


def _as_utc_hour(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _over_time(dashboard: Dashboard, today: date | None) -> None:
    """Sign-ups per Amsterdam day (per ISO week over a long span), days without any included."""
    bucket = _hour_bucket().label("hour")
    rows = db.session.execute(
        dashboard.scope.apply(select(bucket, func.count()).group_by(bucket))
    ).all()
    per_day: dict[date, int] = defaultdict(int)
    for hour, count in rows:
        per_day[_as_utc_hour(hour).astimezone(AMSTERDAM).date()] += count
    if not per_day:
        return
    first = min(per_day)
    last = max(per_day)
    if today is not None and first <= today:
        last = max(last, today)
    if (last - first).days + 1 > DAYS_PER_DAY_CHART:
        dashboard.period = "week"
        per_week: dict[date, int] = defaultdict(int)
        for day, count in per_day.items():
            per_week[day - timedelta(days=day.weekday())] += count
        start = first - timedelta(days=first.weekday())
        weeks = (last - start).days // 7 + 1
        dashboard.over_time = [
            (start + timedelta(weeks=i), per_week.get(start + timedelta(weeks=i), 0))
            for i in range(weeks)
        ]
    else:
        dashboard.over_time = [
            (first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0))
            for i in range((last - first).days + 1)
        ]


def _by_measure(dashboard: Dashboard) -> None:
    """Registrations that want each measure (from the catalogue, so actions add up)."""
    rows = db.session.execute(
        dashboard.scope.apply(
            select(ActionMeasure.measure_id, func.count())
            .select_from(RegistrationMeasure)
            .join(Registration, Registration.id == RegistrationMeasure.registration_id)
            .join(ActionMeasure, ActionMeasure.id == RegistrationMeasure.action_measure_id)
            .where(Registration.status.not_in(LEFT), RegistrationMeasure.withdrawn_at.is_(None))
            .group_by(ActionMeasure.measure_id)
        )
    ).all()
    measures = {m.id: m for m in db.session.scalars(select(Measure))}
    dashboard.by_measure = sorted(
        ((measures[measure_id], count) for measure_id, count in rows),
        key=lambda item: (-item[1], item[0].id),
    )


def _greater(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    # GREATEST is not SQLite's; max(a, b) is not PostgreSQL's.
    return case((a >= b, a), else_=b)


def _rank_of(column: Any) -> ColumnElement[Any]:
    return case({status: index for index, status in enumerate(JOURNEY)}, value=column, else_=0)


def _registration_rank() -> ColumnElement[Any]:
    """How far a registration got as a whole: its status while under way; for one that stepped
    out (withdrawn, declined, expired) the furthest step of its history (a declined one had a
    quote). Only the household's own changes count, not a measure's."""
    furthest = (
        select(func.max(_rank_of(StatusChange.to_status)))
        .where(
            StatusChange.registration_id == Registration.id,
            StatusChange.registration_measure_id.is_(None),
        )
        .scalar_subquery()
    )
    at_least = case(
        (Registration.status == RegistrationStatus.DECLINED, _RANK[RegistrationStatus.QUOTED]),
        else_=0,
    )
    return case(
        (Registration.status.in_(LEFT), _greater(func.coalesce(furthest, 0), at_least)),
        else_=_rank_of(Registration.status),
    )


def _line_ranks(scope: Scope) -> Any:
    """Per household measure with order lines: the furthest step any of its lines reached,
    from what the work left behind (a quote sent, a quote accepted, an installation day, a
    confirmation), so a line withdrawn or cancelled later still counts up to where it got."""
    quote = select(Quote.id).where(Quote.line_id == OrderLine.id)
    rank = case(
        (
            or_(OrderLine.confirmed_at.is_not(None), OrderLine.status == LineStatus.COMPLETED),
            _RANK[RegistrationStatus.COMPLETED],
        ),
        (
            or_(OrderLine.installed_on.is_not(None), OrderLine.status == LineStatus.INSTALLED),
            _RANK[RegistrationStatus.INSTALLED],
        ),
        (
            or_(
                quote.where(Quote.status == QuoteStatus.ACCEPTED).exists(),
                OrderLine.status == LineStatus.ACCEPTED,
            ),
            _RANK[RegistrationStatus.ACCEPTED],
        ),
        (
            or_(quote.exists(), OrderLine.status == LineStatus.QUOTED),
            _RANK[RegistrationStatus.QUOTED],
        ),
        (
            or_(
                select(SiteSurvey.id).where(SiteSurvey.line_id == OrderLine.id).exists(),
                OrderLine.status == LineStatus.SURVEY_PLANNED,
            ),
            _RANK[RegistrationStatus.SURVEY_PLANNED],
        ),
        else_=_RANK[RegistrationStatus.ASSIGNED],
    )
    return scope.apply(
        select(
            OrderLine.registration_measure_id.label("measure_id"),
            func.max(rank).label("rank"),
        )
        .join(Registration, Registration.id == OrderLine.registration_id)
        .where(OrderLine.registration_measure_id.is_not(None))
        .group_by(OrderLine.registration_measure_id)
    ).subquery("line_ranks")


def _funnel(scope: Scope) -> tuple[list[FunnelStep], list[FunnelStep]]:
    """How many households, and how many of their measures, got at least as far as each step.

    A measure's own progress is its order lines' (``_line_ranks``); a measure without one is as
    far as its registration (confirmed, waiting for an installer; or imported data), and one
    withdrawn on its own before any line at most confirmed. A household got as far as its
    furthest measure: a roof installed counts the household as installed while its heat pump
    is still quoted. Two GROUP BY queries, whatever the number of registrations.
    """
    lines = _line_ranks(scope)
    registration_rank = _registration_rank()
    measure_rank = case(
        (lines.c.rank.is_not(None), lines.c.rank),
        (
            RegistrationMeasure.withdrawn_at.is_not(None),
            case(
                (
                    registration_rank > _RANK[RegistrationStatus.CONFIRMED],
                    _RANK[RegistrationStatus.CONFIRMED],
                ),
                else_=registration_rank,
            ),
        ),
        else_=registration_rank,
    )
    per_measure = scope.apply(
        select(measure_rank.label("rank"))
        .select_from(RegistrationMeasure)
        .join(Registration, Registration.id == RegistrationMeasure.registration_id)
        .outerjoin(lines, lines.c.measure_id == RegistrationMeasure.id)
    ).subquery()
    measures: dict[int, int] = dict(
        db.session.execute(
            select(per_measure.c.rank, func.count()).group_by(per_measure.c.rank)
        ).all()
    )
    per_registration = scope.apply(
        select(
            Registration.household_id.label("household_id"),
            _greater(registration_rank, func.coalesce(func.max(measure_rank), 0)).label("rank"),
        )
        .select_from(Registration)
        .outerjoin(RegistrationMeasure, RegistrationMeasure.registration_id == Registration.id)
        .outerjoin(lines, lines.c.measure_id == RegistrationMeasure.id)
        .group_by(Registration.id, Registration.household_id, Registration.status)
    ).subquery()
    # A household in two actions of a neighbourhood is one household, as far as its furthest.
    per_household = (
        select(func.max(per_registration.c.rank).label("rank"))
        .group_by(per_registration.c.household_id)
        .subquery()
    )
    households: dict[int, int] = dict(
        db.session.execute(
            select(per_household.c.rank, func.count()).group_by(per_household.c.rank)
        ).all()
    )

    def cumulative(reached: dict[int, int]) -> list[FunnelStep]:
        return [
            (step, sum(int(n) for rank, n in reached.items() if int(rank) >= _RANK[step]))
            for step in FUNNEL
        ]

    return cumulative(households), cumulative(measures)


def _neighbourhoods_of(action: Action) -> list[Neighbourhood]:
    """The action's neighbourhoods; when none are linked, the organisation's that share a PC4."""
    if action.neighbourhoods:
        return sorted(action.neighbourhoods, key=lambda n: n.name)
    areas = set(action.pc4_list)
    return [
        n
        for n in organisation_neighbourhoods(action.organisation_id)
        if areas.intersection(n.pc4_list)
    ]


# --- audit log -------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def audit_page(organisation_id: int, page: int = 1) -> AuditPage:
    """Newest first; one row more than a page is read to know whether a next page exists."""
    page = max(page, 1)
    entries = list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.organisation_id == organisation_id)
            .options(selectinload(AuditEntry.actor))
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(AUDIT_PAGE_SIZE + 1)
            .offset((page - 1) * AUDIT_PAGE_SIZE)
        )
    )
    return AuditPage(entries[:AUDIT_PAGE_SIZE], page, len(entries) > AUDIT_PAGE_SIZE)


# --- the desk's settings ----------------------------------------------------------------------


@address_lookup.desk_allows_lookup.provide
def lookup_allowed(organisation_id: int) -> bool:
    """Whether the desk has not switched the address lookup off (an unknown desk: it has not)."""
    organisation = db.session.get(Organisation, organisation_id)
    return organisation is None or organisation.address_lookup


def set_address_lookup(actor: Any, organisation: Any, on: bool) -> None:
    """Whether the desk's forms fill in street and town from the BAG (``coop.core.address_lookup``).
    A desk may not want its residents' postcodes and house numbers asked of PDOK; audited."""
    if organisation.address_lookup == on:
        return
    before = {"address_lookup": organisation.address_lookup}
    organisation.address_lookup = on
    audit.record(
        actor,
        organisation.id,
        "organisation.settings",
        organisation,
        before=before,
        after={"address_lookup": on},
    )
    db.session.commit()
