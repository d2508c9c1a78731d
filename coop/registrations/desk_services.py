"""The staff's view of registrations: the searchable list, one registration in full, notes, export.

Everything is scoped to one organisation through the action a registration belongs to. The list
is built to stay fast at 100,000 registrations: one query for the page (households and users
joined, the rest loaded with one extra query each), one COUNT that joins only what its filters
need, filters that can use the indexes (registrations(action_id, status), households.pc4,
registration_measures.action_measure_id), and a search that turns a typed postcode into an
indexed lookup and anything else into a trigram-indexed match on the folded search text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import contains_eager, selectinload
from sqlalchemy.sql.elements import ColumnElement

from coop.accounts.models import User
from coop.actions.models import Action, ActionMeasure, Measure
from coop.core import audit, exports
from coop.core.address import normalise_postcode
from coop.core.errors import DomainError
from coop.core.hooks import Hook
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.core.web import localized
from coop.extensions import db
from coop.registrations import search
from coop.registrations.models import (
    JOURNEY,
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationNote,
    RegistrationStatus,
    StatusChange,
)

PAGE_SIZE = 50
NOTE_MAX_LENGTH = 2000
SORTS = ("created", "name", "postcode", "status")

# Names staff read for statuses, ownership and dwellings (the resident's pages word them for
# the resident: "Registered, waiting for your confirmation").
STATUS_LABELS = {
    RegistrationStatus.PENDING_CONFIRMATION: _l("Waiting for confirmation"),
    RegistrationStatus.CONFIRMED: _l("Confirmed"),
    RegistrationStatus.ASSIGNED: _l("Installer assigned"),
    RegistrationStatus.SURVEY_PLANNED: _l("Site survey planned"),
    RegistrationStatus.QUOTED: _l("Quoted"),
    RegistrationStatus.ACCEPTED: _l("Quote accepted"),
    RegistrationStatus.INSTALLED: _l("Installed"),
    RegistrationStatus.COMPLETED: _l("Completed"),
    RegistrationStatus.DECLINED: _l("Quote declined"),
    RegistrationStatus.WITHDRAWN: _l("Withdrawn"),
    RegistrationStatus.EXPIRED: _l("Expired"),
}
OWNERSHIP_LABELS = {
    Ownership.OWNER: _l("Owner-occupier"),
    Ownership.PRIVATE_TENANT: _l("Tenant, private landlord"),
    Ownership.CORPORATION_TENANT: _l("Tenant, housing corporation"),
    Ownership.VVE_MEMBER: _l("Apartment owner in a VvE"),
}
DWELLING_LABELS = {
    DwellingType.DETACHED: _l("Detached house"),
    DwellingType.SEMI_DETACHED: _l("Semi-detached house"),
    DwellingType.TERRACED: _l("Terraced house"),
    DwellingType.CORNER: _l("Corner house"),
    DwellingType.APARTMENT: _l("Apartment"),
    DwellingType.OTHER: _l("Other"),
}
# Sorting by status follows the journey (pending, confirmed, ... completed), then the ends.
_STATUS_ORDER = {
    status: position
    for position, status in enumerate(
        [
            *JOURNEY,
            RegistrationStatus.DECLINED,
            RegistrationStatus.WITHDRAWN,
            RegistrationStatus.EXPIRED,
        ]
    )
}


class NoteError(DomainError):
    """A rule stopped the operation; ``code`` names it."""


@dataclass
class RegistrationQuery:
    """The filters, sort and page of the list, as the GET parameters give them (already valid)."""

    q: str = ""
    action_id: int | None = None
    measure_id: int | None = None
    status: RegistrationStatus | None = None
    pc4: str | None = None
    ownership: Ownership | None = None
    sort: str = "created"
    descending: bool = True
    page: int = 1

    def filters(self) -> dict[str, Any]:
        """The filters alone, JSON-safe (for the audit entry of an export)."""
        data = asdict(self)
        for key in ("sort", "descending", "page"):
            data.pop(key)
        return {
            k: (v.value if isinstance(v, RegistrationStatus | Ownership) else v)
            for k, v in data.items()
            if v not in (None, "")
        }


@dataclass
class RegistrationPage:
    rows: list[Registration]
    total: int
    page: int
    page_size: int = PAGE_SIZE
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.page_size))

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.page_size)

    def window(self, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first, the last and a few around the current; None = gap."""
        shown = sorted(
            {
                1,
                self.pages,
                *range(max(1, self.page - around), min(self.pages, self.page + around) + 1),
            }
        )
        result: list[int | None] = []
        for number in shown:
            if result and result[-1] is not None and number - result[-1] > 1:
                result.append(None)
            result.append(number)
        return result


@dataclass(frozen=True)
class ReferenceMatch:
    registration_id: int | None  # None: a reference, but of no registration of these actions


# A deposit's payment reference typed in the search ("COOP-000042-95"): payments build on
# registrations and provide this (``coop.payments.search``); None when the text is no reference.
payment_reference: Hook[Callable[[str, list[int]], ReferenceMatch | None]] = Hook(
    "payment_reference", lambda text, action_ids: None
)


def actions_of(organisation_id: int) -> list[Action]:
    return list(
        db.session.scalars(
            select(Action)
            .where(Action.organisation_id == organisation_id)
            .order_by(Action.registration_opens_at.desc(), Action.id.desc())
        )
    )


def get_action(action_id: int) -> Action | None:
    return db.session.get(Action, action_id)


def open_actions_of(organisation_id: int, now: datetime | None = None) -> list[Action]:
    """The organisation's actions that take registrations now (for registering on behalf)."""
    now = now or utcnow()
    return [a for a in actions_of(organisation_id) if a.is_open_for_registration(now)]


def catalogue() -> list[Measure]:
    return list(db.session.scalars(select(Measure).order_by(Measure.id)))


def _org_actions(organisation_id: int) -> Select[Any]:
    return select(Action.id).where(Action.organisation_id == organisation_id)


def _action_ids(organisation_id: int) -> list[int]:
    """The organisation's action ids (a handful). Given to the planner as literal values it
    estimates the scope exactly, instead of guessing from a subquery."""
    return list(db.session.scalars(_org_actions(organisation_id).order_by(Action.id)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_condition(
    q: str, action_ids: list[int] | None = None
) -> tuple[ColumnElement[bool], set[str]]:
    """The search as a condition, and which tables it needs joined ("household", "user").

    A postcode is looked up by the indexes: a full one ("3524 BA", "3524ba") by equality, four
    digits by households.pc4, four digits and a letter by pc4 plus a prefix. Anything else is
    searched, accents and case aside, in the registration's ``search_text`` (name, email,
    street, house number, postcode and town; see ``coop.registrations.search``). A deposit's
    payment reference ("COOP-000042-95", as a bank statement shows it) finds its registration.
    """
    if action_ids is not None:
        reference = payment_reference.call(q, action_ids)
        if reference is not None:
            return Registration.id == reference.registration_id, set()
    full = normalise_postcode(q)
    if full is not None:
        return Household.postcode == full, {"household"}
    compact = q.replace(" ", "")
    if len(compact) == 4 and compact.isdigit():
        return Household.pc4 == compact, {"household"}
    if len(compact) == 5 and compact[:4].isdigit() and compact[4].isalpha():
        prefix = f"{compact[:4]} {compact[4].upper()}"
        return (
            (Household.pc4 == compact[:4]) & Household.postcode.like(prefix + "%"),
            {"household"},
        )
    words = search.terms(q)
    if not words:
        return Registration.id.is_(None), set()  # only punctuation or spaces: nothing matches
    # Every word somewhere in the folded name, email and address, in any order: "van dijk"
    # and "dijk van" both find "Öztürk-van Dijk". PostgreSQL answers each LIKE from the
    # trigram index on search_text (words of three letters or more; shorter ones are read).
    return (
        and_(
            *(
                Registration.search_text.like(f"%{_escape_like(word)}%", escape="\\")
                for word in words
            )
        ),
        set(),
    )


def _conditions(
    action_ids: list[int], query: RegistrationQuery
) -> tuple[list[ColumnElement[bool]], set[str]]:
    # The organisation through its actions: an IN over a handful of ids, so the
    # (action_id, status) index serves both the scope and the status filter.
    conditions: list[ColumnElement[bool]] = [Registration.action_id.in_(action_ids)]
    joins: set[str] = set()
    if query.action_id is not None:
        conditions.append(Registration.action_id == query.action_id)
    if query.status is not None:
        conditions.append(Registration.status == query.status)
    if query.measure_id is not None:
        wanted = select(ActionMeasure.id).where(
            ActionMeasure.measure_id == query.measure_id,
            ActionMeasure.action_id.in_(action_ids),
        )
        conditions.append(
            Registration.id.in_(
                select(RegistrationMeasure.registration_id).where(
                    RegistrationMeasure.action_measure_id.in_(wanted)
                )
            )
        )
    if query.pc4:
        conditions.append(Household.pc4 == query.pc4)
        joins.add("household")
    if query.ownership is not None:
        conditions.append(Household.ownership == query.ownership)
        joins.add("household")
    if query.q:
        condition, needed = _search_condition(query.q, action_ids)
        conditions.append(condition)
        joins |= needed
    return conditions, joins


def _order(query: RegistrationQuery) -> list[Any]:
    def direction(column: Any) -> Any:
        return column.desc() if query.descending else column.asc()

    if query.sort == "name":
        keys = [func.lower(User.name), User.name]
    elif query.sort == "postcode":
        keys = [Household.postcode, Household.house_number, Household.house_number_addition]
    elif query.sort == "status":
        keys = [case(_STATUS_ORDER, value=Registration.status, else_=99)]
    else:
        keys = [Registration.created_at]
    # The id breaks ties, so a page never repeats or skips a row.
    return [direction(key) for key in [*keys, Registration.id]]


def _with_joins(statement: Select[Any], joins: set[str]) -> Select[Any]:
    if "household" in joins:
        statement = statement.join(Household, Household.id == Registration.household_id)
    if "user" in joins:
        statement = statement.join(User, User.id == Registration.user_id)
    return statement


# The tables a sort needs besides registrations.
_SORT_JOINS = {"name": {"user"}, "postcode": {"household"}}


def count_registrations(action_ids: list[int], query: RegistrationQuery) -> int:
    conditions, joins = _conditions(action_ids, query)
    statement = _with_joins(select(func.count(Registration.id)).select_from(Registration), joins)
    return int(db.session.scalar(statement.where(*conditions)) or 0)


def _page_ids(action_ids: list[int], query: RegistrationQuery, offset: int) -> list[int]:
    """The ids of one page: sorted and cut on narrow rows (ids and sort keys only), so sorting
    100,000 registrations by name or skipping to page 1,000 moves little data."""
    conditions, joins = _conditions(action_ids, query)
    statement = _with_joins(
        select(Registration.id).select_from(Registration),
        joins | _SORT_JOINS.get(query.sort, set()),
    )
    return list(
        db.session.scalars(
            statement.where(*conditions).order_by(*_order(query)).limit(PAGE_SIZE).offset(offset)
        )
    )


def search_registrations(organisation_id: int, query: RegistrationQuery) -> RegistrationPage:
    """One page of the organisation's registrations; a page past the end shows the last one.

    Three queries whatever the page shows: the count, the page's ids, and those rows with their
    household and resident (plus one each to load the actions and the measures of the rows).
    """
    action_ids = _action_ids(organisation_id)
    total = count_registrations(action_ids, query)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, query.page), pages)
    ids = _page_ids(action_ids, query, (page - 1) * PAGE_SIZE)
    rows: list[Registration] = []
    if ids:
        loaded = db.session.scalars(
            select(Registration)
            .join(Registration.household)
            .join(Registration.user)
            .where(Registration.id.in_(ids))
            .options(
                contains_eager(Registration.household),
                contains_eager(Registration.user),
                selectinload(Registration.action),
                selectinload(Registration.measures),
            )
        ).all()
        by_id = {registration.id: registration for registration in loaded}
        rows = [by_id[i] for i in ids if i in by_id]
    return RegistrationPage(rows=rows, total=total, page=page)


# --- one registration -------------------------------------------------------------------------


def registration_for_staff(registration_id: int) -> Registration | None:
    return db.session.scalar(
        select(Registration)
        .where(Registration.id == registration_id)
        .options(
            selectinload(Registration.household),
            selectinload(Registration.user),
            selectinload(Registration.action),
            selectinload(Registration.measures),
            selectinload(Registration.history),
        )
    )


@dataclass(frozen=True)
class HistoryEntry:
    change: StatusChange
    actor: User | None

    @property
    def by_staff(self) -> bool:
        return self.actor is not None and self.actor.is_staff


def history(registration: Registration) -> list[HistoryEntry]:
    """The status changes, oldest first, with who made each (one query for all the people)."""
    actor_ids = {c.actor_id for c in registration.history if c.actor_id is not None}
    actors = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(actor_ids)))}
        if actor_ids
        else {}
    )
    return [
        HistoryEntry(change, actors.get(change.actor_id) if change.actor_id else None)
        for change in registration.history
    ]


def notes_of(registration: Registration) -> list[RegistrationNote]:
    return list(
        db.session.scalars(
            select(RegistrationNote)
            .where(RegistrationNote.registration_id == registration.id)
            .options(selectinload(RegistrationNote.author))
            .order_by(RegistrationNote.created_at.desc(), RegistrationNote.id.desc())
        )
    )


def emails_of(registration: Registration, limit: int = 100) -> list[EmailLog]:
    """The emails sent to the registration's resident (all of them, newest first)."""
    return list(
        db.session.scalars(
            select(EmailLog)
            .where(EmailLog.user_id == registration.user_id)
            .order_by(EmailLog.created_at.desc(), EmailLog.id.desc())
            .limit(limit)
        )
    )


def add_note(actor: User, registration: Registration, body: str) -> RegistrationNote:
    body = body.strip()
    if not body:
        raise NoteError("empty")
    if len(body) > NOTE_MAX_LENGTH:
        raise NoteError("too_long")
    note = RegistrationNote(registration_id=registration.id, author_id=actor.id, body=body)
    db.session.add(note)
    db.session.flush()
    audit.record(
        actor,
        registration.action.organisation_id,
        "registration.note",
        registration,
        after={"note_id": note.id, "body": body},
    )
    db.session.commit()
    return note


# --- export -----------------------------------------------------------------------------------


def _export_rows(organisation_id: int, query: RegistrationQuery) -> Select[*tuple[Any, ...]]:
    """The columns an export row needs, as plain rows in the list's order (no ORM objects:
    building 100,000 of them would cost more than the query)."""
    conditions, _ = _conditions(_action_ids(organisation_id), query)
    return (
        select(
            Registration.id,
            Registration.created_at,
            Registration.action_id,
            Registration.status,
            User.name,
            User.email,
            User.phone,
            Household.street,
            Household.house_number,
            Household.house_number_addition,
            Household.postcode,
            Household.city,
            Household.dwelling_type,
            Household.build_year,
            Household.ownership,
            Household.energy_label,
        )
        .join(Household, Household.id == Registration.household_id)
        .join(User, User.id == Registration.user_id)
        .where(*conditions)
        .order_by(*_order(query))
    )


def _measure_names(organisation_id: int) -> dict[int, tuple[int, str, str]]:
    """action_measure_id -> (position, name, unit) for the organisation's actions."""
    square_metre, pieces = gettext("m²"), gettext("pcs")
    return {
        am.id: (
            am.position,
            localized(am.measure, "name"),
            square_metre if am.measure.unit.value == "m2" else pieces,
        )
        for am in db.session.scalars(
            select(ActionMeasure).where(ActionMeasure.action_id.in_(_org_actions(organisation_id)))
        )
    }


def export_table(actor: User, query: RegistrationQuery, fmt: str) -> exports.Table:
    """The filtered registrations (all pages, in the list's order); the export is audited."""
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    audit.record(
        actor,
        organisation_id,
        "registration.export",
        None,
        after={"format": fmt, "filters": query.filters()},
    )
    db.session.commit()
    # Every text that repeats is translated once, not once per row.
    titles = {a.id: localized(a, "title") for a in actions_of(organisation_id)}
    statuses = {k: str(v) for k, v in STATUS_LABELS.items()}
    ownerships = {k: str(v) for k, v in OWNERSHIP_LABELS.items()}
    dwellings = {k: str(v) for k, v in DWELLING_LABELS.items()}
    measure_names = _measure_names(organisation_id)
    headers = [
        gettext("Number"),
        gettext("Registered at"),
        gettext("Action"),
        gettext("Status"),
        gettext("Name"),
        gettext("Email address"),
        gettext("Phone number"),
        gettext("Street"),
        gettext("House number"),
        gettext("Addition"),
        gettext("Postcode"),
        gettext("Town or city"),
        gettext("Type of home"),
        gettext("Year of construction"),
        gettext("Ownership"),
        gettext("Energy label"),
        gettext("Measures"),
    ]

    def measures_of(ids: list[int]) -> dict[int, str]:
        wanted: dict[int, list[tuple[int, str]]] = {}
        for registration_id, action_measure_id, quantity in db.session.execute(
            select(
                RegistrationMeasure.registration_id,
                RegistrationMeasure.action_measure_id,
                RegistrationMeasure.quantity,
            ).where(RegistrationMeasure.registration_id.in_(ids))
        ):
            position, name, unit = measure_names.get(action_measure_id, (0, "?", ""))
            wanted.setdefault(registration_id, []).append((position, f"{name}: {quantity} {unit}"))
        return {k: "; ".join(text for _, text in sorted(v)) for k, v in wanted.items()}

    def rows() -> Iterator[list[exports.Cell]]:
        result = db.session.execute(
            _export_rows(organisation_id, query).execution_options(yield_per=2000)
        )
        for batch in result.partitions():
            measures = measures_of([row.id for row in batch])
            for row in batch:
                yield [
                    row.id,
                    row.created_at,
                    titles.get(row.action_id, ""),
                    statuses[row.status],
                    row.name,
                    row.email,
                    row.phone,
                    row.street,
                    row.house_number,
                    row.house_number_addition,
                    row.postcode,
                    row.city,
                    dwellings[row.dwelling_type],
                    row.build_year,
                    ownerships[row.ownership],
                    row.energy_label,
                    measures.get(row.id, ""),
                ]

    return exports.Table(title=gettext("Registrations"), headers=headers, rows=rows())
