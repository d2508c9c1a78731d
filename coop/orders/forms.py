"""Forms of orders: on the desk, start a matching run and move or split a batch; in the
installer's portal, answer an order and plan the work; on the resident's page, answer it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    ValidationError,
)

from coop.actions.forms import (
    LocalDateField,
    LocalTimeField,
    NoControlCharacters,
    amsterdam_moment,
)
from coop.core.forms import EuroField, PlainText, WholeNumberField, strip
from coop.core.web import localized
from coop.orders.fieldwork import MAX_ITEM_QUANTITY, MAX_QUOTE_ITEMS, QuoteItemInput
from coop.orders.models import VatRate
from coop.orders.vat_rates import MAX_NAME, MAX_SOURCE, VatRateDetails


class StartMatchingForm(FlaskForm):
    use_registry_prices = BooleanField(
        _l("Also use installers without a bid, at their registry prices"),
        description=_l(
            "Only installers who did not bid; their capacity is their homes per week times the "
            "number of weeks below."
        ),
    )
    registry_weeks = IntegerField(
        _l("Weeks of work to count for those installers"),
        default=12,
        validators=[
            NumberRange(min=1, max=104, message=_l("Enter a number of weeks from 1 to 104."))
        ],
    )


class ReassignForm(FlaskForm):
    """One field of homes per installer that can serve the batch; filled in on GET."""

    def homes_fields(self) -> list[StringField]:
        return [field for name, field in self._fields.items() if name.startswith("homes_")]

    def shares(self) -> dict[int, int]:
        return {
            int(field.name.removeprefix("homes_")): int(field.data or 0)
            for field in self.homes_fields()
        }


class _WholeHomes:
    def __call__(self, form: Any, field: Any) -> None:
        raw = (field.data or "").strip()
        if raw and not raw.isdigit():
            raise ValidationError(_l("Enter a whole number of homes, 0 or more."))


def reassign_form(
    installers: list[tuple[int, str]], current: dict[int, int], **kwargs: Any
) -> ReassignForm:
    """A form with a homes field per installer (id, label), prefilled with ``current``."""

    class Form(ReassignForm):
        pass

    for installer_id, label in installers:
        setattr(
            Form,
            f"homes_{installer_id}",
            StringField(label, filters=[strip], validators=[_WholeHomes()]),
        )
    form = Form(**kwargs)
    if not form.is_submitted():
        for installer_id, _label in installers:
            getattr(form, f"homes_{installer_id}").data = str(current.get(installer_id, 0))
    return form


# --- the installer's portal ---------------------------------------------------------------------


class DeclineOrderForm(FlaskForm):
    reason = TextAreaField(
        _l("Why can you not take this order?"),
        description=_l("The energy desk reads this. The homes go to another installer."),
        validators=[
            DataRequired(_l("Say why you decline the order.")),
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )


SURVEY_DURATIONS = (30, 45, 60, 90, 120, 180, 240)


class SurveyForm(FlaskForm):
    day = LocalDateField(_l("Date"), validators=[DataRequired(_l("Enter the date of the visit."))])
    at = LocalTimeField(
        _l("Time"), validators=[DataRequired(_l("Enter the time of the visit, like 09:30."))]
    )
    duration = SelectField(
        _l("How long the visit takes"),
        coerce=int,
        default=60,
        choices=[],
        validate_choice=True,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duration.choices = [
            SelectChoice(minutes, _l("%(num)d minutes", num=minutes))
            for minutes in SURVEY_DURATIONS
        ]
        self.duration.validate_choice = True

    def starts_at(self) -> datetime:
        assert self.day.value and self.at.value
        return amsterdam_moment(self.day.value, self.at.value)


class InstallationDayForm(FlaskForm):
    day = LocalDateField(
        _l("Installation day"), validators=[DataRequired(_l("Enter the day of the installation."))]
    )


class InstalledForm(FlaskForm):
    day = LocalDateField(
        _l("Day the work was finished"),
        validators=[DataRequired(_l("Enter the day the work was finished."))],
    )


QUOTE_ROWS = 3  # empty rows a new quote starts with


class _WholeNumber:
    def __init__(self, most: int) -> None:
        self.most = most

    def __call__(self, form: Any, field: Any) -> None:
        raw = (field.data or "").strip()
        if raw and (not raw.isdigit() or not 1 <= int(raw) <= self.most):
            raise ValidationError(_l("Enter a whole number from 1 to %(most)d.", most=self.most))


class QuoteForm(FlaskForm):
    """A quote of a few rows; each row a description, a quantity, a price per unit and a VAT
    rate. Rows left empty are ignored; the fields are made per row by ``quote_form``."""

    valid_until = LocalDateField(
        _l("Valid until"),
        description=_l("The resident can accept the quote up to and including this day."),
        validators=[DataRequired(_l("Enter the last day the quote is valid."))],
    )
    note = TextAreaField(
        _l("Note for the resident (optional)"),
        validators=[
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )
    rows: int = QUOTE_ROWS

    def row(self, index: int) -> tuple[Any, Any, Any, Any]:
        return (
            getattr(self, f"description_{index}"),
            getattr(self, f"quantity_{index}"),
            getattr(self, f"price_{index}"),
            getattr(self, f"vat_{index}"),
        )

    def row_fields(self) -> list[tuple[Any, Any, Any, Any]]:
        return [self.row(index) for index in range(self.rows)]

    def _filled(self, index: int) -> bool:
        description, quantity, price, _vat = self.row(index)
        return any((field.data or "").strip() for field in (description, quantity, price))

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        filled = [index for index in range(self.rows) if self._filled(index)]
        for index in filled:
            description, quantity, price, _vat = self.row(index)
            for field, message in (
                (description, _l("Describe the work or the material.")),
                (quantity, _l("Enter the quantity.")),
                (price, _l("Enter the price per unit, or 0.")),
            ):
                if not (field.data or "").strip() and not field.errors:
                    field.errors = [*field.errors, message]
                    valid = False
        if not filled:
            first = self.row(0)[0]
            first.errors = [*first.errors, _l("Enter at least one row of the quote.")]
            valid = False
        return valid

    def items(self) -> list[QuoteItemInput]:
        out = []
        for index in range(self.rows):
            if not self._filled(index):
                continue
            description, quantity, price, vat = self.row(index)
            out.append(
                QuoteItemInput(
                    description=description.data.strip(),
                    quantity=int(quantity.data),
                    unit_price_cents=price.cents or 0,
                    vat_rate=int(vat.data),
                )
            )
        return out


def vat_choices(rates: Sequence[VatRate]) -> list[SelectChoice]:
    """One choice per percentage, named as the rate is ("9% – Reduced rate (...)")."""
    choices: dict[int, SelectChoice] = {}
    for rate in rates:
        choices.setdefault(
            rate.percent,
            SelectChoice(str(rate.percent), f"{rate.percent}% – {localized(rate, 'name')}"),
        )
    return list(choices.values())


def quote_form(rows: int, rates: Sequence[VatRate], **kwargs: Any) -> QuoteForm:
    """A quote form with ``rows`` rows (1 to the most a quote may have); each row offers the
    VAT ``rates`` (those that apply today, the highest first), and starts with the first."""
    rows = max(1, min(rows, MAX_QUOTE_ITEMS))
    choices = vat_choices(rates)

    class Form(QuoteForm):
        pass

    for index in range(rows):
        number = index + 1
        setattr(
            Form,
            f"description_{index}",
            StringField(
                _l("Description (row %(n)d)", n=number),
                filters=[strip],
                validators=[
                    Length(max=200, message=_l("Use at most 200 characters.")),
                    PlainText(),
                ],
            ),
        )
        setattr(
            Form,
            f"quantity_{index}",
            StringField(
                _l("Quantity (row %(n)d)", n=number),
                filters=[strip],
                validators=[_WholeNumber(MAX_ITEM_QUANTITY)],
            ),
        )
        setattr(
            Form,
            f"price_{index}",
            EuroField(_l("Price per unit, excluding VAT (row %(n)d)", n=number), allow_zero=True),
        )
        setattr(
            Form,
            f"vat_{index}",
            SelectField(
                _l("VAT (row %(n)d)", n=number),
                choices=choices,
                default=choices[0].value if choices else None,
                invalid_choice_message=_l("Choose one of the VAT rates in the list."),
            ),
        )
    Form.rows = rows
    return Form(**kwargs)


# --- the resident's answers ---------------------------------------------------------------------


class SurveyChangeForm(FlaskForm):
    message = TextAreaField(
        _l("When would suit you better?"),
        description=_l("For example: weekdays after 16:00, or any day next week but Tuesday."),
        validators=[
            DataRequired(_l("Tell the installer which moments suit you.")),
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )


class DeclineQuoteForm(FlaskForm):
    reason = TextAreaField(
        _l("Why do you decline? (optional)"),
        description=_l("It helps the installer and the energy desk. You may leave it empty."),
        validators=[
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )


RATINGS = (
    SelectChoice("", _l("No rating")),
    SelectChoice("5", _l("5 – very good")),
    SelectChoice("4", _l("4 – good")),
    SelectChoice("3", _l("3 – fair")),
    SelectChoice("2", _l("2 – poor")),
    SelectChoice("1", _l("1 – very poor")),
)


class _ExperienceForm(FlaskForm):
    """A rating of the installer and the resident's experience, read by other residents of
    the action without the name (``coop/orders/reviews.py``)."""

    comment = TextAreaField(
        _l("Your experience (optional)"),
        description=_l("Other residents of the action may read it, without your name."),
        validators=[
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )

    def rating_value(self) -> int | None:
        rating: RadioField = getattr(self, "rating")  # noqa: B009 (declared by each form)
        return int(rating.data) if rating.data else None


class ConfirmInstallationForm(_ExperienceForm):
    rating = RadioField(
        _l("How do you rate the installer? (optional)"),
        choices=list(RATINGS),
        default="",
        validate_choice=True,
    )


class RateInstallationForm(_ExperienceForm):
    """Rating confirmed work afterwards: now the rating is what the form is for."""

    rating = RadioField(
        _l("How do you rate the installer?"),
        choices=list(RATINGS[1:]),
        validators=[DataRequired(message=_l("Choose a rating from 1 to 5."))],
        validate_choice=True,
    )


# --- the desk's VAT rates -----------------------------------------------------------------------


class PercentField(WholeNumberField):
    """A whole percentage, "9" or "9 %"."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            valuelist = [str(valuelist[0] or "").strip().removesuffix("%").strip()]
        super().process_formdata(valuelist)


class VatRateForm(FlaskForm):
    """A new rate as typed; the rules (which first day, no overlap) are the service's."""

    percent = PercentField(
        _l("Percentage"),
        description=_l("A whole number from 0 to 100, like 21."),
        invalid_message=_l("Enter a whole number from 0 to 100, like 21."),
        validators=[
            InputRequired(_l("Enter the percentage.")),
            NumberRange(min=0, max=100, message=_l("Enter a whole number from 0 to 100, like 21.")),
        ],
    )
    name_nl = StringField(
        _l("Name in Dutch"),
        description=_l("As installers know it, e.g. Verlaagd tarief (isolatie van woningen)."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name in Dutch.")),
            Length(max=MAX_NAME, message=_l("Use at most 200 characters.")),
            PlainText(),
        ],
    )
    name_en = StringField(
        _l("Name in English"),
        description=_l("E.g. Reduced rate (insulating homes)."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name in English.")),
            Length(max=MAX_NAME, message=_l("Use at most 200 characters.")),
            PlainText(),
        ],
    )
    source = StringField(
        _l("Source"),
        description=_l(
            "Where the rate comes from: the address of the Belastingdienst's page, or the "
            "article of the law."
        ),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the source of the rate.")),
            Length(max=MAX_SOURCE, message=_l("Use at most 500 characters.")),
            PlainText(),
        ],
    )
    valid_from = LocalDateField(
        _l("First day it applies"),
        description=_l("Today or later."),
        validators=[DataRequired(_l("Enter the first day the rate applies."))],
    )
    valid_until = LocalDateField(
        _l("Last day it applies (optional)"),
        description=_l("Leave empty while no end is known."),
    )

    def details(self) -> VatRateDetails:
        assert self.valid_from.value is not None and self.percent.data is not None
        return VatRateDetails(
            percent=int(self.percent.data),
            name_nl=self.name_nl.data or "",
            name_en=self.name_en.data or "",
            source=self.source.data or "",
            valid_from=self.valid_from.value,
            valid_until=self.valid_until.value,
        )


class WithdrawVatRateForm(FlaskForm):
    """Withdrawing a rate not yet in force: a button, with its CSRF token."""


class EndVatRateForm(FlaskForm):
    last_day = LocalDateField(
        _l("Last day the rate applies"),
        description=_l(
            "Today or later: quotes sent up to and including this day can use the rate."
        ),
        validators=[DataRequired(_l("Enter the last day the rate applies."))],
    )
