"""Forms of the installer registry: the company with its offers, and inviting a user."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, Form, IntegerField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, ValidationError

from coop.actions.models import Measure, MeasureUnit
from coop.core.forms import DutchPhone, EuroField, PersonName, PlainText, strip
from coop.core.web import localized
from coop.installers.services import ServiceAreaError, format_service_area, parse_service_area


class KvkNumber:
    def __call__(self, form: Form, field: Field) -> None:
        if field.data and not re.fullmatch(r"\d{8}", field.data):
            raise ValidationError(_l("A KvK number is exactly 8 digits, like 12345678."))


class ServiceArea:
    """PC4 codes and ranges; the field's data becomes the stored form ("3500-3599,3811")."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            ranges = parse_service_area(field.data or "")
        except ServiceAreaError as exc:
            if exc.code == "empty":
                raise ValidationError(
                    _l("Enter the postcode areas the installer serves, like 3500-3599, 3811.")
                ) from None
            if exc.code == "reversed":
                raise ValidationError(
                    _l(
                        "In “%(part)s” the first number must not be larger than the second.",
                        part=exc.part,
                    )
                ) from None
            if exc.code == "out_of_range":
                raise ValidationError(
                    _l(
                        "“%(part)s” is not a postcode area: use numbers from 1000 to 9999.",
                        part=exc.part,
                    )
                ) from None
            raise ValidationError(
                _l(
                    "“%(part)s” is not a postcode area: use four digits like 3811 or a range like 3500-3599.",
                    part=exc.part[:20],
                )
            ) from None
        stored = format_service_area(ranges)
        if len(stored) > 1000:
            raise ValidationError(_l("Use fewer areas: at most 1000 characters."))
        field.data = stored


def _digits_only(value: Any) -> Any:
    # "1234 5678" and "1234.5678" are how people copy a KvK number; the number is the digits.
    return re.sub(r"[\s.]", "", value) if isinstance(value, str) else value


class InstallerForm(FlaskForm):
    company_name = StringField(
        _l("Company name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the company name.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
            PlainText(),
        ],
    )
    kvk_number = StringField(
        _l("KvK number"),
        description=_l("The 8 digits of the Chamber of Commerce registration."),
        filters=[strip, _digits_only],
        validators=[DataRequired(_l("Enter the KvK number.")), KvkNumber()],
    )
    certifications = StringField(
        _l("Certifications (optional)"),
        description=_l("Separate them with commas, for example: VCA, InstallQ, Erkend ISSO."),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=500, message=_l("Use at most 500 characters.")),
            PlainText(),
        ],
    )
    contact_name = StringField(
        _l("Contact person"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name of the contact person.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PersonName(),
        ],
    )
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the email address of the company.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )
    phone = StringField(
        _l("Phone number (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=20, message=_l("Use at most 20 characters.")),
            DutchPhone(),
        ],
    )
    city = StringField(
        _l("Town or city"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the town or city of the company.")),
            Length(max=80, message=_l("Use at most 80 characters.")),
            PlainText(),
        ],
    )
    service_area = StringField(
        _l("Service area"),
        description=_l(
            "Postcode areas (four digits) and ranges, separated by commas, for example 3500-3599, 3811."
        ),
        filters=[strip],
        validators=[Length(max=2000, message=_l("Use at most 2000 characters.")), ServiceArea()],
    )

    measure_ids: list[int] = []

    def offer_fields(self) -> list[tuple[Field, Field, Field, str]]:
        """(offered?, unit price, homes per week, unit) for each measure of the catalogue."""
        return [
            (
                getattr(self, f"offer_{i}"),
                getattr(self, f"price_{i}"),
                getattr(self, f"capacity_{i}"),
                self.units[i],
            )
            for i in self.measure_ids
        ]

    units: dict[int, str] = {}

    def chosen_offers(self) -> dict[int, tuple[int, int]]:
        """measure_id -> (unit price in cents, homes per week), for the ticked measures."""
        chosen: dict[int, tuple[int, int]] = {}
        for measure_id in self.measure_ids:
            if getattr(self, f"offer_{measure_id}").data:
                price = getattr(self, f"price_{measure_id}")
                capacity = getattr(self, f"capacity_{measure_id}")
                chosen[measure_id] = (int(price.cents), int(capacity.data))
        return chosen

    def validate(self, extra_validators: Any = None) -> bool:
        valid: bool = super().validate(extra_validators)
        for measure_id in self.measure_ids:
            if not getattr(self, f"offer_{measure_id}").data:
                continue
            price = getattr(self, f"price_{measure_id}")
            capacity = getattr(self, f"capacity_{measure_id}")
            if price.cents is None and not price.errors:
                price.errors = [*price.errors, str(_l("Enter the price per unit, or untick it."))]
                valid = False
            if capacity.data is None and not capacity.errors:
                capacity.errors = [
                    *capacity.errors,
                    str(_l("Enter how many homes a week, or untick it.")),
                ]
                valid = False
        return valid


def installer_form_for(measures: list[Measure], **kwargs: Any) -> InstallerForm:
    """The installer form with a price and a capacity for each measure of the catalogue."""
    fields: dict[str, Any] = {"measure_ids": [], "units": {}}
    for measure in measures:
        name = localized(measure, "name")
        per_unit = _l("per m²") if measure.unit is MeasureUnit.SQUARE_METRE else _l("per piece")
        fields[f"offer_{measure.id}"] = BooleanField(name)
        fields[f"price_{measure.id}"] = EuroField(
            _l("Unit price for %(measure)s in euros", measure=name),
            description=per_unit,
            filters=[strip],
            validators=[Optional(), Length(max=20, message=_l("Use at most 20 characters."))],
        )
        fields[f"capacity_{measure.id}"] = IntegerField(
            _l("Homes per week for %(measure)s", measure=name),
            validators=[
                Optional(),
                NumberRange(min=1, max=1000, message=_l("Enter a number of homes from 1 to 1000.")),
            ],
        )
        fields["measure_ids"].append(measure.id)
        fields["units"][measure.id] = measure.unit.value
    form = type("InstallerFormWithOffers", (InstallerForm,), fields)(**kwargs)
    assert isinstance(form, InstallerForm)
    return form


class InviteInstallerUserForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the person's name.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PersonName(),
        ],
    )
    email = EmailField(
        _l("Email address"),
        description=_l("We email an invitation to set a password to this address."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the person's email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )
