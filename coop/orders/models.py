"""From demand to installed work: batches, matching runs and their proposals, orders with the
households in them (order lines), site surveys, quotes and the residents' reviews.

A batch is the homes of one action wanting one measure in one PC4 area. A matching run proposes
which installer takes each batch (a batch is split only when no single installer can take it);
approving it creates one order per installer per batch, with one order line per household. The
survey, the quote and the installation then follow per order line.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import User
from coop.actions.models import Action, ActionMeasure, Measure
from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.registrations.models import Registration, RegistrationMeasure


class Batch(db.Model):  # type: ignore[name-defined]
    """The homes of an action wanting one measure in one PC4 area.

    Which homes belong to it follows from the registrations (their action, measure and
    postcode); the row gives the group an identity that proposals and orders point to.
    """

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    action_measure_id: Mapped[int] = mapped_column(
        ForeignKey("action_measures.id", ondelete="CASCADE")
    )
    pc4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    action: Mapped[Action] = relationship()
    action_measure: Mapped[ActionMeasure] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("action_id", "action_measure_id", "pc4"),)


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PROPOSED = "proposed"  # done; staff review and approve
    APPROVING = "approving"  # staff approved it; a job is creating its orders
    APPROVED = "approved"  # orders were created from it
    SUPERSEDED = "superseded"  # a newer run replaced it before approval
    FAILED = "failed"


class RunTrigger(enum.StrEnum):
    STAFF = "staff"
    TENDER_CLOSED = "tender_closed"
    ORDER_DECLINED = "order_declined"
    ORDER_EXPIRED = "order_expired"


# An approving run is open too: a cancelled action ends it, and no run starts beside it.
OPEN_RUN = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PROPOSED, RunStatus.APPROVING)


class MatchingRun(db.Model):  # type: ignore[name-defined]
    """One matching of an action's homes that have no installer yet, with its progress."""

    __tablename__ = "matching_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    status: Mapped[RunStatus] = mapped_column(enum_type(RunStatus), default=RunStatus.QUEUED)
    trigger: Mapped[RunTrigger] = mapped_column(enum_type(RunTrigger))
    tender_round_id: Mapped[int | None] = mapped_column(
        ForeignKey("tender_rounds.id", ondelete="SET NULL")
    )
    # Installers without a bid take part with their registry prices only when staff say so;
    # their capacity for the action is then their homes per week times this many weeks.
    use_registry_prices: Mapped[bool] = mapped_column(Boolean, default=False)
    registry_weeks: Mapped[int] = mapped_column(Integer, default=12)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    stage: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times a worker started it
    homes_total: Mapped[int | None] = mapped_column(Integer)
    homes_covered: Mapped[int | None] = mapped_column(Integer)
    # Cents of a whole proposal: a city's (20,000 homes) passes the 2^31 of an INTEGER.
    cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    optimal: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    action: Mapped[Action] = relationship()
    proposals: Mapped[list[ProposedAssignment]] = relationship(
        cascade="all, delete-orphan", order_by="ProposedAssignment.id"
    )

    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        CheckConstraint("registry_weeks BETWEEN 1 AND 104", name="registry_weeks_range"),
    )


class ProposedAssignment(db.Model):  # type: ignore[name-defined]
    """Part of a run's proposal: this many homes of a batch to one installer, or (no installer)
    the homes nobody could take, with the explanation staff read."""

    __tablename__ = "proposed_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("matching_runs.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    installer_id: Mapped[int | None] = mapped_column(
        ForeignKey("installers.id", ondelete="CASCADE")
    )
    homes: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    unit_price_cents: Mapped[int | None] = mapped_column(Integer)
    cost_cents: Mapped[int | None] = mapped_column(BigInteger)  # a large batch of heat pumps
    explanation_nl: Mapped[str] = mapped_column(Text, default="")
    explanation_en: Mapped[str] = mapped_column(Text, default="")
    changed_by_staff: Mapped[bool] = mapped_column(Boolean, default=False)

    batch: Mapped[Batch] = relationship(lazy="joined")
    installer: Mapped[Installer | None] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("run_id", "batch_id", "installer_id"),
        CheckConstraint("homes >= 0", name="homes_not_negative"),
    )


class OrderStatus(enum.StrEnum):
    SENT = "sent"  # waiting for the installer's answer until ``respond_by``
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # no answer by the deadline
    CANCELLED = "cancelled"  # the action was cancelled


class Order(db.Model):  # type: ignore[name-defined]
    """The homes of one batch that one installer is asked to serve."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    installer_id: Mapped[int] = mapped_column(
        ForeignKey("installers.id", ondelete="RESTRICT"), index=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(enum_type(OrderStatus), default=OrderStatus.SENT)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decline_reason: Mapped[str | None] = mapped_column(Text)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    action: Mapped[Action] = relationship()
    batch: Mapped[Batch] = relationship(lazy="joined")
    installer: Mapped[Installer] = relationship(lazy="joined")
    answered_by: Mapped[User | None] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    __table_args__ = (
        # Approving a run twice (a double click, a retried request) creates each order once.
        UniqueConstraint("run_id", "batch_id", "installer_id"),
        CheckConstraint("unit_price_cents > 0", name="price_positive"),
        Index("ix_orders_status_respond_by", "status", "respond_by"),
    )


class LineStatus(enum.StrEnum):
    ASSIGNED = "assigned"
    SURVEY_PLANNED = "survey_planned"
    QUOTED = "quoted"
    ACCEPTED = "accepted"  # the resident accepted the quote
    INSTALLED = "installed"  # the installer says the work is done
    COMPLETED = "completed"  # the resident confirmed it
    DECLINED = "declined"  # the resident declined the quote (or let it expire)
    WITHDRAWN = "withdrawn"  # the household withdrew this measure (or erased its account)
    CANCELLED = "cancelled"  # the order was declined or expired, or the action cancelled


# Where a line can still move on; the others are final.
OPEN_LINE = frozenset(
    {
        LineStatus.ASSIGNED,
        LineStatus.SURVEY_PLANNED,
        LineStatus.QUOTED,
        LineStatus.ACCEPTED,
        LineStatus.INSTALLED,
    }
)


class OrderLine(db.Model):  # type: ignore[name-defined]
    """One household's measure in an order: what is surveyed, quoted and installed.

    ``current`` is true for every line except a cancelled one: a household's measure has at
    most one current line (a unique index), so it is never ordered from two installers, and a
    cancelled line frees it for the next matching.

    When the resident erases their account the line stays in the order, detached: without
    ``registration_id`` and ``registration_measure_id`` (and without the resident's own texts),
    so the installer's order and the books keep the work, its quote and its rating, but not
    the person or the address.
    """

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL"), index=True
    )
    registration_measure_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration_measures.id", ondelete="SET NULL")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[LineStatus] = mapped_column(enum_type(LineStatus), default=LineStatus.ASSIGNED)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    installation_planned_on: Mapped[date | None] = mapped_column(Date)
    installed_on: Mapped[date | None] = mapped_column(Date)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship(back_populates="lines")
    registration: Mapped[Registration | None] = relationship()
    registration_measure: Mapped[RegistrationMeasure | None] = relationship()
    surveys: Mapped[list[SiteSurvey]] = relationship(
        cascade="all, delete-orphan", order_by="SiteSurvey.id"
    )
    quotes: Mapped[list[Quote]] = relationship(
        back_populates="line", cascade="all, delete-orphan", order_by="Quote.id"
    )
    review: Mapped[Review | None] = relationship(cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("order_id", "registration_measure_id"),
        Index(
            "uq_order_lines_current_measure",
            "registration_measure_id",
            unique=True,
            sqlite_where=text("current"),
            postgresql_where=text("current"),
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    @property
    def detached(self) -> bool:
        """The resident erased their account: the line is kept without them."""
        return self.registration_id is None

    @property
    def household_registration(self) -> Registration:
        """The registration of the household; pages and jobs that need it leave detached lines
        out first (a detached line has no household any more)."""
        if self.registration is None:
            raise LookupError(f"order line {self.id} is detached: its resident was erased")
        return self.registration

    @property
    def measure(self) -> Measure:
        """The measure of the line (its order's batch is one measure, also once detached)."""
        return self.order.batch.action_measure.measure

    @property
    def survey(self) -> SiteSurvey | None:
        """The survey that stands (planned, or with a change asked), if any."""
        for survey in reversed(self.surveys):
            if survey.status in (SurveyStatus.PLANNED, SurveyStatus.CHANGE_REQUESTED):
                return survey
        return None

    @property
    def quote(self) -> Quote | None:
        """The newest quote, whatever its status."""
        return self.quotes[-1] if self.quotes else None


class SurveyStatus(enum.StrEnum):
    PLANNED = "planned"
    CHANGE_REQUESTED = "change_requested"  # the resident asked for another moment
    REPLACED = "replaced"  # a new moment was planned
    CANCELLED = "cancelled"


class SiteSurvey(db.Model):  # type: ignore[name-defined]
    """A visit to look at the home before the quote (opname)."""

    __tablename__ = "site_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer, default=60)
    status: Mapped[SurveyStatus] = mapped_column(
        enum_type(SurveyStatus), default=SurveyStatus.PLANNED
    )
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    planned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    change_request: Mapped[str | None] = mapped_column(Text)
    change_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 15 AND 480", name="duration_range"),
    )


class QuoteStatus(enum.StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REPLACED = "replaced"  # the installer sent a new quote before the resident decided


class VatRate(db.Model):  # type: ignore[name-defined]
    """A Dutch VAT rate (btw-tarief) that quotes may use from ``valid_from`` through
    ``valid_until``, both days included; no ``valid_until``: until further notice.

    The rates are the law's, not coop's, so they are data with their source, kept by each
    desk's staff for the quotes of its own actions (``coop.orders.vat_rates``): like
    everything else of a desk, no other desk can change them. A row is history: once it exists, only its end is ever set.
    A change of the law ends a rate and adds a new one, so what a day's quotes could use
    stays on record. A quote keeps its own percent per row (``QuoteItem.vat_rate``).
    """

    __tablename__ = "vat_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    percent: Mapped[int] = mapped_column(Integer)  # whole percent, as quote rows store it
    name_nl: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    # Where the rate comes from: the Belastingdienst's page or the article of the law.
    source: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # None for the rates the migration put in.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    ended_by: Mapped[User | None] = relationship(foreign_keys=[ended_by_id])

    __table_args__ = (
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent_range"),
        CheckConstraint(
            "valid_until IS NULL OR valid_until >= valid_from", name="ends_after_start"
        ),
    )


class Quote(db.Model):  # type: ignore[name-defined]
    """A priced offer for one household's measure; its amounts never change once sent."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[QuoteStatus] = mapped_column(enum_type(QuoteStatus), default=QuoteStatus.SENT)
    valid_until: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    total_excl_vat_cents: Mapped[int] = mapped_column(Integer)
    vat_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decline_reason: Mapped[str | None] = mapped_column(Text)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    line: Mapped[OrderLine] = relationship(back_populates="quotes")
    items: Mapped[list[QuoteItem]] = relationship(
        cascade="all, delete-orphan", order_by="QuoteItem.position"
    )

    __table_args__ = (
        CheckConstraint("total_excl_vat_cents >= 0", name="total_not_negative"),
        CheckConstraint("vat_cents >= 0", name="vat_not_negative"),
        CheckConstraint("total_cents = total_excl_vat_cents + vat_cents", name="total_adds_up"),
        Index("ix_quotes_status_valid_until", "status", "valid_until"),
    )


class QuoteItem(db.Model):  # type: ignore[name-defined]
    __tablename__ = "quote_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    vat_rate: Mapped[int] = mapped_column(Integer)  # percent

    __table_args__ = (
        UniqueConstraint("quote_id", "position"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="price_not_negative"),
        # Which rates a quote may use is data (``VatRate``), checked when it is sent; the
        # row only has to hold a percentage.
        CheckConstraint("vat_rate BETWEEN 0 AND 100", name="vat_rate_range"),
    )

    @property
    def amount_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Review(db.Model):  # type: ignore[name-defined]
    """The resident's rating of the installer once the work is confirmed."""

    __tablename__ = "installer_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True
    )
    installer_id: Mapped[int] = mapped_column(
        ForeignKey("installers.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)
