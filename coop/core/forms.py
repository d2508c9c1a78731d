"""Validators shared by forms of several domains."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import Field, Form, IntegerField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from coop.core.address import normalise_addition, normalise_postcode
from coop.core.formatting import MAX_AMOUNT_CENTS, AmountError, parse_euros

# Letters of any language, spaces, apostrophes, hyphens and dots: enough for every real name,
# and nothing that looks like markup.
_NAME = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '’.\-])*$")
_PLAIN_TEXT = re.compile(r"^[^<>{}\\]*$")
# Control characters other than tab and line breaks: invisible, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{6,20}$")


class PersonName:
    def __call__(self, form: Form, field: Field) -> None:
        value = (field.data or "").strip()
        if value and not _NAME.match(value):
            raise ValidationError(
                _l("Use letters only, with spaces, hyphens or apostrophes if needed.")
            )


class PlainText:
    """No angle brackets or braces: such text is never a street, a city or a reason."""

    def __call__(self, form: Form, field: Field) -> None:
        if field.data and not _PLAIN_TEXT.match(field.data):
            raise ValidationError(_l("Remove the characters < > { } and \\."))
        if field.data and _CONTROL.search(field.data):
            raise ValidationError(_l("Remove the invisible control characters."))


class DutchPhone:
    def __call__(self, form: Form, field: Field) -> None:
        if field.data and not _PHONE.match(field.data.strip()):
            raise ValidationError(_l("Enter a phone number of digits, for example 06 12345678."))


class DutchPostcode:
    def __call__(self, form: Form, field: Field) -> None:
        if field.data and normalise_postcode(field.data) is None:
            raise ValidationError(
                _l("Enter a Dutch postcode: four digits and two letters, like 1234 AB.")
            )


class HouseNumberAddition:
    def __call__(self, form: Form, field: Field) -> None:
        if field.data and normalise_addition(field.data) is None:
            raise ValidationError(_l("An addition is at most 6 letters or digits, like A or 2."))


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class EuroField(StringField):
    """An amount in euros as people type it; ``cents`` holds it once the form validated."""

    cents: int | None = None

    def __init__(self, *args: Any, allow_zero: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("filters", [strip])
        super().__init__(*args, **kwargs)
        self.allow_zero = allow_zero

    def pre_validate(self, form: Form) -> None:
        self.cents = None
        if not (self.data or "").strip():
            return
        try:
            cents = parse_euros(self.data)
        except AmountError as exc:
            if str(exc) == "negative":
                raise ValidationError(_l("An amount cannot be negative.")) from None
            raise ValidationError(_l("Enter an amount in euros, like 12,50 or 1.234,50.")) from None
        if cents == 0 and not self.allow_zero:
            raise ValidationError(_l("Enter an amount above € 0."))
        if cents > MAX_AMOUNT_CENTS:
            raise ValidationError(_l("Enter an amount of at most € 1.000.000."))
        self.cents = cents


# --- a Dutch address, as the sign-up, survey and interest forms ask it -------------------------
# Functions rather than a base class: a field's place in the form (and in its error summary) is
# the order in which it is made, so each form makes them where it lists them.


def postcode_field() -> StringField:
    return StringField(
        _l("Postcode"),
        description=_l("For example 3521 AB."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your postcode.")),
            Length(
                max=10,
                message=_l("Enter a Dutch postcode: four digits and two letters, like 1234 AB."),
            ),
            DutchPostcode(),
        ],
    )


def house_number_field() -> IntegerField:
    return IntegerField(
        _l("House number"),
        validators=[
            InputRequired(_l("Enter your house number.")),
            NumberRange(min=1, max=99999, message=_l("Enter a house number from 1 to 99999.")),
        ],
    )


def addition_field() -> StringField:
    return StringField(
        _l("Addition (optional)"),
        description=_l("For example A or 2."),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=10, message=_l("An addition is at most 6 letters or digits, like A or 2.")),
            HouseNumberAddition(),
        ],
    )


def street_field() -> StringField:
    return StringField(
        _l("Street"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your street.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PlainText(),
        ],
    )
