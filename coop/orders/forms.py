"""Forms of orders on the desk: start a matching run, and move or split a batch."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import NumberRange, ValidationError

from coop.core.forms import strip


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
