"""Forms of tenders: the desk opens a round; an invited installer bids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, StopValidation, ValidationError

from coop.actions.forms import (
    LocalDateField,
    LocalTimeField,
    MultiCheckboxField,
    NoControlCharacters,
    amsterdam_moment,
)
from coop.core.forms import EuroField, strip
from coop.installers.models import Installer
from coop.tenders.services import MAX_CAPACITY_HOMES, BidInput


class _AtLeastOne:
    """Like ``DataRequired``, without its "required" flag: that would put ``required`` on every
    box of the group, telling a screen reader (and the browser) that each one must be ticked."""

    def __call__(self, form: Any, field: Any) -> None:
        if not field.data:
            raise StopValidation(str(_l("Choose at least one installer.")))


class TenderForm(FlaskForm):
    # Nothing is ticked at first: whom to invite is the choice staff make here.
    installers = MultiCheckboxField(
        _l("Installers to invite"),
        coerce=int,
        choices=[],
        # An id outside the registry gets the service's own message, in the user's language.
        validate_choice=False,
        validators=[_AtLeastOne()],
    )
    deadline_on = LocalDateField(
        _l("Bids close on"), validators=[DataRequired(_l("Enter the date bids close."))]
    )
    deadline_at = LocalTimeField(
        _l("At"),
        default="17:00",
        validators=[DataRequired(_l("Enter the time bids close, like 17:00."))],
    )
    note = TextAreaField(
        _l("Note to the installers (optional)"),
        description=_l("Planning, conditions, who to call with questions."),
        validators=[
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )

    def __init__(self, *args: Any, installers: list[Installer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.installers.choices = [(i.id, f"{i.company_name} ({i.city})") for i in installers]

    def deadline(self) -> datetime:
        assert self.deadline_on.value and self.deadline_at.value
        return amsterdam_moment(self.deadline_on.value, self.deadline_at.value)


class DeadlineForm(FlaskForm):
    """A later deadline for a round that is taking bids."""

    deadline_on = LocalDateField(
        _l("New closing date"), validators=[DataRequired(_l("Enter the date bids close."))]
    )
    deadline_at = LocalTimeField(
        _l("At"),
        default="17:00",
        validators=[DataRequired(_l("Enter the time bids close, like 17:00."))],
    )

    def deadline(self) -> datetime:
        assert self.deadline_on.value and self.deadline_at.value
        return amsterdam_moment(self.deadline_on.value, self.deadline_at.value)


class CancelRoundForm(FlaskForm):
    message = TextAreaField(
        _l("Message to the invited installers"),
        description=_l("Why the round is cancelled, and whether a new one follows."),
        filters=[strip],
        validators=[
            DataRequired(_l("Say why the round is cancelled: the installers read it.")),
            Length(max=2000, message=_l("Use at most 2000 characters.")),
            NoControlCharacters(),
        ],
    )


# --- the installer's bid -------------------------------------------------------------------------


class _Homes:
    def __call__(self, form: Any, field: Any) -> None:
        raw = (field.data or "").strip()
        if raw and (not raw.isdigit() or not 1 <= int(raw) <= MAX_CAPACITY_HOMES):
            raise ValidationError(
                _l("Enter a whole number of homes from 1 to %(most)d.", most=MAX_CAPACITY_HOMES)
            )


class BidForm(FlaskForm):
    """A price per unit and a capacity in homes per measure of the action; made per action by
    ``bid_form``. A measure left empty is not offered."""

    measure_ids: tuple[int, ...] = ()

    def pair(self, measure_id: int) -> tuple[EuroField, StringField]:
        return getattr(self, f"price_{measure_id}"), getattr(self, f"capacity_{measure_id}")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        for measure_id in self.measure_ids:
            price, capacity = self.pair(measure_id)
            has_price = bool((price.data or "").strip())
            has_capacity = bool((capacity.data or "").strip())
            if has_price and not has_capacity and not capacity.errors:
                capacity.errors = [*capacity.errors, _l("Enter how many homes you can take.")]
                valid = False
            if has_capacity and not has_price and not price.errors:
                price.errors = [*price.errors, _l("Enter your price per unit.")]
                valid = False
        return valid

    def bids(self) -> dict[int, BidInput]:
        out = {}
        for measure_id in self.measure_ids:
            price, capacity = self.pair(measure_id)
            if price.cents is not None and (capacity.data or "").strip():
                out[measure_id] = BidInput(price.cents, int(capacity.data))
        return out


def bid_form(measures: list[tuple[int, str, str]], **kwargs: Any) -> BidForm:
    """``measures``: (action measure id, measure name, unit name) of the action."""

    class Form(BidForm):
        pass

    for measure_id, name, unit in measures:
        setattr(
            Form,
            f"price_{measure_id}",
            EuroField(
                _l("%(measure)s: price per %(unit)s, excluding VAT", measure=name, unit=unit)
            ),
        )
        setattr(
            Form,
            f"capacity_{measure_id}",
            StringField(
                _l("%(measure)s: homes you can take", measure=name),
                filters=[strip],
                validators=[_Homes()],
            ),
        )
    Form.measure_ids = tuple(m[0] for m in measures)
    return Form(**kwargs)
