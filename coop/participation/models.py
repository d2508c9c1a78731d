"""Participation: meetings and their RSVPs, surveys, heat-network interest campaigns, neighbour
ambassadors and the neighbourhood's Wijkkompas profile.

A household is identified by its address (postcode, house number, addition), as in
``registrations``; "one response per household" and "interest once per household" are unique
constraints on that address, so even two requests at the same moment cannot store two.
"""

from __future__ import annotations

import enum
import math
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.accounts.models import User
from coop.actions.models import Neighbourhood
from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.models import Ownership

# --- meetings --------------------------------------------------------------------------------


class MeetingKind(enum.StrEnum):
    INFORMATION_EVENING = "information_evening"
    STREET_MEETING = "street_meeting"
    ONLINE = "online"


class MeetingLanguage(enum.StrEnum):
    DUTCH = "nl"
    ENGLISH = "en"
    BOTH = "nl_en"


class Meeting(db.Model):  # type: ignore[name-defined]
    """An information evening, a street meeting or an online session residents can come to."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    neighbourhood_id: Mapped[int | None] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[MeetingKind] = mapped_column(enum_type(MeetingKind))
    title_nl: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    description_nl: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    # A place for meetings in person, a link for online sessions (one of them at least).
    location: Mapped[str] = mapped_column(String(300), default="")
    online_url: Mapped[str] = mapped_column(String(500), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    language: Mapped[MeetingLanguage] = mapped_column(enum_type(MeetingLanguage))
    follow_up_subject: Mapped[str | None] = mapped_column(String(200))
    follow_up_body: Mapped[str | None] = mapped_column(Text)
    follow_up_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The iCalendar SEQUENCE (RFC 5545): raised with every change people are emailed about
    # (time, place, cancellation), so calendars replace the event they imported before.
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set once when staff cancel it; the RSVPs stay as they were, for the record.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    neighbourhood: Mapped[Neighbourhood | None] = relationship()
    rsvps: Mapped[list[Rsvp]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="Rsvp.queued_at, Rsvp.id"
    )

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="meeting_order"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
    )

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class RsvpStatus(enum.StrEnum):
    CONFIRMED = "confirmed"  # has a place
    WAITING = "waiting"  # on the waiting list, in order of ``queued_at``
    CANCELLED = "cancelled"


class Rsvp(db.Model):  # type: ignore[name-defined]
    """Someone coming to a meeting, by name and email; no account needed.

    Name and email of people without an account are erased some weeks after the meeting
    (``erased_at``); the row stays so that attendance figures do not change.
    """

    __tablename__ = "meeting_rsvps"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    language: Mapped[str] = mapped_column(String(5), default="nl")
    status: Mapped[RsvpStatus] = mapped_column(enum_type(RsvpStatus))
    # The waiting list moves up in this order; a new RSVP after a cancellation queues anew.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # How many times this person signed up (again): part of the emails' dedup keys.
    round: Mapped[int] = mapped_column(Integer, default=1)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attended: Mapped[bool | None] = mapped_column(Boolean)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="rsvps")

    __table_args__ = (
        # One RSVP per person per meeting; erased rows have no email and do not collide.
        UniqueConstraint("meeting_id", "email"),
        Index("ix_meeting_rsvps_meeting_status", "meeting_id", "status"),
    )


# --- surveys ---------------------------------------------------------------------------------


class SurveyStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class QuestionKind(enum.StrEnum):
    SINGLE = "single"  # one option
    MULTIPLE = "multiple"  # any number of options
    SCALE = "scale"  # 1 to 5
    OPEN = "open"  # free text


SCALE_VALUES = (1, 2, 3, 4, 5)


class Survey(db.Model):  # type: ignore[name-defined]
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="RESTRICT"), index=True
    )
    title_nl: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    intro_nl: Mapped[str] = mapped_column(Text, default="")
    intro_en: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[SurveyStatus] = mapped_column(
        enum_type(SurveyStatus), default=SurveyStatus.DRAFT
    )
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    neighbourhood: Mapped[Neighbourhood] = relationship()
    questions: Mapped[list[SurveyQuestion]] = relationship(
        back_populates="survey",
        cascade="all, delete-orphan",
        order_by="SurveyQuestion.position, SurveyQuestion.id",
    )


class SurveyQuestion(db.Model):  # type: ignore[name-defined]
    __tablename__ = "survey_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[QuestionKind] = mapped_column(enum_type(QuestionKind))
    text_nl: Mapped[str] = mapped_column(String(500))
    text_en: Mapped[str] = mapped_column(String(500), default="")
    required: Mapped[bool] = mapped_column(Boolean, default=True)

    survey: Mapped[Survey] = relationship(back_populates="questions")
    options: Mapped[list[SurveyOption]] = relationship(
        cascade="all, delete-orphan", order_by="SurveyOption.position, SurveyOption.id"
    )


class SurveyOption(db.Model):  # type: ignore[name-defined]
    __tablename__ = "survey_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    text_nl: Mapped[str] = mapped_column(String(200))
    text_en: Mapped[str] = mapped_column(String(200), default="")


class SurveyResponse(db.Model):  # type: ignore[name-defined]
    """One household's answers; the address makes it one per household."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    postcode: Mapped[str] = mapped_column(String(7))
    pc4: Mapped[str] = mapped_column(String(4))
    house_number: Mapped[int] = mapped_column(Integer)
    house_number_addition: Mapped[str] = mapped_column(String(10), default="")
    street: Mapped[str] = mapped_column(String(120))
    ownership: Mapped[Ownership] = mapped_column(enum_type(Ownership))
    name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    # A neighbour ambassador of this street may get in touch (asked and recorded apart).
    contact_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    survey: Mapped[Survey] = relationship()
    answers: Mapped[list[SurveyAnswer]] = relationship(
        cascade="all, delete-orphan", back_populates="response"
    )

    __table_args__ = (
        UniqueConstraint("survey_id", "postcode", "house_number", "house_number_addition"),
        Index("ix_survey_responses_street", "pc4", "street"),
    )


class SurveyAnswer(db.Model):  # type: ignore[name-defined]
    """One answer: a chosen option (one row per option for multiple choice), a scale value or
    a text."""

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_responses.id", ondelete="CASCADE"), index=True
    )
    question_id: Mapped[int] = mapped_column(
        ForeignKey("survey_questions.id", ondelete="CASCADE"), index=True
    )
    option_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_options.id", ondelete="CASCADE")
    )
    scale_value: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")

    __table_args__ = (
        CheckConstraint(
            "scale_value IS NULL OR scale_value BETWEEN 1 AND 5", name="scale_value_range"
        ),
    )


# --- heat-network interest -------------------------------------------------------------------


class InterestCampaign(db.Model):  # type: ignore[name-defined]
    """Non-binding interest in a collective heat network, towards a threshold of households."""

    __tablename__ = "interest_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="RESTRICT"), index=True
    )
    title_nl: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    description_nl: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    # The households the threshold is a share of, fixed when the campaign is made.
    household_count: Mapped[int] = mapped_column(Integer)
    threshold_percent: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once, by the pledge that reached the threshold; its notifications go with it.
    threshold_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    neighbourhood: Mapped[Neighbourhood] = relationship()

    __table_args__ = (
        CheckConstraint("household_count > 0", name="household_count_positive"),
        CheckConstraint("threshold_percent BETWEEN 1 AND 100", name="threshold_percent_range"),
    )

    @property
    def threshold_households(self) -> int:
        """How many households are needed: the percentage, rounded up to whole households."""
        return max(1, math.ceil(self.household_count * self.threshold_percent / 100))

    def is_open(self, now: datetime) -> bool:
        return now < self.deadline_at


class InterestPledge(db.Model):  # type: ignore[name-defined]
    """One household's non-binding interest; withdrawn at any time (the row stays, marked)."""

    __tablename__ = "interest_pledges"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("interest_campaigns.id", ondelete="CASCADE")
    )
    postcode: Mapped[str] = mapped_column(String(7))
    pc4: Mapped[str] = mapped_column(String(4))
    house_number: Mapped[int] = mapped_column(Integer)
    house_number_addition: Mapped[str] = mapped_column(String(10), default="")
    street: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    contact_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    round: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    campaign: Mapped[InterestCampaign] = relationship()

    __table_args__ = (
        UniqueConstraint("campaign_id", "postcode", "house_number", "house_number_addition"),
        Index("ix_interest_pledges_street", "pc4", "street"),
    )


# --- neighbour ambassadors -------------------------------------------------------------------


class AmbassadorStatus(enum.StrEnum):
    VOLUNTEERED = "volunteered"  # waiting for the desk to agree
    ACTIVE = "active"
    STOPPED = "stopped"


class Ambassador(db.Model):  # type: ignore[name-defined]
    """A resident who helps the neighbours in their own street (street name within a PC4)."""

    __tablename__ = "ambassadors"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="CASCADE"), index=True
    )
    street: Mapped[str] = mapped_column(String(120))
    pc4: Mapped[str] = mapped_column(String(4))
    motivation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[AmbassadorStatus] = mapped_column(
        enum_type(AmbassadorStatus), default=AmbassadorStatus.VOLUNTEERED
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    neighbourhood: Mapped[Neighbourhood] = relationship()

    __table_args__ = (UniqueConstraint("user_id", "pc4", "street"),)


class AmbassadorContact(db.Model):  # type: ignore[name-defined]
    """A conversation an ambassador had with a neighbour who opted in to being contacted."""

    __tablename__ = "ambassador_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ambassador_id: Mapped[int] = mapped_column(
        ForeignKey("ambassadors.id", ondelete="CASCADE"), index=True
    )
    postcode: Mapped[str] = mapped_column(String(7))
    house_number: Mapped[int] = mapped_column(Integer)
    house_number_addition: Mapped[str] = mapped_column(String(10), default="")
    contacted_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- the neighbourhood's Wijkkompas profile ---------------------------------------------------


class WijkPhase(enum.StrEnum):
    """The six phases of a neighbourhood approach in the Wijkkompas method."""

    STARTING = "starting"  # samen starten
    EXPLORING = "exploring"  # verkennen
    PLANNING = "planning"  # plan maken
    DECIDING = "deciding"  # besluiten
    PREPARING = "preparing"  # voorbereiden
    REALISATION = "realisation"  # realisatie en nazorg


class Perspective(enum.StrEnum):
    """The six perspectives (sporen) that must all hold."""

    RESIDENTS = "residents"
    BUSINESS_OWNERS = "business_owners"
    DECISION_MAKING = "decision_making"
    AFFORDABLE = "affordable"
    FITTING_OFFER = "fitting_offer"
    RELIABLE_NETWORK = "reliable_network"


class PerspectiveState(enum.StrEnum):
    NOT_STARTED = "not_started"
    ATTENTION = "attention"  # needs attention
    ON_TRACK = "on_track"
    ACHIEVED = "achieved"


class NeighbourhoodProfile(db.Model):  # type: ignore[name-defined]
    """What the public neighbourhood page says about the approach, set by staff."""

    __tablename__ = "neighbourhood_profiles"

    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[WijkPhase] = mapped_column(enum_type(WijkPhase), default=WijkPhase.STARTING)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    intro_nl: Mapped[str] = mapped_column(Text, default="")
    intro_en: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    neighbourhood: Mapped[Neighbourhood] = relationship()
    perspectives: Mapped[list[PerspectiveStatus]] = relationship(
        cascade="all, delete-orphan", order_by="PerspectiveStatus.id"
    )


class PerspectiveStatus(db.Model):  # type: ignore[name-defined]
    __tablename__ = "neighbourhood_perspectives"

    id: Mapped[int] = mapped_column(primary_key=True)
    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhood_profiles.neighbourhood_id", ondelete="CASCADE")
    )
    perspective: Mapped[Perspective] = mapped_column(enum_type(Perspective))
    state: Mapped[PerspectiveState] = mapped_column(
        enum_type(PerspectiveState), default=PerspectiveState.NOT_STARTED
    )
    explanation_nl: Mapped[str] = mapped_column(String(1000), default="")
    explanation_en: Mapped[str] = mapped_column(String(1000), default="")

    __table_args__ = (UniqueConstraint("neighbourhood_id", "perspective"),)


class CountDimension(enum.StrEnum):
    PC4 = "pc4"
    OWNERSHIP = "ownership"


class HouseholdCount(db.Model):  # type: ignore[name-defined]
    """Households in the neighbourhood per PC4 or per ownership type (e.g. from CBS figures),
    the denominators of a survey's response rates."""

    __tablename__ = "neighbourhood_household_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    neighbourhood_id: Mapped[int] = mapped_column(
        ForeignKey("neighbourhoods.id", ondelete="CASCADE")
    )
    dimension: Mapped[CountDimension] = mapped_column(enum_type(CountDimension))
    value: Mapped[str] = mapped_column(String(30))
    households: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("neighbourhood_id", "dimension", "value"),
        CheckConstraint("households >= 0", name="households_not_negative"),
    )
