"""The installer registry of a desk: companies, what they offer where, and their users.

Every change is written with its audit entry in one transaction. Views parse and authorise;
the rules (a KvK number once per desk, a sane service area, offers from the catalogue) are here.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop.accounts import services as accounts
from coop.accounts.models import Role, User
from coop.actions.models import Measure
from coop.core import audit, exports
from coop.core.errors import DomainError
from coop.core.web import localized
from coop.extensions import db
from coop.installers.models import Installer, InstallerOffer

log = logging.getLogger(__name__)

PC4_MIN = 1000
PC4_MAX = 9999
_AREA_PART = re.compile(r"^(\d{4})(?:\s*-\s*(\d{4}))?$")
# Fields an audit entry shows before/after (the id and creation time never change).
AUDITED_FIELDS = (
    "company_name",
    "kvk_number",
    "contact_name",
    "email",
    "phone",
    "certifications",
    "city",
    "service_area",
)


class InstallerError(DomainError):
    """A rule stopped the operation; ``code`` names it and the view shows the message."""


class ServiceAreaError(ValueError):
    """A service area that cannot be read; ``code`` and ``part`` say what and where."""

    def __init__(self, code: str, part: str) -> None:
        super().__init__(f"{code}: {part}")
        self.code = code
        self.part = part


def parse_service_area(text: str) -> list[tuple[int, int]]:
    """``"3500-3599, 3811"`` -> ``[(3500, 3599), (3811, 3811)]``.

    Parts are separated by commas (or semicolons); a part is a PC4 code or a range "low-high".
    Raises ``ServiceAreaError`` naming the first part that is wrong and why.
    """
    ranges: list[tuple[int, int]] = []
    for raw in re.split(r"[,;\n]", text or ""):
        part = raw.strip()
        if not part:
            continue
        match = _AREA_PART.match(part)
        if match is None:
            raise ServiceAreaError("not_pc4", part)
        low = int(match.group(1))
        high = int(match.group(2) or match.group(1))
        if not (PC4_MIN <= low <= PC4_MAX and PC4_MIN <= high <= PC4_MAX):
            raise ServiceAreaError("out_of_range", part)
        if low > high:
            raise ServiceAreaError("reversed", part)
        ranges.append((low, high))
    if not ranges:
        raise ServiceAreaError("empty", "")
    return ranges


def format_service_area(ranges: list[tuple[int, int]]) -> str:
    """The stored form, ``"3500-3599,3811"`` (what ``core.address.pc4_in_ranges`` reads)."""
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def normalise_certifications(text: str) -> str:
    parts = [p.strip() for p in (text or "").split(",")]
    return ",".join(p for p in parts if p)


@dataclass
class OfferInput:
    unit_price_cents: int
    homes_per_week: int


@dataclass
class InstallerInput:
    company_name: str
    kvk_number: str  # exactly 8 digits (the form checks the format)
    contact_name: str
    email: str
    phone: str | None
    certifications: str
    city: str
    service_area: str  # as typed; parsed and normalised here
    # measure_id -> offer; a measure left out is not offered (any earlier offer is removed)
    offers: dict[int, OfferInput] = field(default_factory=dict)


def catalogue() -> list[Measure]:
    return list(db.session.scalars(select(Measure).order_by(Measure.id)))


def installers_of(organisation_id: int) -> list[Installer]:
    return list(
        db.session.scalars(
            select(Installer)
            .where(Installer.organisation_id == organisation_id)
            .options(selectinload(Installer.offers))
            .order_by(func.lower(Installer.company_name), Installer.id)
        )
    )


def get_installer(installer_id: int) -> Installer | None:
    return db.session.scalar(
        select(Installer)
        .where(Installer.id == installer_id)
        .options(selectinload(Installer.offers))
    )


def users_of(installer: Installer) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.installer_id == installer.id, User.role == Role.INSTALLER)
            .order_by(User.name, User.id)
        )
    )


def _offers_snapshot(installer: Installer) -> dict[str, Any]:
    return {
        str(offer.measure_id): {
            "unit_price_cents": offer.unit_price_cents,
            "homes_per_week": offer.homes_per_week,
        }
        for offer in sorted(installer.offers, key=lambda o: o.measure_id)
    }


def _snapshot(installer: Installer) -> dict[str, Any]:
    data = audit.snapshot(installer, AUDITED_FIELDS)
    data["offers"] = _offers_snapshot(installer)
    return data


def _kvk_taken(organisation_id: int, kvk_number: str, except_id: int | None = None) -> bool:
    query = select(Installer.id).where(
        Installer.organisation_id == organisation_id, Installer.kvk_number == kvk_number
    )
    if except_id is not None:
        query = query.where(Installer.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


def _apply(installer: Installer, data: InstallerInput) -> None:
    try:
        ranges = parse_service_area(data.service_area)
    except ServiceAreaError as exc:
        raise InstallerError("bad_service_area") from exc
    known = {m.id for m in catalogue()}
    for measure_id, offer in data.offers.items():
        if measure_id not in known:
            raise InstallerError("unknown_measure")
        if offer.unit_price_cents <= 0:
            raise InstallerError("bad_price")
        if offer.homes_per_week <= 0:
            raise InstallerError("bad_capacity")
    installer.company_name = data.company_name
    installer.kvk_number = data.kvk_number
    installer.contact_name = data.contact_name
    installer.email = data.email.strip().lower()
    installer.phone = data.phone or None
    installer.certifications = normalise_certifications(data.certifications)
    installer.city = data.city
    installer.service_area = format_service_area(ranges)
    current = {offer.measure_id: offer for offer in installer.offers}
    for measure_id, offer in current.items():
        if measure_id not in data.offers:
            installer.offers.remove(offer)
    for measure_id, wanted in sorted(data.offers.items()):
        if measure_id in current:
            current[measure_id].unit_price_cents = wanted.unit_price_cents
            current[measure_id].homes_per_week = wanted.homes_per_week
        else:
            installer.offers.append(
                InstallerOffer(
                    measure_id=measure_id,
                    unit_price_cents=wanted.unit_price_cents,
                    homes_per_week=wanted.homes_per_week,
                )
            )


def _commit_or_kvk_taken() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Two staff saving the same KvK number at the same moment: the unique constraint decides.
        db.session.rollback()
        raise InstallerError("kvk_taken") from None


def create_installer(actor: User, data: InstallerInput) -> Installer:
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    if _kvk_taken(organisation_id, data.kvk_number):
        raise InstallerError("kvk_taken")
    installer = Installer(organisation_id=organisation_id)
    installer.offers = []
    _apply(installer, data)
    db.session.add(installer)
    try:
        db.session.flush()
    except IntegrityError:
        # Another desk member saved the same KvK number a moment ago.
        db.session.rollback()
        raise InstallerError("kvk_taken") from None
    audit.record(actor, organisation_id, "installer.create", installer, after=_snapshot(installer))
    _commit_or_kvk_taken()
    log.info("installer created id=%s organisation=%s", installer.id, organisation_id)
    return installer


def update_installer(actor: User, installer: Installer, data: InstallerInput) -> bool:
    """Save the changes; False when nothing changed (then no audit entry either)."""
    if _kvk_taken(installer.organisation_id, data.kvk_number, except_id=installer.id):
        raise InstallerError("kvk_taken")
    before = _snapshot(installer)
    _apply(installer, data)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise InstallerError("kvk_taken") from None
    old, new = audit.changed(before, _snapshot(installer))
    if not new:
        db.session.rollback()
        return False
    audit.record(
        actor, installer.organisation_id, "installer.update", installer, before=old, after=new
    )
    _commit_or_kvk_taken()
    return True


def invite_user(actor: User, installer: Installer, email: str, name: str) -> User:
    """Invite a person of the company: they get an email to set their password.

    The account rules (one account per email, the invitation link, its audit entry) are the
    accounts domain's; this only ties the new user to the installer.
    """
    return accounts.invite_user(actor, email, name, Role.INSTALLER, installer_id=installer.id)


def export_table(actor: User, fmt: str) -> exports.Table:
    """The desk's installers for a spreadsheet; the export itself is recorded in the audit log."""
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    audit.record(actor, organisation_id, "installer.export", None, after={"format": fmt})
    db.session.commit()
    measures = catalogue()
    headers = [
        gettext("Company name"),
        gettext("KvK number"),
        gettext("Contact person"),
        gettext("Email address"),
        gettext("Phone number"),
        gettext("Town or city"),
        gettext("Certifications"),
        gettext("Service area"),
    ]
    for measure in measures:
        name = localized(measure, "name")
        headers.append(gettext("%(measure)s: price per unit (€)", measure=name))
        headers.append(gettext("%(measure)s: homes per week", measure=name))

    def rows() -> Iterator[list[exports.Cell]]:
        for installer in installers_of(organisation_id):
            offers = {offer.measure_id: offer for offer in installer.offers}
            row: list[exports.Cell] = [
                installer.company_name,
                installer.kvk_number,
                installer.contact_name,
                installer.email,
                installer.phone,
                installer.city,
                installer.certifications.replace(",", ", "),
                installer.service_area.replace(",", ", "),
            ]
            for measure in measures:
                offer = offers.get(measure.id)
                row.append(Decimal(offer.unit_price_cents) / 100 if offer else None)
                row.append(offer.homes_per_week if offer else None)
            yield row

    return exports.Table(title=gettext("Installers"), headers=headers, rows=rows())


# --- the calendar feed's secret address --------------------------------------------------------

CALENDAR_KEY_BYTES = 32
_CALENDAR_KEY = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def renew_calendar_key(actor: User, installer: Installer) -> str:
    """A new secret for the company's calendar feed; the old address stops working at once."""
    if actor.role is not Role.INSTALLER or actor.installer_id != installer.id:
        raise InstallerError("not_yours")
    installer.calendar_key = secrets.token_urlsafe(CALENDAR_KEY_BYTES)
    db.session.commit()
    log.info("calendar feed address renewed installer=%s by=%s", installer.id, actor.id)
    return installer.calendar_key


def installer_by_calendar_key(key: str) -> Installer | None:
    """The installer whose feed this is; None for anything that is not a current key."""
    if not _CALENDAR_KEY.match(key or ""):
        return None
    return db.session.scalar(select(Installer).where(Installer.calendar_key == key))
