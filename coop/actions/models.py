"""Neighbourhoods, the measure catalogue, actions and what they offer at which group price."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import Organisation
from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db


class Neighbourhood(db.Model):  # type: ignore[name-defined]
    """A wijk or buurt: the unit a desk plans, counts households and reports for."""

    __tablename__ = "neighbourhoods"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    municipality: Mapped[str] = mapped_column(String(100))
    # Number of households, entered by staff, for participation rates; unknown until then.
    household_count: Mapped[int | None] = mapped_column(Integer)
    # Four-digit postcode areas (PC4) the neighbourhood covers, comma separated: "3521,3522".
    postcode_areas: Mapped[str] = mapped_column(String(500), default="")

    organisation: Mapped[Organisation] = relationship()

    @property
    def pc4_list(self) -> list[str]:
        return [p for p in self.postcode_areas.split(",") if p]


class MeasureUnit(enum.StrEnum):
    SQUARE_METRE = "m2"
    PIECE = "piece"


class MeasureCategory(enum.StrEnum):
    INSULATION = "insulation"
    HEAT_PUMP = "heat_pump"


class Measure(db.Model):  # type: ignore[name-defined]
    """The catalogue: cavity wall, roof, floor, HR++ glazing, hybrid and full heat pump."""

    __tablename__ = "measures"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_nl: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    unit: Mapped[MeasureUnit] = mapped_column(enum_type(MeasureUnit))
    category: Mapped[MeasureCategory] = mapped_column(enum_type(MeasureCategory))
    # Largest sensible quantity for one home; anything above is a typing error.
    max_quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("max_quantity > 0", name="max_quantity_positive"),)


class ActionStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"  # published; registration possible within the window
    CLOSED = "closed"  # registration closed; batching, matching and orders follow
    CANCELLED = "cancelled"


action_neighbourhoods = Table(
    "action_neighbourhoods",
    db.metadata,
    Column("action_id", ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "neighbourhood_id", ForeignKey("neighbourhoods.id", ondelete="CASCADE"), primary_key=True
    ),
)


class Action(db.Model):  # type: ignore[name-defined]
    """A collective purchase action (collectieve inkoopactie) for one or more neighbourhoods."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title_nl: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    summary_nl: Mapped[str] = mapped_column(Text, default="")
    summary_en: Mapped[str] = mapped_column(Text, default="")
    description_nl: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ActionStatus] = mapped_column(
        enum_type(ActionStatus), default=ActionStatus.DRAFT, index=True
    )
    registration_opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registration_closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    # Postcode areas (PC4) the action serves, comma separated; a resident finds it by postcode.
    postcode_areas: Mapped[str] = mapped_column(String(1000), default="")
    # The deposit asked when a resident accepts a quote: a fixed amount, or a percentage of the
    # quote (never both); neither means no deposit. Set on the desk's deposit page (payments).
    deposit_cents: Mapped[int | None] = mapped_column(Integer)
    deposit_percent: Mapped[int | None] = mapped_column(Integer)
    # Where residents transfer the deposit when coop runs without Stripe (offline mode).
    deposit_iban: Mapped[str | None] = mapped_column(String(34))
    deposit_account_name: Mapped[str | None] = mapped_column(String(70))
    # Working days an installer has to accept or decline an order of this action.
    order_response_days: Mapped[int] = mapped_column(Integer, default=5)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship()
    neighbourhoods: Mapped[list[Neighbourhood]] = relationship(secondary=action_neighbourhoods)
    measures: Mapped[list[ActionMeasure]] = relationship(
        back_populates="action", cascade="all, delete-orphan", order_by="ActionMeasure.position"
    )
    milestones: Mapped[list[ActionMilestone]] = relationship(
        cascade="all, delete-orphan", order_by="ActionMilestone.on_date"
    )
    faqs: Mapped[list[ActionFaq]] = relationship(
        cascade="all, delete-orphan", order_by="ActionFaq.position"
    )

    __table_args__ = (
        CheckConstraint("registration_closes_at > registration_opens_at", name="window_order"),
        CheckConstraint("deposit_cents IS NULL OR deposit_cents >= 0", name="deposit_positive"),
        # At most half in advance: a consumer cannot be held to more (article 7:26 BW).
        CheckConstraint(
            "deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 50",
            name="deposit_percent_range",
        ),
        CheckConstraint(
            "deposit_cents IS NULL OR deposit_percent IS NULL", name="deposit_one_kind"
        ),
        CheckConstraint("order_response_days BETWEEN 1 AND 30", name="order_response_days_range"),
    )

    @property
    def pc4_list(self) -> list[str]:
        return [p for p in self.postcode_areas.split(",") if p]

    def is_open_for_registration(self, now: datetime) -> bool:
        return (
            self.status is ActionStatus.OPEN
            and self.registration_opens_at <= now < self.registration_closes_at
        )


class ActionMeasure(db.Model):  # type: ignore[name-defined]
    """A measure an action offers, with its indicative price per unit before group tiers."""

    __tablename__ = "action_measures"

    # The indicative and tier prices are what a resident pays, VAT included: the action page
    # shows them to residents as such, while installers bid excluding VAT. Pages that show these
    # prices say which (the installer's bid form, the desk's price form).
    PRICES_INCLUDE_VAT: ClassVar[bool] = True

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    indicative_price_cents: Mapped[int] = mapped_column(Integer)

    action: Mapped[Action] = relationship(back_populates="measures")
    measure: Mapped[Measure] = relationship(lazy="joined")
    tiers: Mapped[list[PriceTier]] = relationship(
        cascade="all, delete-orphan", order_by="PriceTier.min_participants"
    )

    __table_args__ = (
        db.UniqueConstraint("action_id", "measure_id"),
        CheckConstraint("indicative_price_cents > 0", name="price_positive"),
    )


class PriceTier(db.Model):  # type: ignore[name-defined]
    """From ``min_participants`` homes on, the price per unit drops to ``price_cents``."""

    __tablename__ = "price_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_measure_id: Mapped[int] = mapped_column(
        ForeignKey("action_measures.id", ondelete="CASCADE")
    )
    min_participants: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        db.UniqueConstraint("action_measure_id", "min_participants"),
        CheckConstraint("min_participants > 0", name="min_participants_positive"),
        CheckConstraint("price_cents > 0", name="price_positive"),
    )


class ActionMilestone(db.Model):  # type: ignore[name-defined]
    """A date on the action's public timeline (information evening, installations start...)."""

    __tablename__ = "action_milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    on_date: Mapped[date]
    label_nl: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))


class ActionFaq(db.Model):  # type: ignore[name-defined]
    __tablename__ = "action_faqs"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    question_nl: Mapped[str] = mapped_column(String(300))
    question_en: Mapped[str] = mapped_column(String(300))
    answer_nl: Mapped[str] = mapped_column(Text)
    answer_en: Mapped[str] = mapped_column(Text)


class ActionEmailTemplate(db.Model):  # type: ignore[name-defined]
    """Staff's own wording of an email of an action, per language; the default file template
    is used where there is none. Rendered in a sandbox and checked before it is stored."""

    __tablename__ = "action_email_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(50))  # the template name: confirm_registration...
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (db.UniqueConstraint("action_id", "kind", "language"),)
