"""Tender rounds: invited installers bid a unit price and a capacity per measure of an action.

Bids are sealed until the round's deadline: an installer sees and revises only its own bid, and
staff see the prices side by side only once the deadline has passed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import User
from coop.actions.models import Action, ActionMeasure
from coop.core.db import UTCDateTime
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer


class TenderRound(db.Model):  # type: ignore[name-defined]
    """One round of bidding for an action, opened by staff once registration has closed."""

    __tablename__ = "tender_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    # What staff tell the invited installers: planning, conditions, who to ask.
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why staff cancelled the round; the invited installers read it in their email.
    cancel_message: Mapped[str | None] = mapped_column(Text)
    # Set once, by whoever first starts matching after the deadline (the scheduler or staff).
    matching_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    action: Mapped[Action] = relationship()
    opened_by: Mapped[User | None] = relationship()
    invitations: Mapped[list[TenderInvitation]] = relationship(
        back_populates="round", cascade="all, delete-orphan", order_by="TenderInvitation.id"
    )

    def sealed(self, now: datetime) -> bool:
        """Before the deadline nobody but the bidder sees a bid."""
        return now < self.deadline

    @property
    def active(self) -> bool:
        return self.cancelled_at is None


class TenderInvitation(db.Model):  # type: ignore[name-defined]
    """An installer invited to a round, with its bid once submitted (``submitted_at``)."""

    __tablename__ = "tender_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("tender_rounds.id", ondelete="CASCADE"))
    installer_id: Mapped[int] = mapped_column(
        ForeignKey("installers.id", ondelete="RESTRICT"), index=True
    )
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # How often the bid was saved: staff see that a bid was revised, not what it was before.
    revisions: Mapped[int] = mapped_column(Integer, default=0)

    round: Mapped[TenderRound] = relationship(back_populates="invitations")
    installer: Mapped[Installer] = relationship()
    lines: Mapped[list[BidLine]] = relationship(
        cascade="all, delete-orphan", order_by="BidLine.action_measure_id"
    )

    __table_args__ = (UniqueConstraint("round_id", "installer_id"),)


class BidLine(db.Model):  # type: ignore[name-defined]
    """The price per unit (m² or piece) and the number of homes an installer commits to."""

    __tablename__ = "bid_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("tender_invitations.id", ondelete="CASCADE")
    )
    action_measure_id: Mapped[int] = mapped_column(
        ForeignKey("action_measures.id", ondelete="CASCADE")
    )
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    capacity_homes: Mapped[int] = mapped_column(Integer)

    action_measure: Mapped[ActionMeasure] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("invitation_id", "action_measure_id"),
        CheckConstraint("unit_price_cents > 0", name="price_positive"),
        CheckConstraint("capacity_homes > 0", name="capacity_positive"),
    )
