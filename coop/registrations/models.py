"""A household (a Dutch address and its dwelling) and its registration for an action."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from coop.accounts.models import User
from coop.actions.models import Action, ActionMeasure
from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db


class DwellingType(enum.StrEnum):
    DETACHED = "detached"  # vrijstaand
    SEMI_DETACHED = "semi_detached"  # twee-onder-een-kap
    TERRACED = "terraced"  # tussenwoning
    CORNER = "corner"  # hoekwoning
    APARTMENT = "apartment"
    OTHER = "other"


class Ownership(enum.StrEnum):
    OWNER = "owner"
    PRIVATE_TENANT = "private_tenant"
    CORPORATION_TENANT = "corporation_tenant"  # huurder bij een woningcorporatie
    VVE_MEMBER = "vve_member"  # VvE: the owners' association of an apartment building


class Household(db.Model):  # type: ignore[name-defined]
    """One address. The unique address makes "one registration per household" enforceable."""

    __tablename__ = "households"

    id: Mapped[int] = mapped_column(primary_key=True)
    postcode: Mapped[str] = mapped_column(String(7))  # normalised: "1234 AB"
    # The four digits of the postcode, kept apart so filtering by area uses an index.
    pc4: Mapped[str] = mapped_column(String(4), index=True)
    house_number: Mapped[int] = mapped_column(Integer)
    house_number_addition: Mapped[str] = mapped_column(String(10), default="")  # normalised upper
    street: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(80))
    dwelling_type: Mapped[DwellingType] = mapped_column(enum_type(DwellingType))
    build_year: Mapped[int] = mapped_column(Integer)
    ownership: Mapped[Ownership] = mapped_column(enum_type(Ownership))
    energy_label: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("postcode", "house_number", "house_number_addition"),
        CheckConstraint("house_number BETWEEN 1 AND 99999", name="house_number_range"),
        CheckConstraint("build_year BETWEEN 1000 AND 2100", name="build_year_range"),
    )

    @validates("postcode")
    def _keep_pc4(self, _key: str, postcode: str) -> str:
        self.pc4 = postcode[:4]
        return postcode

    @property
    def address_line(self) -> str:
        number = f"{self.house_number}{('-' + self.house_number_addition) if self.house_number_addition else ''}"
        return f"{self.street} {number}, {self.postcode} {self.city}"


class RegistrationStatus(enum.StrEnum):
    PENDING_CONFIRMATION = "pending_confirmation"
    CONFIRMED = "confirmed"
    ASSIGNED = "assigned"
    SURVEY_PLANNED = "survey_planned"
    QUOTED = "quoted"
    ACCEPTED = "accepted"
    INSTALLED = "installed"
    COMPLETED = "completed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


# The steps a registration normally goes through, in order, for the resident's timeline.
JOURNEY = (
    RegistrationStatus.PENDING_CONFIRMATION,
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.ASSIGNED,
    RegistrationStatus.SURVEY_PLANNED,
    RegistrationStatus.QUOTED,
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.INSTALLED,
    RegistrationStatus.COMPLETED,
)
ENDED = frozenset(
    {
        RegistrationStatus.DECLINED,
        RegistrationStatus.WITHDRAWN,
        RegistrationStatus.EXPIRED,
        RegistrationStatus.COMPLETED,
    }
)


class Registration(db.Model):  # type: ignore[name-defined]
    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="RESTRICT"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[RegistrationStatus] = mapped_column(
        enum_type(RegistrationStatus), default=RegistrationStatus.PENDING_CONFIRMATION, index=True
    )
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consent_version: Mapped[str] = mapped_column(String(20))
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Name, email and address folded for the staff's search ("ozturk" finds "Öztürk"); kept
    # up to date on every flush by coop.registrations.search.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    action: Mapped[Action] = relationship()
    household: Mapped[Household] = relationship()
    user: Mapped[User] = relationship()
    measures: Mapped[list[RegistrationMeasure]] = relationship(
        cascade="all, delete-orphan", back_populates="registration"
    )
    history: Mapped[list[StatusChange]] = relationship(
        cascade="all, delete-orphan", order_by="StatusChange.at, StatusChange.id"
    )

    __table_args__ = (
        # One registration per household per action, whoever registers it.
        UniqueConstraint("action_id", "household_id"),
        db.Index("ix_registrations_action_status", "action_id", "status"),
        db.Index("ix_registrations_action_created", "action_id", "created_at"),
        # A trigram index on PostgreSQL answers LIKE '%term%' without reading every row.
        db.Index(
            "ix_registrations_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )


class RegistrationMeasure(db.Model):  # type: ignore[name-defined]
    """A measure the household wants, with the quantity (m² or pieces).

    Each measure has a lifecycle of its own: its order line says how far the work is (surveyed,
    quoted, accepted, installed), and ``withdrawn_at`` that the household stepped out of this
    measure alone (``coop.residents.withdrawal``). The registration's status only sums the
    measures up for display.
    """

    __tablename__ = "registration_measures"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    action_measure_id: Mapped[int] = mapped_column(
        ForeignKey("action_measures.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    registration: Mapped[Registration] = relationship(back_populates="measures")
    action_measure: Mapped[ActionMeasure] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("registration_id", "action_measure_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class StatusChange(db.Model):  # type: ignore[name-defined]
    """Every status a registration passed through, with when and (if a person did it) who.

    A change with ``registration_measure_id`` is about that one measure (a withdrawal of it);
    ``from_status`` is then where the measure was and ``to_status`` where it went, and the
    registration's own status is not moved by it.
    """

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[RegistrationStatus | None] = mapped_column(
        enum_type(RegistrationStatus, name="from_status")
    )
    to_status: Mapped[RegistrationStatus] = mapped_column(
        enum_type(RegistrationStatus, name="to_status")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    registration_measure_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration_measures.id", ondelete="SET NULL")
    )

    registration_measure: Mapped[RegistrationMeasure | None] = relationship()


class RegistrationNote(db.Model):  # type: ignore[name-defined]
    """A staff note on a registration (a phone call, a special situation)."""

    __tablename__ = "registration_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    author: Mapped[User | None] = relationship()
