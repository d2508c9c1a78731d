"""The staff's participation forms: meetings, surveys and their questions, interest campaigns,
a neighbourhood's compass and household counts."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from coop.actions.forms import (
    LocalDateField,
    LocalTimeField,
    MultiCheckboxField,
    NoControlCharacters,
    amsterdam_moment,
)
from coop.actions.models import Neighbourhood
from coop.core.forms import (
    PlainText,
    WholeNumberField,
    strip,
)
from coop.core.time import AMSTERDAM
from coop.participation.forms import (
    MEETING_KINDS,
    MEETING_LANGUAGES,
    PHASES,
    QUESTION_KINDS,
    STATE_LABELS,
)
from coop.participation.models import (
    CountDimension,
    Meeting,
    Perspective,
    QuestionKind,
)
from coop.registrations.forms import OWNERSHIPS

# --- the desk --------------------------------------------------------------------------------


def _title(label: Any, required: bool) -> StringField:
    validators: list[Any] = [
        Length(max=200, message=_l("Use at most 200 characters.")),
        PlainText(),
    ]
    if required:
        validators.insert(0, DataRequired(_l("Enter a title.")))
    return StringField(label, filters=[strip], validators=validators)


def _text(label: Any, limit: int = 5000) -> TextAreaField:
    return TextAreaField(
        label,
        filters=[strip],
        validators=[
            Length(max=limit, message=_l("Use at most %(n)d characters.", n=limit)),
            NoControlCharacters(),
        ],
    )


class NeighbourhoodChoice:
    neighbourhood: SelectField

    def set_neighbourhoods(self, neighbourhoods: list[Neighbourhood], optional: bool) -> None:
        choices = [SelectChoice(str(n.id), n.name) for n in neighbourhoods]
        if optional:
            choices.insert(0, SelectChoice("", _l("None")))
        self.neighbourhood.choices = choices

    def neighbourhood_id(self) -> int | None:
        value = self.neighbourhood.data
        return int(value) if value and str(value).isdigit() else None


class MeetingForm(FlaskForm, NeighbourhoodChoice):
    kind = SelectField(_l("Kind of meeting"), choices=MEETING_KINDS)
    title_nl = _title(_l("Title (Dutch)"), True)
    title_en = _title(_l("Title (English, optional)"), False)
    description_nl = _text(_l("Description (Dutch, optional)"))
    description_en = _text(_l("Description (English, optional)"))
    location = StringField(
        _l("Place"),
        description=_l("Address of the venue; leave empty for an online session."),
        filters=[strip],
        validators=[Length(max=300, message=_l("Use at most 300 characters.")), PlainText()],
    )
    online_url = URLField(
        _l("Link for online sessions"),
        description=_l("For example https://meet.example.nl/avond."),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=500, message=_l("Use at most 500 characters.")),
            URL(message=_l("Enter a web address starting with https://.")),
        ],
    )
    starts_on = LocalDateField(
        _l("Date"),
        description=_l("Date, like 2026-12-31."),
        validators=[DataRequired(_l("Enter the date."))],
    )
    starts_at = LocalTimeField(
        _l("Starts at"),
        description=_l("Time in the Netherlands, like 19:30."),
        validators=[DataRequired(_l("Enter the time it starts."))],
    )
    ends_at = LocalTimeField(
        _l("Ends at"),
        description=_l("Time in the Netherlands, like 21:30."),
        validators=[DataRequired(_l("Enter the time it ends."))],
    )
    capacity = WholeNumberField(
        _l("Places"),
        invalid_message=_l("Enter a number from 1 to 10000."),
        validators=[
            InputRequired(_l("Enter the number of places.")),
            NumberRange(min=1, max=10000, message=_l("Enter a number from 1 to 10000.")),
        ],
    )
    language = SelectField(_l("Language"), choices=MEETING_LANGUAGES)
    neighbourhood = SelectField(_l("Neighbourhood (optional)"), choices=[])

    def validate_online_url(self, field: URLField) -> None:
        if field.data and not field.data.lower().startswith("https://"):
            raise ValidationError(_l("Enter a web address starting with https://."))

    def fill_from(self, meeting: Meeting) -> None:
        """The form as the meeting is now, for changing it (times on the clocks in Amsterdam)."""
        for name in (
            "title_nl",
            "title_en",
            "description_nl",
            "description_en",
            "location",
            "online_url",
        ):
            getattr(self, name).data = getattr(meeting, name) or ""
        self.kind.data = meeting.kind.value
        self.language.data = meeting.language.value
        self.capacity.data = meeting.capacity
        self.neighbourhood.data = str(meeting.neighbourhood_id or "")
        starts = meeting.starts_at.astimezone(AMSTERDAM)
        ends = meeting.ends_at.astimezone(AMSTERDAM)
        self.starts_on.data = starts.date().isoformat()
        self.starts_at.data = starts.strftime("%H:%M")
        self.ends_at.data = ends.strftime("%H:%M")

    def moments(self) -> tuple[Any, Any]:
        day = self.starts_on.value
        assert day is not None and self.starts_at.value and self.ends_at.value
        return amsterdam_moment(day, self.starts_at.value), amsterdam_moment(
            day, self.ends_at.value
        )


class CancelMeetingForm(FlaskForm):
    message = TextAreaField(
        _l("Message to the people who signed up (optional)"),
        description=_l("For example why, and whether a new date follows. It goes in the email."),
        filters=[strip],
        validators=[
            Length(max=2000, message=_l("Use at most %(n)d characters.", n=2000)),
            NoControlCharacters(),
        ],
    )


class AttendanceForm(FlaskForm):
    attended = MultiCheckboxField(_l("Who came"), coerce=int, choices=[])


class FollowUpForm(FlaskForm):
    subject = StringField(
        _l("Subject"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a subject.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
            NoControlCharacters(),
        ],
    )
    body = TextAreaField(
        _l("Text"),
        description=_l("For example the link to the slides and the next steps."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the text of the email.")),
            Length(max=10000, message=_l("Use at most %(n)d characters.", n=10000)),
            NoControlCharacters(),
        ],
    )


class SurveyForm(FlaskForm, NeighbourhoodChoice):
    neighbourhood = SelectField(
        _l("Neighbourhood"), choices=[], validators=[DataRequired(_l("Choose a neighbourhood."))]
    )
    title_nl = _title(_l("Title (Dutch)"), True)
    title_en = _title(_l("Title (English, optional)"), False)
    intro_nl = _text(_l("Introduction (Dutch, optional)"))
    intro_en = _text(_l("Introduction (English, optional)"))


class QuestionForm(FlaskForm):
    kind = SelectField(_l("Kind of question"), choices=QUESTION_KINDS)
    text_nl = StringField(
        _l("Question (Dutch)"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the question.")),
            Length(max=500, message=_l("Use at most 500 characters.")),
            PlainText(),
        ],
    )
    text_en = StringField(
        _l("Question (English, optional)"),
        filters=[strip],
        validators=[Length(max=500, message=_l("Use at most 500 characters.")), PlainText()],
    )
    required = BooleanField(_l("An answer is required"), default=True)
    options_nl = TextAreaField(
        _l("Options (Dutch)"),
        description=_l("For a choice question: one option per line, 2 to 12 options."),
        filters=[strip],
        validators=[Length(max=3000, message=_l("Use at most 3000 characters.")), PlainText()],
    )
    options_en = TextAreaField(
        _l("Options (English, optional)"),
        description=_l("In the same order, one per line."),
        filters=[strip],
        validators=[Length(max=3000, message=_l("Use at most 3000 characters.")), PlainText()],
    )

    def option_pairs(self) -> list[tuple[str, str]]:
        dutch = [line.strip() for line in (self.options_nl.data or "").splitlines() if line.strip()]
        english = [
            line.strip() for line in (self.options_en.data or "").splitlines() if line.strip()
        ]
        return [(nl, english[i] if i < len(english) else "") for i, nl in enumerate(dutch)]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        kind = self.kind.data
        pairs = self.option_pairs()
        if kind in (QuestionKind.SINGLE.value, QuestionKind.MULTIPLE.value):
            if not 2 <= len(pairs) <= 12:
                self.options_nl.errors = [
                    *self.options_nl.errors,
                    str(_l("Give 2 to 12 options, one per line.")),
                ]
                valid = False
            elif any(len(nl) > 200 or len(en) > 200 for nl, en in pairs):
                self.options_nl.errors = [
                    *self.options_nl.errors,
                    str(_l("An option is at most 200 characters.")),
                ]
                valid = False
        return valid


class CampaignForm(FlaskForm, NeighbourhoodChoice):
    neighbourhood = SelectField(
        _l("Neighbourhood"), choices=[], validators=[DataRequired(_l("Choose a neighbourhood."))]
    )
    title_nl = _title(_l("Title (Dutch)"), True)
    title_en = _title(_l("Title (English, optional)"), False)
    description_nl = _text(_l("Description (Dutch, optional)"))
    description_en = _text(_l("Description (English, optional)"))
    household_count = WholeNumberField(
        _l("Households in the area"),
        description=_l(
            "The threshold is a share of these. Leave empty to use the neighbourhood's."
        ),
        validators=[
            Optional(),
            NumberRange(min=1, max=1_000_000, message=_l("Enter a number from 1 to 1000000.")),
        ],
    )
    threshold_percent = WholeNumberField(
        _l("Threshold in percent of the households"),
        validators=[
            InputRequired(_l("Enter the threshold.")),
            NumberRange(min=1, max=100, message=_l("Enter a percentage from 1 to 100.")),
        ],
    )
    deadline_on = LocalDateField(
        _l("Deadline"),
        description=_l(
            "Date, like 2026-12-31; interest can be registered until the end of that day."
        ),
        validators=[DataRequired(_l("Enter the deadline."))],
    )


def compass_form_for(**kwargs: Any) -> Any:
    """The phase, whether the page is public, the introduction, and per perspective its state
    and a short explanation."""
    fields: dict[str, Any] = {
        "phase": SelectField(_l("Current phase"), choices=PHASES),
        "is_public": BooleanField(_l("Show the neighbourhood page to everyone")),
        "intro_nl": _text(_l("Introduction (Dutch, optional)"), 3000),
        "intro_en": _text(_l("Introduction (English, optional)"), 3000),
    }
    for perspective in Perspective:
        fields[f"{perspective.value}_state"] = SelectField(
            _l("State"),
            choices=[SelectChoice(s.value, label) for s, label in STATE_LABELS.items()],
        )
        fields[f"{perspective.value}_nl"] = _text(_l("Explanation (Dutch)"), 1000)
        fields[f"{perspective.value}_en"] = _text(_l("Explanation (English, optional)"), 1000)
    return type("CompassForm", (FlaskForm,), fields)(**kwargs)


def household_counts_form_for(neighbourhood: Neighbourhood, **kwargs: Any) -> Any:
    """One whole-number field per PC4 and per ownership type; empty means unknown."""
    fields: dict[str, Any] = {"pc4_keys": [], "ownership_keys": []}
    number = [
        Optional(),
        NumberRange(min=0, max=1_000_000, message=_l("Enter a number from 0 to 1000000.")),
    ]
    for pc4 in neighbourhood.pc4_list:
        fields[f"pc4_{pc4}"] = WholeNumberField(
            _l("Households in %(pc4)s", pc4=pc4), validators=list(number)
        )
        fields["pc4_keys"].append(pc4)
    for choice in OWNERSHIPS:
        fields[f"ownership_{choice.value}"] = WholeNumberField(
            choice.label, validators=list(number)
        )
        fields["ownership_keys"].append(choice.value)
    form = type("HouseholdCountsForm", (FlaskForm,), fields)(**kwargs)
    return form


def household_counts_of(form: Any) -> dict[CountDimension, dict[str, int | None]]:
    return {
        CountDimension.PC4: {p: getattr(form, f"pc4_{p}").data for p in form.pc4_keys},
        CountDimension.OWNERSHIP: {
            o: getattr(form, f"ownership_{o}").data for o in form.ownership_keys
        },
    }
