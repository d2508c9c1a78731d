"""Forms of the resident: sign up, edit details, withdraw, erase."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from coop.actions.models import Action, MeasureUnit
from coop.core.address import normalise_postcode
from coop.core.forms import (
    DutchPhone,
    PersonName,
    PlainText,
    QuantityField,
    WholeNumberField,
    addition_field,
    check_addition_once,
    city_field,
    house_number_and_addition,
    house_number_field,
    postcode_field,
    street_field,
    strip,
)
from coop.core.web import localized
from coop.registrations.models import DwellingType, Ownership
from coop.registrations.services import Address, Dwelling, RegistrationInput

DWELLING_TYPES = [
    SelectChoice(DwellingType.DETACHED.value, _l("Detached house")),
    SelectChoice(DwellingType.SEMI_DETACHED.value, _l("Semi-detached house")),
    SelectChoice(DwellingType.TERRACED.value, _l("Terraced house")),
    SelectChoice(DwellingType.CORNER.value, _l("Corner house")),
    SelectChoice(DwellingType.APARTMENT.value, _l("Apartment")),
    SelectChoice(DwellingType.OTHER.value, _l("Other")),
]
OWNERSHIPS = [
    SelectChoice(Ownership.OWNER.value, _l("I own the home")),
    SelectChoice(Ownership.PRIVATE_TENANT.value, _l("I rent from a private landlord")),
    SelectChoice(Ownership.CORPORATION_TENANT.value, _l("I rent from a housing corporation")),
    SelectChoice(
        Ownership.VVE_MEMBER.value,
        _l("I own an apartment and am a member of the VvE (owners' association)"),
    ),
]
# The same choices as staff say them about the resident they register.
OWNERSHIPS_FOR_STAFF = [
    SelectChoice(Ownership.OWNER.value, _l("The resident owns the home")),
    SelectChoice(Ownership.PRIVATE_TENANT.value, _l("The resident rents from a private landlord")),
    SelectChoice(
        Ownership.CORPORATION_TENANT.value, _l("The resident rents from a housing corporation")
    ),
    SelectChoice(
        Ownership.VVE_MEMBER.value,
        _l("The resident owns an apartment and is a member of the VvE (owners' association)"),
    ),
]
_ENERGY_LABEL_VALUES = ("A++++", "A+++", "A++", "A+", "A", "B", "C", "D", "E", "F", "G")
ENERGY_LABELS = [SelectChoice("", _l("I don't know"))] + [
    SelectChoice(label, label) for label in _ENERGY_LABEL_VALUES
]
ENERGY_LABELS_FOR_STAFF = [SelectChoice("", _l("Not known"))] + [
    SelectChoice(label, label) for label in _ENERGY_LABEL_VALUES
]


def _build_year_max() -> int:
    return date.today().year + 1


# --- the fields, in the resident's words or in the words of staff who fill them in for one ----
# (The resident's sign-up form and staff's "register by phone" form are the same form; only who
# is spoken to differs, so each field is made by a function that knows both wordings.)


def name_field(staff: bool = False) -> StringField:
    return StringField(
        _l("The resident's name") if staff else _l("Your name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the resident's name.") if staff else _l("Enter your name.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PersonName(),
        ],
    )


def phone_field(staff: bool = False) -> StringField:
    return StringField(
        _l("The resident's phone number (optional)") if staff else _l("Phone number (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=20, message=_l("Use at most 20 characters.")),
            DutchPhone(),
        ],
    )


def dwelling_type_field(staff: bool = False) -> SelectField:
    return SelectField(
        _l("Type of home"),
        choices=[SelectChoice("", _l("Choose…")), *DWELLING_TYPES],
        validators=[
            DataRequired(
                _l("Choose the type of the resident's home.")
                if staff
                else _l("Choose the type of your home.")
            )
        ],
    )


def build_year_field(staff: bool = False) -> WholeNumberField:
    return WholeNumberField(
        _l("Year of construction"),
        description=_l("An estimate is fine, for example 1975."),
        invalid_message=_l("Enter the year in digits, for example 1975."),
        validators=[
            InputRequired(
                _l("Enter the year the home was built.")
                if staff
                else _l("Enter the year your home was built.")
            ),
            NumberRange(min=1500, max=2100, message=_l("Enter a year between 1500 and next year.")),
        ],
    )


def ownership_field(staff: bool = False) -> RadioField:
    return RadioField(
        _l("Does the resident own or rent the home?")
        if staff
        else _l("Do you own or rent the home?"),
        choices=OWNERSHIPS_FOR_STAFF if staff else OWNERSHIPS,
        validators=[
            InputRequired(
                _l("Choose whether the resident owns or rents the home.")
                if staff
                else _l("Choose whether you own or rent the home.")
            )
        ],
    )


def energy_label_field(staff: bool = False) -> SelectField:
    return SelectField(
        _l("Energy label (optional)"),
        choices=ENERGY_LABELS_FOR_STAFF if staff else ENERGY_LABELS,
        validators=[Optional()],
    )


def email_field(staff: bool = False) -> EmailField:
    return EmailField(
        _l("The resident's email address") if staff else _l("Email address"),
        description=(
            _l("The resident gets a link at this address to confirm the registration.")
            if staff
            else _l("We send a link to this address to confirm your registration.")
        ),
        filters=[strip],
        validators=[
            DataRequired(
                _l("Enter the resident's email address.")
                if staff
                else _l("Enter your email address.")
            ),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )


class DetailsForm(FlaskForm):
    """What a resident can change later: contact, dwelling and measures."""

    # Who the form speaks to: the resident ("your home"), or staff about the resident.
    for_staff = False

    name = name_field()
    phone = phone_field()
    dwelling_type = dwelling_type_field()
    build_year = build_year_field()
    ownership = ownership_field()
    energy_label = energy_label_field()

    def validate_build_year(self, field: WholeNumberField) -> None:
        if field.data is not None and field.data > _build_year_max():
            from wtforms.validators import ValidationError

            raise ValidationError(_l("Enter a year between 1500 and next year."))

    # Measure fields are added per action by ``details_form_for``.
    measure_ids: list[int] = []

    def measure_fields(self) -> list[tuple[Any, Any, Any]]:
        return [
            (getattr(self, f"measure_{i}"), getattr(self, f"quantity_{i}"), self.units[i])
            for i in self.measure_ids
        ]

    def dwelling(self) -> Dwelling:
        return Dwelling(
            dwelling_type=DwellingType(self.dwelling_type.data),
            build_year=int(self.build_year.data),
            ownership=Ownership(self.ownership.data),
            energy_label=self.energy_label.data or None,
        )

    def chosen_measures(self) -> dict[int, int]:
        chosen = {}
        for measure_id in self.measure_ids:
            if getattr(self, f"measure_{measure_id}").data:
                chosen[measure_id] = int(getattr(self, f"quantity_{measure_id}").data)
        return chosen

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        chosen = [i for i in self.measure_ids if getattr(self, f"measure_{i}").data]
        if not chosen:
            first = getattr(self, f"measure_{self.measure_ids[0]}") if self.measure_ids else None
            if first is not None:
                first.errors = [*first.errors, str(_l("Choose at least one measure."))]
            valid = False
        for measure_id in chosen:
            quantity = getattr(self, f"quantity_{measure_id}")
            if quantity.data is None and not quantity.errors:
                quantity.errors = [
                    *quantity.errors,
                    str(
                        _l("Enter how much the resident needs, or untick the measure.")
                        if self.for_staff
                        else _l("Enter how much you need, or untick the measure.")
                    ),
                ]
                valid = False
        return valid


class RegistrationForm(DetailsForm):
    email = email_field()
    postcode = postcode_field()
    house_number = house_number_field()
    house_number_addition = addition_field()
    street = street_field()
    city = city_field()
    consent = BooleanField(
        _l(
            "I agree that the energy desk and the selected installers use these details for this collective action."
        ),
        validators=[
            DataRequired(_l("You can only take part if you agree to the use of your details."))
        ],
    )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        return check_addition_once(self.house_number, self.house_number_addition) and valid

    def address(self) -> Address:
        """The address as typed, "12a" split into number and addition (once validated)."""
        number, addition = house_number_and_addition(self.house_number, self.house_number_addition)
        return Address(
            postcode=normalise_postcode(self.postcode.data) or "",
            house_number=number,
            addition=addition,
            street=" ".join((self.street.data or "").split()),
            city=" ".join((self.city.data or "").split()),
        )

    def registration_input(self, language: str) -> RegistrationInput:
        """What the resident (or staff for them) filled in, as the service takes it."""
        return RegistrationInput(
            name=self.name.data,
            email=self.email.data,
            phone=self.phone.data or None,
            address=self.address(),
            dwelling=self.dwelling(),
            measures=self.chosen_measures(),
            consent=bool(self.consent.data),
            language=language if language in ("nl", "en") else "nl",
        )


def _with_measures(base: type[DetailsForm], action: Action) -> type[DetailsForm]:
    """``base`` with a box and a quantity for each of the action's measures.

    The class is made once per base, language and measures as they are now (names, units,
    limits) and kept: making it on every request (the fields, then WTForms' gathering of them
    when the class is first called) cost about a twentieth of a sign-up. A measure changed by
    the desk makes another key, so a new class; the texts that are not names are translated
    when the form is drawn, as before."""
    measures = tuple(
        (
            action_measure.id,
            localized(action_measure.measure, "name"),
            action_measure.measure.unit,
            action_measure.measure.max_quantity,
        )
        for action_measure in action.measures
    )
    key = (base.__name__, measures)
    made = _FORM_CLASSES.get(key)
    if made is None or made.__base__ is not base:
        if len(_FORM_CLASSES) >= 256:  # measures edited many times over: start afresh
            _FORM_CLASSES.clear()
        made = _FORM_CLASSES[key] = _form_class(base, measures)
    return made


_FORM_CLASSES: dict[tuple[str, tuple[tuple[int, str, MeasureUnit, int], ...]], type[Any]] = {}


def _form_class(
    base: type[DetailsForm], measures: tuple[tuple[int, str, MeasureUnit, int], ...]
) -> type[DetailsForm]:
    fields: dict[str, Any] = {"measure_ids": [], "units": {}}
    for action_measure_id, name, unit, max_quantity in measures:
        square_metres = unit is MeasureUnit.SQUARE_METRE
        unit_label = _l("square metres (m²)") if square_metres else _l("number")
        fields[f"measure_{action_measure_id}"] = BooleanField(name)
        fields[f"quantity_{action_measure_id}"] = QuantityField(
            unit_label,
            fractions=square_metres,
            validators=[
                Optional(),
                NumberRange(
                    min=1,
                    max=max_quantity,
                    message=_l(
                        "Enter a number from %(low)s to %(high)s.", low=1, high=max_quantity
                    ),
                ),
            ],
        )
        fields["measure_ids"].append(action_measure_id)
        fields["units"][action_measure_id] = unit.value
    return type(f"{base.__name__}ForAction", (base,), fields)


def registration_form_for(action: Action, **kwargs: Any) -> RegistrationForm:
    form_class = _with_measures(RegistrationForm, action)
    form = form_class(**kwargs)
    assert isinstance(form, RegistrationForm)
    return form


def details_form_for(action: Action, **kwargs: Any) -> DetailsForm:
    return _with_measures(DetailsForm, action)(**kwargs)


class WithdrawForm(FlaskForm):
    # Which measures: the page offers only those that can be withdrawn (the view checks).
    measures = SelectMultipleField(
        _l("What do you withdraw?"), coerce=str, choices=[], validate_choice=False
    )
    reason = TextAreaField(
        _l("Why do you withdraw?"),
        description=_l("This helps the energy desk improve the next action."),
        filters=[strip],
        validators=[
            DataRequired(_l("Tell us briefly why you withdraw.")),
            Length(max=1000, message=_l("Use at most 1000 characters.")),
            PlainText(),
        ],
    )


class EraseForm(FlaskForm):
    confirm = BooleanField(
        _l("Yes, erase my account and all my registrations. This cannot be undone."),
        validators=[DataRequired(_l("Tick the box to confirm that you want to erase everything."))],
    )
