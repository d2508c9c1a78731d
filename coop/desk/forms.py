"""Forms of the desk's own pages: composing and sending an update, unsubscribing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from coop.actions.models import Action, Measure
from coop.core.forms import strip
from coop.core.time import AMSTERDAM
from coop.core.web import localized
from coop.registrations.models import RegistrationStatus

# How staff name the statuses (the resident's page words them for the resident).
STATUS_LABELS = {
    RegistrationStatus.PENDING_CONFIRMATION: _l("Registered, not yet confirmed"),
    RegistrationStatus.CONFIRMED: _l("Confirmed"),
    RegistrationStatus.ASSIGNED: _l("Installer assigned"),
    RegistrationStatus.SURVEY_PLANNED: _l("Site survey planned"),
    RegistrationStatus.QUOTED: _l("Quoted"),
    RegistrationStatus.ACCEPTED: _l("Quote accepted"),
    RegistrationStatus.INSTALLED: _l("Installed"),
    RegistrationStatus.COMPLETED: _l("Completed"),
    RegistrationStatus.DECLINED: _l("Quote declined"),
    RegistrationStatus.WITHDRAWN: _l("Withdrawn"),
    RegistrationStatus.EXPIRED: _l("Expired (not confirmed)"),
}
# Ownership and dwelling labels are the registrations list's own (one wording everywhere).

_PC4 = re.compile(r"^[1-9][0-9]{3}$")
# Control characters other than tab and line breaks: invisible, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class NoControlCharacters:
    def __call__(self, form: FlaskForm, field: Any) -> None:
        if field.data and _CONTROL.search(field.data):
            raise ValidationError(_l("Remove the invisible control characters."))


class OneLine:
    def __call__(self, form: FlaskForm, field: Any) -> None:
        if field.data and ("\n" in field.data or "\r" in field.data):
            raise ValidationError(_l("A subject is one line."))


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # not a choice: the select refuses it with its own message


class UpdateForm(FlaskForm):
    action = SelectField(
        _l("Action"), coerce=_int_or_none, validators=[DataRequired(_l("Choose the action."))]
    )
    measure = SelectField(
        _l("Measure"),
        coerce=_int_or_none,
        description=_l("Only residents who chose this measure. Leave on 'all' for everyone."),
    )
    status = SelectField(
        _l("Status"),
        description=_l(
            "Only residents whose registration has this status. 'All' leaves out those who "
            "withdrew, declined or did not confirm in time."
        ),
    )
    pc4 = StringField(
        _l("Postcode area (4 digits)"),
        filters=[strip],
        validators=[Optional(), Length(max=4)],
        description=_l("For example 3521. Leave empty for every postcode of the action."),
    )
    subject_nl = StringField(
        _l("Subject in Dutch"),
        filters=[strip],
        validators=[
            DataRequired(_l("Write a subject.")),
            Length(max=200, message=_l("Keep the subject under 200 characters.")),
            OneLine(),
            NoControlCharacters(),
        ],
    )
    body_nl = TextAreaField(
        _l("Message in Dutch"),
        filters=[strip],
        validators=[
            DataRequired(_l("Write the message.")),
            Length(max=20000, message=_l("Keep the message under 20,000 characters.")),
            NoControlCharacters(),
        ],
        description=_l(
            "Plain text. An empty line starts a new paragraph. The greeting, the desk's "
            "contact details and the unsubscribe link are added for you."
        ),
    )
    subject_en = StringField(
        _l("Subject in English"),
        filters=[strip],
        validators=[
            Length(max=200, message=_l("Keep the subject under 200 characters.")),
            OneLine(),
            NoControlCharacters(),
        ],
        description=_l("Optional. Without it, residents who chose English get the Dutch text."),
    )
    body_en = TextAreaField(
        _l("Message in English"),
        filters=[strip],
        validators=[
            Length(max=20000, message=_l("Keep the message under 20,000 characters.")),
            NoControlCharacters(),
        ],
    )

    def validate_pc4(self, field: StringField) -> None:
        if field.data and not _PC4.match(field.data):
            raise ValidationError(_l("Enter four digits, like 3521."))

    def validate_body_en(self, field: TextAreaField) -> None:
        if bool(field.data) != bool(self.subject_en.data):
            raise ValidationError(
                _l("Write both the English subject and message, or leave both empty.")
            )


def update_form(
    actions: Sequence[Action], measures: Sequence[Measure], **kwargs: Any
) -> UpdateForm:
    form = UpdateForm(**kwargs)
    form.action.choices = [SelectChoice(a.id, localized(a, "title")) for a in actions]
    form.measure.choices = [SelectChoice("", _l("All measures"))] + [
        SelectChoice(m.id, localized(m, "name")) for m in measures
    ]
    form.status.choices = [SelectChoice("", _l("All who take part"))] + [
        SelectChoice(status.value, label) for status, label in STATUS_LABELS.items()
    ]
    return form


class LocalDateField(DateField):
    """A date as the browser's date input sends it, with our own message for nonsense."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_l("Enter the date as year-month-day, like 2027-03-15.")) from exc


class LocalTimeField(TimeField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_l("Enter the time as hours:minutes, like 09:30.")) from exc


class SendForm(FlaskForm):
    when = RadioField(
        _l("When"),
        choices=[
            SelectChoice("now", _l("Send now")),
            SelectChoice("later", _l("Send at a set time")),
        ],
        default="now",
        validators=[DataRequired(_l("Choose when to send."))],
    )
    send_date = LocalDateField(
        _l("Date"),
        validators=[Optional()],
        description=_l("Amsterdam time, for example 2027-03-15."),
        format="%Y-%m-%d",
    )
    send_time = LocalTimeField(
        _l("Time"),
        validators=[Optional()],
        description=_l("For example 09:30."),
        format="%H:%M",
    )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if self.when.data != "later":
            # "Send now" ignores whatever is in the date and time boxes.
            self.send_date.errors = []
            self.send_time.errors = []
            return not any(field.errors for field in self)
        if not self.send_date.errors and not isinstance(self.send_date.data, date):
            self.send_date.errors = [_l("Enter the date as year-month-day, like 2027-03-15.")]
        if not self.send_time.errors and not isinstance(self.send_time.data, time):
            self.send_time.errors = [_l("Enter the time as hours:minutes, like 09:30.")]
        return valid and not self.send_date.errors and not self.send_time.errors

    def send_at(self) -> datetime | None:
        """The moment chosen, Amsterdam time read as an aware datetime (None for "now")."""
        if self.when.data != "later":
            return None
        return datetime.combine(self.send_date.data, self.send_time.data, tzinfo=AMSTERDAM)


class ButtonForm(FlaskForm):
    """A form that is just a button (with the CSRF token)."""


class DeskSettingsForm(FlaskForm):
    """What a desk admin sets for the whole desk."""

    address_lookup = BooleanField(
        _l("Fill in street and town from the address register (BAG) on our forms"),
        description=_l(
            "After postcode and house number, coop asks PDOK (the government's public address "
            "service) for the street and town, so residents and staff need not type them. "
            "Without it, they type them themselves."
        ),
    )
