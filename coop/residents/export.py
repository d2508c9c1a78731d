"""The resident's own data export (the GDPR right of access), in two forms in one zip file: the
machine-readable JSON of ``services.export_resident_data`` and, next to it, a readable document
in the resident's language that words the same data with labels and readable values
("Teruggetrokken", "Rijtjeshuis", "13 januari 2027, 10:05") instead of internal codes.

The readable document is made from the JSON's own data, so both always hold the same facts.
Every key and every code has a label here; tests/registrations/test_export.py fails when a new
field or code would reach the reader as it is.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from coop.accounts.models import User
from coop.actions.models import Action, Measure, MeasureUnit
from coop.core.formatting import local_date, local_datetime
from coop.core.models import EmailStatus
from coop.core.web import localized
from coop.extensions import db
from coop.participation.models import AmbassadorStatus, RsvpStatus
from coop.registrations.desk_services import DWELLING_LABELS, OWNERSHIP_LABELS, STATUS_LABELS
from coop.registrations.models import DwellingType, Ownership, RegistrationStatus
from coop.residents import services

JSON_NAME = "coop-my-data.json"
READABLE_NAME = "coop-my-data.html"

# The label of every key of the export, in the reader's words.
FIELD_LABELS: dict[str, Any] = {
    "account": _l("Your account"),
    "email": _l("Email address"),
    "name": _l("Name"),
    "phone": _l("Phone number"),
    "language": _l("Language"),
    "created_at": _l("Created on"),
    "last_login_at": _l("Last logged in"),
    "registrations": _l("Your registrations"),
    "id": _l("Number"),
    "action": _l("Action"),
    "status": _l("Status"),
    "consent_at": _l("Consent given on"),
    "consent_version": _l("Version of the privacy statement you agreed to"),
    "withdrawal_reason": _l("Reason for withdrawing"),
    "address": _l("Address"),
    "street": _l("Street"),
    "house_number": _l("House number"),
    "addition": _l("Addition"),
    "postcode": _l("Postcode"),
    "city": _l("City"),
    "dwelling": _l("Your home"),
    "type": _l("Type of home"),
    "build_year": _l("Year of construction"),
    "ownership": _l("You are"),
    "energy_label": _l("Energy label"),
    "measures": _l("Measures"),
    "measure": _l("Measure"),
    "quantity": _l("Quantity"),
    "unit": _l("Unit"),
    "withdrawn_at": _l("Withdrawn on"),
    "history": _l("History"),
    "from": _l("Previous status"),
    "to": _l("New status"),
    "at": _l("When"),
    "note": _l("Note"),
    "participation": _l("Taking part in your neighbourhood"),
    "meeting_rsvps": _l("Meetings you signed up for"),
    "meeting": _l("Meeting"),
    "starts_at": _l("Starts"),
    "ends_at": _l("Ends"),
    "location": _l("Location"),
    "on_waiting_list": _l("On the waiting list"),
    "signed_up_at": _l("Signed up on"),
    "promoted_at": _l("Got a place on"),
    "cancelled_at": _l("Cancelled on"),
    "attended": _l("Attended"),
    "survey_responses": _l("Surveys you answered"),
    "survey": _l("Survey"),
    "contact_opt_in": _l("May be contacted"),
    "submitted_at": _l("Sent on"),
    "updated_at": _l("Changed on"),
    "answers": _l("Answers"),
    "question": _l("Question"),
    "answer": _l("Answer"),
    "interest_pledges": _l("Interest you showed"),
    "campaign": _l("Campaign"),
    "pledged_at": _l("Shown on"),
    "withdrawn": _l("Withdrawn"),
    "ambassador_roles": _l("Ambassador roles"),
    "neighbourhood": _l("Neighbourhood"),
    "pc4": _l("Postcode area"),
    "motivation": _l("Motivation"),
    "volunteered_at": _l("Volunteered on"),
    "approved_at": _l("Approved on"),
    "contacts_logged": _l("Contacts you logged"),
    "contacts_about_you": _l("Contacts an ambassador logged about you"),
    "contacted_on": _l("Contacted on"),
    "household": _l("Household"),
    "logged_at": _l("Logged on"),
    "emails": _l("Emails we sent you"),
    "subject": _l("Subject"),
    "sent_at": _l("Sent on"),
    "exported_at": _l("Exported on"),
}

RSVP_LABELS = {
    RsvpStatus.CONFIRMED: _l("You have a place"),
    RsvpStatus.WAITING: _l("On the waiting list"),
    RsvpStatus.CANCELLED: _l("Cancelled"),
}
AMBASSADOR_LABELS = {
    AmbassadorStatus.VOLUNTEERED: _l("Volunteered, waiting for the energy desk"),
    AmbassadorStatus.ACTIVE: _l("Active"),
    AmbassadorStatus.STOPPED: _l("Stopped"),
}
EMAIL_STATUS_LABELS = {
    EmailStatus.SENDING: _l("Being sent"),
    EmailStatus.SENT: _l("Sent"),
    EmailStatus.FAILED: _l("Could not be delivered"),
}
UNIT_LABELS = {MeasureUnit.SQUARE_METRE: _l("m²"), MeasureUnit.PIECE: _l("pieces")}
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}

# Codes per (the list or block they are in, key): the enum they come from and its labels.
_CODES: dict[tuple[str, str], tuple[type, Mapping[Any, Any]]] = {
    ("registrations", "status"): (RegistrationStatus, STATUS_LABELS),
    ("history", "from"): (RegistrationStatus, STATUS_LABELS),
    ("history", "to"): (RegistrationStatus, STATUS_LABELS),
    ("dwelling", "type"): (DwellingType, DWELLING_LABELS),
    ("dwelling", "ownership"): (Ownership, OWNERSHIP_LABELS),
    ("survey_responses", "ownership"): (Ownership, OWNERSHIP_LABELS),
    ("measures", "unit"): (MeasureUnit, UNIT_LABELS),
    ("meeting_rsvps", "status"): (RsvpStatus, RSVP_LABELS),
    ("ambassador_roles", "status"): (AmbassadorStatus, AMBASSADOR_LABELS),
    ("emails", "status"): (EmailStatus, EMAIL_STATUS_LABELS),
}


@dataclass
class Row:
    label: str
    value: str | None = None
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Block:
    title: str
    rows: list[Row] = field(default_factory=list)
    note: str | None = None  # "Nothing" for an empty list


def export_zip(user: User) -> bytes:
    """The zip file the resident downloads: the JSON and the readable document."""
    data = services.export_resident_data(user)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(JSON_NAME, json.dumps(data, ensure_ascii=False, indent=2))
        archive.writestr(READABLE_NAME, readable_document(data))
    return buffer.getvalue()


def readable_document(data: dict[str, Any]) -> str:
    """The export as a standalone HTML document in the current language."""
    names = _Names()
    blocks = [
        _block(_label(key), key, value, names)
        for key, value in data.items()
        if key != "exported_at"
    ]
    return render_template(
        "registrations/export.html",
        blocks=blocks,
        exported_at=_datetime(data.get("exported_at")),
        json_name=JSON_NAME,
    )


class _Names:
    """Measures and actions by the code the JSON gives, named in the reader's language."""

    def __init__(self) -> None:
        self._measures: dict[str, str] | None = None
        self._actions: dict[str, str] = {}

    def measure(self, code: str) -> str:
        if self._measures is None:
            self._measures = {
                m.code: localized(m, "name") for m in db.session.scalars(select(Measure))
            }
        return self._measures.get(code, code)

    def action(self, slug: str) -> str:
        if slug not in self._actions:
            action = db.session.scalar(select(Action).where(Action.slug == slug))
            self._actions[slug] = localized(action, "title") if action is not None else slug
        return self._actions[slug]


def _block(title: str, kind: str, value: Any, names: _Names) -> Block:
    block = Block(title)
    if isinstance(value, list):
        if not value:
            block.note = gettext("Nothing")
        for number, item in enumerate(value, start=1):
            block.rows.append(Row("", blocks=[_block(f"{number}.", kind, item, names)]))
        return block
    for key, item in value.items():
        label = _label(key)
        if isinstance(item, dict) or (
            isinstance(item, list) and item and isinstance(item[0], dict)
        ):
            block.rows.append(Row(label, blocks=[_block(label, key, item, names)]))
        else:
            block.rows.append(Row(label, _value(kind, key, item, names)))
    return block


def _label(key: str) -> str:
    # A key without a label shows as it is rather than failing the download; the tests over
    # the export's data (registrations and participation) catch it before it ships.
    return str(FIELD_LABELS.get(key, key))


def _value(kind: str, key: str, value: Any, names: _Names) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list) and not value:
        return str(gettext("Nothing"))
    if isinstance(value, bool):
        return str(gettext("Yes") if value else gettext("No"))
    if (kind, key) in _CODES:
        enum, labels = _CODES[kind, key]
        return str(labels.get(enum(value), value))
    if isinstance(value, list):
        return ", ".join(_value(kind, key, item, names) for item in value)
    if key == "measure":
        return names.measure(value)
    if key == "action":
        return names.action(value)
    if key == "language":
        return str(LANGUAGE_NAMES.get(value, value))
    if key.endswith("_at") or key in ("at", "starts_at", "ends_at"):
        return _datetime(value)
    if key.endswith("_on"):
        return local_date(date.fromisoformat(value))
    return str(value)


def _datetime(value: str | None) -> str:
    return local_datetime(datetime.fromisoformat(value), "long") if value else "—"
