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
from wtforms.widgets import TextInput

from coop.core import address_lookup
from coop.core.address import (
    HOUSE_NUMBER_MAX,
    HOUSE_NUMBER_MIN,
    HouseNumberError,
    normalise_addition,
    normalise_postcode,
    split_house_number,
)
from coop.core.formatting import MAX_AMOUNT_CENTS, AmountError, parse_euros
from coop.core.numbers import NumberError, parse_decimal, whole

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


# --- numbers as people type them ------------------------------------------------------------
# WTForms' IntegerField says "Not a valid integer value." (in Dutch "Ongeldig getal.") to "12a"
# or "12,5": these fields read what people write and say what to write where they cannot.


class WholeNumberField(IntegerField):
    """A whole number typed in a text box; what is not one gets ``invalid_message``."""

    widget = TextInput()
    data: Any  # an int once read, or None (as IntegerField's, for the forms that read it)

    def __init__(self, *args: Any, invalid_message: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invalid_message = invalid_message or _l("Enter a whole number, like 12.")

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0] or "").strip()
        self.data = None
        if raw == "":
            return
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise ValueError(str(self.invalid_message))
        self.data = int(raw)


class QuantityField(IntegerField):
    """How much of a measure: a whole number, or for square metres also "12,5" or "12.5".

    The quantity is stored as a whole number: square metres are rounded to the nearest whole
    one, halves up (12,5 m² is 13 m²). They are an estimate that the installer measures during
    the site survey, and prices, tiers and capacities all count whole units, so a tenth of a
    square metre would be precision nobody has. Pieces cannot be fractions."""

    widget = TextInput()
    data: Any

    def __init__(self, *args: Any, fractions: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fractions = fractions

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0] or "").strip()
        self.data = None
        if raw == "":
            return
        try:
            value = parse_decimal(raw)
        except NumberError as exc:
            if exc.code == "negative":
                raise ValueError(str(_l("Enter a number above 0."))) from None
            if self.fractions:
                raise ValueError(str(_l("Enter a number, like 12 or 12,5."))) from None
            raise ValueError(str(_l("Enter a whole number, like 2."))) from None
        if value != value.to_integral_value() and not self.fractions:
            raise ValueError(str(_l("Enter a whole number, like 2.")))
        self.data = whole(value)


_HOUSE_NUMBER_RANGE = _l("Enter a house number from 1 to 99999.")


class HouseNumberField(IntegerField):
    """The house number with its letter or addition as people write it ("12a", "12-3",
    "12 bis"): ``data`` is the number, ``addition`` the normalised rest ("A", "3", "BIS")."""

    widget = TextInput()
    data: Any
    addition: str = ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0] or "").strip()
        self.data = None
        self.addition = ""
        if raw == "":
            return
        try:
            self.data, self.addition = split_house_number(raw)
        except HouseNumberError as exc:
            if exc.code == "range":
                raise ValueError(str(_HOUSE_NUMBER_RANGE)) from None
            if exc.code == "addition":
                raise ValueError(
                    str(
                        _l(
                            "After the number, an addition is at most 6 letters or digits, like 12a or 12-3."
                        )
                    )
                ) from None
            raise ValueError(
                str(_l("Enter the house number with its letter or addition, like 12, 12a or 12-3."))
            ) from None


def fill_street_and_city(form: Any) -> bool:
    """Without JavaScript: on submit, a street or town left empty is filled in from the BAG
    (``coop.core.address_lookup``) when postcode and house number are readable. True when
    something was filled in: the form then goes back to the person to check, unsaved. When the
    register has nothing or cannot be reached, the fields stay empty and ask to be typed."""
    street = form.street
    city = getattr(form, "city", None)
    if (street.data or "").strip() and (city is None or (city.data or "").strip()):
        return False
    postcode = normalise_postcode(form.postcode.data or "")
    number = form.house_number.data
    if postcode is None or not isinstance(number, int) or form.house_number.process_errors:
        return False
    separate = getattr(form, "house_number_addition", None)
    addition = form.house_number.addition or normalise_addition(
        (separate.data if separate is not None else "") or ""
    )
    try:
        found = address_lookup.lookup(postcode, number, addition or "")
    except address_lookup.LookupUnavailableError:
        return False
    if found is None:
        return False
    if not (street.data or "").strip():
        street.data = found.street
    if city is not None and not (city.data or "").strip():
        city.data = found.city
    return True


def address_looked_up(form: Any, organisation_id: int | None) -> bool:
    """Before ``validate_on_submit``: True when street or town was filled in from the BAG on
    this submit (``fill_street_and_city``); the form is then validated for its other fields and
    goes back to the person to check, unsaved."""
    if not form.is_submitted() or not address_lookup.enabled(organisation_id):
        return False
    if not fill_street_and_city(form):
        return False
    form.validate()
    return True


def house_number_and_addition(number: HouseNumberField, addition: StringField) -> tuple[int, str]:
    """The number, and the addition from whichever field has it (once the form validated)."""
    separate = normalise_addition(addition.data or "") or ""
    return int(number.data), number.addition or separate


def check_addition_once(number: HouseNumberField, addition: StringField) -> bool:
    """An addition typed after the number ("12a") and another one in the addition field ("b")
    contradict each other: say so at the addition field. The same one twice is fine."""
    if number.errors or addition.errors or not number.addition:
        return True
    separate = normalise_addition(addition.data or "") or ""
    if separate and separate != number.addition:
        addition.errors = [
            *addition.errors,
            str(
                _l(
                    "The house number already has the addition %(addition)s. Leave this field "
                    "empty, or correct the house number.",
                    addition=number.addition,
                )
            ),
        ]
        return False
    return True


# --- a Dutch address, as the sign-up, survey and interest forms ask it -------------------------
# Functions rather than a base class: a field's place in the form (and in its error summary) is
# the order in which it is made, so each form makes them where it lists them. ``staff=True``
# words them for staff filling in a form for a resident ("Enter the resident's postcode").


def postcode_field(*, staff: bool = False) -> StringField:
    return StringField(
        _l("Postcode"),
        description=_l("For example 3521 AB."),
        filters=[strip],
        validators=[
            DataRequired(
                _l("Enter the resident's postcode.") if staff else _l("Enter your postcode.")
            ),
            Length(
                max=10,
                message=_l("Enter a Dutch postcode: four digits and two letters, like 1234 AB."),
            ),
            DutchPostcode(),
        ],
    )


def house_number_field(*, staff: bool = False) -> HouseNumberField:
    return HouseNumberField(
        _l("House number"),
        description=_l("With a letter or addition if there is one, like 12, 12a or 12-3."),
        validators=[
            InputRequired(
                _l("Enter the resident's house number.")
                if staff
                else _l("Enter your house number.")
            ),
            NumberRange(min=HOUSE_NUMBER_MIN, max=HOUSE_NUMBER_MAX, message=_HOUSE_NUMBER_RANGE),
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


def street_field(*, staff: bool = False) -> StringField:
    return StringField(
        _l("Street"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the resident's street.") if staff else _l("Enter your street.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PlainText(),
        ],
    )


def city_field(*, staff: bool = False) -> StringField:
    return StringField(
        _l("Town or city"),
        filters=[strip],
        validators=[
            DataRequired(
                _l("Enter the resident's town or city.")
                if staff
                else _l("Enter your town or city.")
            ),
            Length(max=80, message=_l("Use at most 80 characters.")),
            PlainText(),
        ],
    )
