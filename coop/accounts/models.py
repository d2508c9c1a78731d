"""Organisations (energy desks, cooperatives), users and their single-use login links."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.core.db import UTCDateTime, enum_type
from coop.core.time import utcnow
from coop.extensions import db


class OrganisationKind(enum.StrEnum):
    MUNICIPALITY = "municipality"  # a municipality's energieloket (energy desk)
    COOPERATIVE = "cooperative"  # a residents' energy cooperative


class Organisation(db.Model):  # type: ignore[name-defined]
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrganisationKind] = mapped_column(enum_type(OrganisationKind))
    municipality: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    # Street and town filled in from the BAG (PDOK) after postcode and house number on this
    # desk's forms; the desk can switch it off (coop.core.address_lookup).
    address_lookup: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Role(enum.StrEnum):
    RESIDENT = "resident"
    STAFF = "staff"
    INSTALLER = "installer"


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """Anyone who logs in. Residents have no password: they log in by a link sent by email."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(30))
    role: Mapped[Role] = mapped_column(enum_type(Role), default=Role.RESIDENT)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    installer_id: Mapped[int | None] = mapped_column(
        ForeignKey("installers.id", ondelete="RESTRICT"), index=True
    )
    is_active_account: Mapped[bool] = mapped_column(default=True)
    # A desk admin invites staff and reads the audit log of the organisation.
    is_desk_admin: Mapped[bool] = mapped_column(default=False)
    # TOTP two-factor login for staff and installers (optional; on once confirmed).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The time step of the last code accepted: a code works once, even within its 30 seconds.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Non-transactional mail (segment updates) stops once someone unsubscribes.
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Every session carries the epoch it was started in; raising it (logout, a new password,
    # two-factor login switched, the account deactivated) ends all of them at once, also a
    # session cookie someone copied.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    organisation: Mapped[Organisation | None] = relationship()
    # The installer company (``coop.installers.models.Installer``), named rather than imported:
    # installers build on accounts.
    installer: Mapped[Any] = relationship("Installer")

    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint(
            "(role = 'staff' AND organisation_id IS NOT NULL) OR role != 'staff'",
            name="staff_has_organisation",
        ),
        CheckConstraint(
            "(role = 'installer' AND installer_id IS NOT NULL) OR role != 'installer'",
            name="installer_user_has_installer",
        ),
    )

    @property
    def is_active(self) -> bool:  # Flask-Login asks this before logging someone in
        return self.is_active_account

    @property
    def is_resident(self) -> bool:
        return self.role is Role.RESIDENT

    @property
    def is_staff(self) -> bool:
        return self.role is Role.STAFF

    @property
    def is_installer(self) -> bool:
        return self.role is Role.INSTALLER


class LoginPurpose(enum.StrEnum):
    LOGIN = "login"
    CONFIRM_REGISTRATION = "confirm_registration"
    INVITE = "invite"  # a staff or installer user sets their password


class LoginToken(db.Model):  # type: ignore[name-defined]
    """A single-use, expiring login link. The link itself is signed (see core.tokens); this row
    records when it expires and whether it was used, so it works once."""

    __tablename__ = "login_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[LoginPurpose] = mapped_column(enum_type(LoginPurpose))
    nonce: Mapped[str] = mapped_column(String(64))
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE")
    )
    next_path: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class LoginLinkRequest(db.Model):  # type: ignore[name-defined]
    """Someone asked for a login link for this address; a job finds out whether a resident has
    it and sends the link. The form does the same work for every address (this row and its job),
    so its answer time says nothing about who is registered. The job deletes the row."""

    __tablename__ = "login_link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    next_path: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
