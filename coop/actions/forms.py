"""Forms of the desk for actions: details, measures with group price tiers, neighbourhoods,
cancelling, and the wording of the action's emails."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from coop.actions.models import Measure, Neighbourhood
from coop.actions.services import SLUG_MAX, parse_pc4_list, tier_problem
from coop.core.formatting import format_euros
from coop.core.forms import DutchPhone, EuroField, PlainText, strip
from coop.core.time import AMSTERDAM
from coop.core.web import localized

TIER_ROWS = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class NoControlCharacters:
    """Long texts may hold any character a person types, but not invisible control characters."""

    def __call__(self, form: Form, field: Field) -> None:
        if field.data and _CONTROL.search(field.data):
            raise ValidationError(_l("Remove the invisible control characters."))


class LocalDateField(StringField):
    """A date as the browser's date input sends it (2026-12-31) or as people type it
    (31-12-2026); ``value`` holds it once the form validated."""

    value: date | None = None

    def pre_validate(self, form: Form) -> None:
        self.value = None
        raw = (self.data or "").strip()
        if not raw:
            return
        for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"):
            try:
                self.value = datetime.strptime(raw, pattern).date()
            except ValueError:
                continue
            if not 2000 <= self.value.year <= 2100:
                self.value = None
                raise ValidationError(_l("Enter a date between 2000 and 2100."))
            return
        raise ValidationError(_l("Enter a date like 2026-12-31."))


class LocalTimeField(StringField):
    """A time of day in Amsterdam (09:00, 9.00); ``value`` holds it once the form validated."""

    value: time | None = None

    def pre_validate(self, form: Form) -> None:
        self.value = None
        raw = (self.data or "").strip().replace(".", ":")
        if not raw:
            return
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::00)?", raw)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            self.value = time(int(match[1]), int(match[2]))
            return
        raise ValidationError(_l("Enter a time like 09:00 or 17:30."))


def amsterdam_moment(day: date, at: time) -> datetime:
    """A date and time on the clocks in Amsterdam, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=AMSTERDAM)


class Pc4List:
    """Four-digit postcode areas separated by commas or spaces; the field keeps ``codes``."""

    def __init__(self, most: int) -> None:
        self.most = most

    def __call__(self, form: Form, field: Field) -> None:
        codes, bad = parse_pc4_list(field.data or "")
        if bad:
            raise ValidationError(
                _l(
                    "Not a postcode area (four digits from 1000 to 9999): %(bad)s.",
                    bad=", ".join(part[:10] for part in bad[:5]),
                )
            )
        if len(codes) > self.most:
            raise ValidationError(_l("Use at most %(n)d postcode areas.", n=self.most))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ActionForm(FlaskForm):
    title_nl = StringField(
        _l("Title (Dutch)"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a title.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
            PlainText(),
        ],
    )
    title_en = StringField(
        _l("Title (English, optional)"),
        description=_l("Without it, English readers see the Dutch title."),
        filters=[strip],
        validators=[Length(max=200, message=_l("Use at most 200 characters.")), PlainText()],
    )
    slug = StringField(
        _l("Web address"),
        description=_l(
            "The action's page is /actions/ followed by the web address. Lower-case letters, "
            "digits and hyphens. Leave empty to make it from the Dutch title."
        ),
        filters=[strip, lambda v: v.lower() if isinstance(v, str) else v],
        validators=[Length(max=SLUG_MAX, message=_l("Use at most 80 characters."))],
    )
    summary_nl = TextAreaField(
        _l("Summary (Dutch)"),
        description=_l("One or two sentences for the list of actions."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a summary.")),
            Length(max=1000, message=_l("Use at most 1000 characters.")),
            NoControlCharacters(),
        ],
    )
    summary_en = TextAreaField(
        _l("Summary (English, optional)"),
        filters=[strip],
        validators=[
            Length(max=1000, message=_l("Use at most 1000 characters.")),
            NoControlCharacters(),
        ],
    )
    description_nl = TextAreaField(
        _l("Description (Dutch, optional)"),
        filters=[strip],
        validators=[
            Length(max=20000, message=_l("Use at most 20000 characters.")),
            NoControlCharacters(),
        ],
    )
    description_en = TextAreaField(
        _l("Description (English, optional)"),
        filters=[strip],
        validators=[
            Length(max=20000, message=_l("Use at most 20000 characters.")),
            NoControlCharacters(),
        ],
    )
    opens_on = LocalDateField(
        _l("Registration opens on"),
        description=_l("Date, like 2026-12-31."),
        validators=[DataRequired(_l("Enter the date registration opens."))],
    )
    opens_at = LocalTimeField(
        _l("Registration opens at"),
        description=_l("Time in the Netherlands, like 09:00."),
        default="09:00",
        validators=[DataRequired(_l("Enter the time registration opens."))],
    )
    closes_on = LocalDateField(
        _l("Registration closes on"),
        description=_l("Date, like 2026-12-31."),
        validators=[DataRequired(_l("Enter the date registration closes."))],
    )
    closes_at = LocalTimeField(
        _l("Registration closes at"),
        description=_l("Time in the Netherlands, like 23:59."),
        default="23:59",
        validators=[DataRequired(_l("Enter the time registration closes."))],
    )
    contact_email = EmailField(
        _l("Contact email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the email address residents can write to.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )
    contact_phone = StringField(
        _l("Contact phone number (optional)"),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=20, message=_l("Use at most 20 characters.")),
            DutchPhone(),
        ],
    )
    postcode_areas = StringField(
        _l("Postcode areas (PC4)"),
        description=_l(
            "The four digits of the postcodes the action is for, separated by commas or spaces: "
            "3521, 3522."
        ),
        validators=[DataRequired(_l("Enter at least one postcode area.")), Pc4List(most=150)],
    )
    neighbourhoods = MultiCheckboxField(_l("Neighbourhoods"), coerce=int, choices=[])
    order_response_days = IntegerField(
        _l("Working days an installer has to answer an order"),
        description=_l("Without an answer in time, the order goes to another installer."),
        default=5,
        # Left out of a post, the field keeps its default.
        validators=[
            NumberRange(min=1, max=30, message=_l("Enter a number of working days from 1 to 30."))
        ],
    )

    def __init__(self, *args: Any, neighbourhoods: list[Neighbourhood], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.neighbourhoods.choices = [(n.id, n.name) for n in neighbourhoods]

    def validate_slug(self, field: StringField) -> None:
        if field.data and not _SLUG.match(field.data):
            raise ValidationError(
                _l("Use lower-case letters, digits and single hyphens, like samen-isoleren.")
            )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if valid and self.window()[1] <= self.window()[0]:
            self.closes_on.errors = [_l("Registration must close after it opens.")]
            return False
        return bool(valid)

    def window(self) -> tuple[datetime, datetime]:
        assert self.opens_on.value and self.opens_at.value
        assert self.closes_on.value and self.closes_at.value
        return (
            amsterdam_moment(self.opens_on.value, self.opens_at.value),
            amsterdam_moment(self.closes_on.value, self.closes_at.value),
        )

    def fill_from(self, action: Any) -> None:
        """Show an existing action's values (on GET)."""
        for name in (
            "title_nl",
            "title_en",
            "slug",
            "summary_nl",
            "summary_en",
            "description_nl",
            "description_en",
            "contact_email",
            "contact_phone",
        ):
            getattr(self, name).data = getattr(action, name) or ""
        opens = action.registration_opens_at.astimezone(AMSTERDAM)
        closes = action.registration_closes_at.astimezone(AMSTERDAM)
        self.opens_on.data, self.opens_at.data = opens.date().isoformat(), opens.strftime("%H:%M")
        self.closes_on.data = closes.date().isoformat()
        self.closes_at.data = closes.strftime("%H:%M")
        self.postcode_areas.data = ", ".join(action.pc4_list)
        self.neighbourhoods.data = [n.id for n in action.neighbourhoods]
        self.order_response_days.data = action.order_response_days


class TierForm(Form):
    min_participants = StringField(_l("From how many homes"), filters=[strip])
    price = EuroField(_l("Price per unit in euros"))


class OfferForm(FlaskForm):
    """A measure the action offers: indicative price and up to five group price tiers."""

    measure = SelectField(_l("Measure"), coerce=int, choices=[])
    indicative_price = EuroField(
        _l("Indicative price per unit in euros, including VAT"),
        description=_l(
            "What a resident pays per m² or per piece, VAT included, before any group discount."
        ),
        validators=[DataRequired(_l("Enter the indicative price per unit."))],
    )
    tiers = FieldList(FormField(TierForm), min_entries=TIER_ROWS, max_entries=TIER_ROWS)

    def __init__(self, *args: Any, measures: list[Measure] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if measures is None:  # editing: the measure stays what it is
            del self.measure
        else:
            self.measure.choices = [(m.id, localized(m, "name")) for m in measures]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        filled = []
        for number, entry in enumerate(self.tiers.entries, start=1):
            row = entry.form
            has_min = bool(row.min_participants.data)
            has_price = bool((row.price.data or "").strip())
            if not has_min and not has_price:
                continue
            if not has_min or not has_price:
                target = row.min_participants if not has_min else row.price
                target.errors = [
                    *target.errors,
                    _l(
                        "Tier %(n)d: enter both the number of homes and the price, or neither.",
                        n=number,
                    ),
                ]
                valid = False
                continue
            homes = _whole_number(row.min_participants.data)
            if homes is None or not 1 <= homes <= 100_000:
                row.min_participants.errors = [
                    _l("Tier %(n)d: enter a whole number of homes from 1.", n=number)
                ]
                valid = False
                continue
            if row.price.cents is None:
                valid = False  # its own message is there already
                continue
            filled.append((number, row, homes, row.price.cents))
        if not valid or self.indicative_price.cents is None:
            return False
        problem = tier_problem(self.indicative_price.cents, [(h, p) for _, _, h, p in filled])
        if problem is not None:
            number, row, _, _ = filled[problem.params["tier"] - 1]
            message = _tier_message(problem.code, number, number_before=_previous(filled, number))
            target = row.min_participants if problem.code.startswith("tier_thr") else row.price
            target.errors = [message]
            return False
        return True

    def chosen_tiers(self) -> list[tuple[int, int]]:
        tiers = []
        for entry in self.tiers.entries:
            homes = _whole_number(entry.form.min_participants.data)
            if homes is not None and entry.form.price.cents:
                tiers.append((homes, entry.form.price.cents))
        return tiers

    def fill_from(self, offer: Any) -> None:
        self.indicative_price.data = format_euros(offer.indicative_price_cents)
        for entry, tier in zip(self.tiers.entries, offer.tiers, strict=False):
            entry.form.min_participants.data = str(tier.min_participants)
            entry.form.price.data = format_euros(tier.price_cents)

    def tier_rows(self) -> list[tuple[int, Any]]:
        return [(number, entry.form) for number, entry in enumerate(self.tiers.entries, start=1)]


def _previous(filled: list[tuple[int, Any, int, int]], number: int) -> int | None:
    before = [n for n, *_ in filled if n < number]
    return before[-1] if before else None


def _whole_number(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 7 else None


def _tier_message(code: str, number: int, number_before: int | None) -> Any:
    if code == "tier_thresholds_increase":
        return _l(
            "Tier %(n)d must start at more homes than tier %(m)d: the thresholds must go up.",
            n=number,
            m=number_before or number - 1,
        )
    if code == "tier_below_indicative":
        return _l(
            "Tier %(n)d must cost less per unit than the indicative price: a group price is a "
            "discount.",
            n=number,
        )
    return _l(
        "Tier %(n)d must cost less per unit than tier %(m)d: the prices must go down as more "
        "homes take part.",
        n=number,
        m=number_before or number - 1,
    )


class NeighbourhoodForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name of the neighbourhood.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PlainText(),
        ],
    )
    municipality = StringField(
        _l("Municipality"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the municipality.")),
            Length(max=100, message=_l("Use at most 100 characters.")),
            PlainText(),
        ],
    )
    postcode_areas = StringField(
        _l("Postcode areas (PC4)"),
        description=_l("Separated by commas or spaces: 3521, 3522."),
        validators=[DataRequired(_l("Enter at least one postcode area.")), Pc4List(most=90)],
    )
    household_count = StringField(
        _l("Number of households (optional)"),
        description=_l("For participation rates: how many households live here."),
        filters=[strip],
    )

    def validate_household_count(self, field: StringField) -> None:
        if field.data and (_whole_number(field.data.replace(".", "")) is None):
            raise ValidationError(_l("Enter a whole number, like 1250."))

    def households(self) -> int | None:
        return _whole_number((self.household_count.data or "").replace(".", ""))


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Why is the action cancelled?"),
        description=_l("Kept in the audit log."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the reason.")),
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )


class WordingForm(FlaskForm):
    """Staff's own wording of one email in one language (checked in the sandbox on submit)."""

    subject = StringField(
        _l("Subject"),
        filters=[strip],
        validators=[DataRequired(_l("Enter a subject.")), NoControlCharacters()],
    )
    body = TextAreaField(
        _l("Text"),
        validators=[DataRequired(_l("Enter the text of the email.")), NoControlCharacters()],
    )


class ButtonForm(FlaskForm):
    """A form that is only a button (publish, close, reopen, remove, reset): its CSRF token."""
