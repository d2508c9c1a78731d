"""Installers: companies with the measures they offer, where, at what price and capacity."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import Organisation
from coop.actions.models import Measure
from coop.core.db import UTCDateTime
from coop.core.time import utcnow
from coop.extensions import db


class Installer(db.Model):  # type: ignore[name-defined]
    __tablename__ = "installers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The desk that registered the installer; only its staff see it.
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    company_name: Mapped[str] = mapped_column(String(200))
    kvk_number: Mapped[str] = mapped_column(String(8))  # Chamber of Commerce number
    contact_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    # Quality marks, comma separated (e.g. "VCA,InstallQ,Erkend ISSO").
    certifications: Mapped[str] = mapped_column(String(500), default="")
    city: Mapped[str] = mapped_column(String(80))
    # Served PC4 areas as ranges, comma separated: "3500-3599,3811".
    service_area: Mapped[str] = mapped_column(String(1000), default="")
    # The secret in the address of the company's calendar feed (calendar apps cannot log in);
    # a new one ends the old address.
    calendar_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    offers: Mapped[list[InstallerOffer]] = relationship(cascade="all, delete-orphan")

    __table_args__ = (UniqueConstraint("organisation_id", "kvk_number"),)


class InstallerOffer(db.Model):  # type: ignore[name-defined]
    """A measure an installer offers, its unit price and weekly capacity in homes."""

    __tablename__ = "installer_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id", ondelete="CASCADE"))
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id", ondelete="RESTRICT"))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    homes_per_week: Mapped[int] = mapped_column(Integer)

    measure: Mapped[Measure] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("installer_id", "measure_id"),
        CheckConstraint("unit_price_cents > 0", name="price_positive"),
        CheckConstraint("homes_per_week > 0", name="capacity_positive"),
    )
