"""Forms of tenders: the desk opens a round."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from coop.actions.forms import (
    LocalDateField,
    LocalTimeField,
    MultiCheckboxField,
    NoControlCharacters,
    amsterdam_moment,
)
from coop.installers.models import Installer


class TenderForm(FlaskForm):
    installers = MultiCheckboxField(
        _l("Installers to invite"),
        coerce=int,
        choices=[],
        validators=[DataRequired(_l("Choose at least one installer."))],
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
