"""Forms of the staff's registration pages: the list's filters, a note, registering on behalf,
withdrawing measures on a resident's behalf."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    Form,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from coop.actions.models import Action, Measure
from coop.core.forms import (
    addition_field,
    city_field,
    house_number_field,
    postcode_field,
    street_field,
    strip,
)
from coop.core.web import localized
from coop.registrations.desk_services import (
    NOTE_MAX_LENGTH,
    OWNERSHIP_LABELS,
    STATUS_LABELS,
    RegistrationQuery,
)
from coop.registrations.forms import (
    RegistrationForm,
    _with_measures,
    build_year_field,
    dwelling_type_field,
    email_field,
    energy_label_field,
    name_field,
    ownership_field,
    phone_field,
)
from coop.registrations.models import Ownership, RegistrationStatus

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

SORT_CHOICES = [
    SelectChoice("created", _l("Date of registration")),
    SelectChoice("name", _l("Name")),
    SelectChoice("postcode", _l("Postcode")),
    SelectChoice("status", _l("Status")),
]
DIRECTION_CHOICES = [
    SelectChoice("desc", _l("Descending (newest, Z-A, last step first)")),
    SelectChoice("asc", _l("Ascending (oldest, A-Z, first step first)")),
]


class NoControlCharacters:
    def __call__(self, form: Form, field: Field) -> None:
        if field.data and _CONTROL.search(field.data):
            raise ValidationError(_l("Remove the invisible control characters."))


class RegistrationFilterForm(FlaskForm):
    """Read from the query string (GET): bookmarkable, and works without JavaScript."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Search"),
        description=_l("Name, email address, street or postcode."),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=100, message=_l("Use at most 100 characters.")),
            NoControlCharacters(),
        ],
    )
    # Defaults for a parameter that is absent (a first visit): "all", never "not a valid choice".
    action = SelectField(_l("Action"), choices=[], default="")
    measure = SelectField(_l("Measure"), choices=[], default="")
    status = SelectField(
        _l("Status"),
        choices=[SelectChoice("", _l("All statuses"))]
        + [SelectChoice(s.value, label) for s, label in STATUS_LABELS.items()],
        default="",
    )
    pc4 = StringField(
        _l("Postcode area (4 digits)"),
        filters=[strip],
        validators=[
            Optional(),
            Regexp(r"^[1-9][0-9]{3}$", message=_l("Enter four digits, like 3524.")),
        ],
    )
    ownership = SelectField(
        _l("Ownership"),
        choices=[SelectChoice("", _l("Owners and tenants"))]
        + [SelectChoice(o.value, label) for o, label in OWNERSHIP_LABELS.items()],
        default="",
    )
    sort = SelectField(_l("Sort by"), choices=SORT_CHOICES, default="created")
    direction = SelectField(_l("Order"), choices=DIRECTION_CHOICES, default="desc")

    def set_choices(self, actions: list[Action], measures: list[Measure]) -> None:
        self.action.choices = [SelectChoice("", _l("All actions"))] + [
            SelectChoice(str(a.id), localized(a, "title")) for a in actions
        ]
        self.measure.choices = [SelectChoice("", _l("All measures"))] + [
            SelectChoice(str(m.id), localized(m, "name")) for m in measures
        ]

    def to_query(self, page_arg: str | None) -> RegistrationQuery:
        """The valid parts of the filter; a field with an error is left out (and shown)."""
        self.validate()

        def ok(field: Field) -> bool:
            return not field.errors and bool(field.data)

        try:
            page = int(page_arg or "1")
        except ValueError:
            page = 1
        return RegistrationQuery(
            q=self.q.data if ok(self.q) else "",
            action_id=int(self.action.data) if ok(self.action) else None,
            measure_id=int(self.measure.data) if ok(self.measure) else None,
            status=RegistrationStatus(self.status.data) if ok(self.status) else None,
            pc4=self.pc4.data if ok(self.pc4) else None,
            ownership=Ownership(self.ownership.data) if ok(self.ownership) else None,
            sort=self.sort.data if ok(self.sort) else "created",
            descending=not (ok(self.direction) and self.direction.data == "asc"),
            page=max(1, min(page, 1_000_000)),
        )


class DeskWithdrawForm(FlaskForm):
    """Staff withdraw measures when the resident asks them to (by phone, at the desk); the same
    rules as on the resident's own page apply."""

    measures = SelectMultipleField(
        _l("Measures to withdraw"), coerce=str, choices=[], validate_choice=False
    )
    reason = TextAreaField(
        _l("The resident's reason"),
        description=_l("The resident gets an email with it."),
        filters=[strip],
        validators=[
            DataRequired(_l("Write down the resident's reason.")),
            Length(max=1000, message=_l("Use at most 1000 characters.")),
            NoControlCharacters(),
        ],
    )


class NoteForm(FlaskForm):
    body = TextAreaField(
        _l("Add a note"),
        description=_l(
            "For example what was agreed on the phone. Colleagues of your organisation see it; the resident does not."
        ),
        filters=[strip],
        validators=[
            DataRequired(_l("Write the note first.")),
            Length(
                max=NOTE_MAX_LENGTH,
                message=_l("Use at most %(max)s characters.", max=NOTE_MAX_LENGTH),
            ),
            NoControlCharacters(),
        ],
    )


class OnBehalfForm(RegistrationForm):
    """The resident's sign-up form, filled in by staff during a call or a visit: the same
    fields, worded for staff about the resident ("the resident's name", not "your name").
    Every field is made again here, in the order of the resident's form, so the error summary
    lists them in the same order."""

    for_staff = True

    name = name_field(staff=True)
    phone = phone_field(staff=True)
    dwelling_type = dwelling_type_field(staff=True)
    build_year = build_year_field(staff=True)
    ownership = ownership_field(staff=True)
    energy_label = energy_label_field(staff=True)
    email = email_field(staff=True)
    postcode = postcode_field(staff=True)
    house_number = house_number_field(staff=True)
    house_number_addition = addition_field()
    street = street_field(staff=True)
    city = city_field(staff=True)
    consent = BooleanField(
        _l(
            "The resident agreed, by phone or in person, that the energy desk and the selected installers use these details for this collective action."
        ),
        validators=[
            DataRequired(
                _l("Only register someone who agreed to the use of their details; tick to confirm.")
            )
        ],
    )
    language = SelectField(
        _l("Language of the emails to the resident"),
        choices=[SelectChoice("nl", "Nederlands"), SelectChoice("en", "English")],
        default="nl",
    )


def on_behalf_form_for(action: Action, **kwargs: Any) -> OnBehalfForm:
    form = _with_measures(OnBehalfForm, action)(**kwargs)
    assert isinstance(form, OnBehalfForm)
    return form
