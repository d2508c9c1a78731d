"""Forms of participation: the public RSVP, interest and survey forms, the ambassador's forms,
and the desk's forms for meetings, surveys, campaigns and the neighbourhood page."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
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
from coop.core.address import normalise_postcode
from coop.core.forms import (
    PersonName,
    PlainText,
    WholeNumberField,
    addition_field,
    check_addition_once,
    house_number_and_addition,
    house_number_field,
    postcode_field,
    street_field,
    strip,
)
from coop.core.time import AMSTERDAM
from coop.core.web import localized
from coop.participation.models import (
    SCALE_VALUES,
    CountDimension,
    Meeting,
    MeetingKind,
    MeetingLanguage,
    Perspective,
    PerspectiveState,
    QuestionKind,
    Survey,
    WijkPhase,
)
from coop.participation.services import HouseholdAddress
from coop.participation.surveys import AnswerValue
from coop.registrations.forms import OWNERSHIPS
from coop.registrations.models import Ownership

MEETING_KINDS = [
    SelectChoice(MeetingKind.INFORMATION_EVENING.value, _l("Information evening")),
    SelectChoice(MeetingKind.STREET_MEETING.value, _l("Street meeting")),
    SelectChoice(MeetingKind.ONLINE.value, _l("Online session")),
]
MEETING_LANGUAGES = [
    SelectChoice(MeetingLanguage.DUTCH.value, _l("Dutch")),
    SelectChoice(MeetingLanguage.ENGLISH.value, _l("English")),
    SelectChoice(MeetingLanguage.BOTH.value, _l("Dutch and English")),
]
QUESTION_KINDS = [
    SelectChoice(QuestionKind.SINGLE.value, _l("Single choice")),
    SelectChoice(QuestionKind.MULTIPLE.value, _l("Multiple choice")),
    SelectChoice(QuestionKind.SCALE.value, _l("Scale from 1 to 5")),
    SelectChoice(QuestionKind.OPEN.value, _l("Open text")),
]
PHASES = [
    SelectChoice(WijkPhase.STARTING.value, _l("1. Starting together")),
    SelectChoice(WijkPhase.EXPLORING.value, _l("2. Exploring the neighbourhood")),
    SelectChoice(WijkPhase.PLANNING.value, _l("3. Making the plan")),
    SelectChoice(WijkPhase.DECIDING.value, _l("4. Deciding")),
    SelectChoice(WijkPhase.PREPARING.value, _l("5. Preparing the work")),
    SelectChoice(WijkPhase.REALISATION.value, _l("6. Realisation and aftercare")),
]
PERSPECTIVE_LABELS = {
    Perspective.RESIDENTS: _l("Residents take part"),
    Perspective.BUSINESS_OWNERS: _l("Business property owners take part"),
    Perspective.DECISION_MAKING: _l("Decision making is smooth and transparent"),
    Perspective.AFFORDABLE: _l("The switch is affordable and financeable"),
    Perspective.FITTING_OFFER: _l("Every building has a fitting offer"),
    Perspective.RELIABLE_NETWORK: _l("The energy network is reliable"),
}
STATE_LABELS = {
    PerspectiveState.NOT_STARTED: _l("Not started yet"),
    PerspectiveState.ATTENTION: _l("Needs attention"),
    PerspectiveState.ON_TRACK: _l("On track"),
    PerspectiveState.ACHIEVED: _l("In order"),
}
SCALE_HINT = _l("1 means not at all, 5 means very much.")

CONTACT_OPT_IN_LABEL = _l(
    "A neighbour ambassador from my street may contact me about the heat transition "
    "(optional; they see my name, address and email address)."
)


def _email_field(description: Any = None) -> EmailField:
    return EmailField(
        _l("Email address"),
        description=description,
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )


def _name_field(label: Any = None, required: bool = True) -> StringField:
    validators: list[Any] = [
        Length(max=120, message=_l("Use at most 120 characters.")),
        PersonName(),
    ]
    if required:
        validators.insert(0, DataRequired(_l("Enter your name.")))
    return StringField(label or _l("Your name"), filters=[strip], validators=validators)


class RsvpForm(FlaskForm):
    name = _name_field()
    email = _email_field(_l("We send the confirmation and a reminder the day before."))
    consent = BooleanField(
        _l(
            "I agree that the organiser uses my name and email address for this meeting. "
            "They are erased some weeks after it."
        ),
        validators=[DataRequired(_l("Tick the box to agree, or we cannot save your place."))],
    )


class ButtonForm(FlaskForm):
    """A form that is only a button (cancel, withdraw, open, close, approve): its CSRF token."""


class AddressFields(FlaskForm):
    """The household's address: the key of one answer or one interest per household."""

    postcode = postcode_field()
    house_number = house_number_field()
    house_number_addition = addition_field()
    street = street_field()

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        return check_addition_once(self.house_number, self.house_number_addition) and valid

    def household_address(self) -> HouseholdAddress:
        number, addition = house_number_and_addition(self.house_number, self.house_number_addition)
        return HouseholdAddress(
            postcode=normalise_postcode(self.postcode.data) or "",
            house_number=number,
            addition=addition,
            street=" ".join(self.street.data.split()),
        )


class PledgeForm(AddressFields):
    name = _name_field()
    email = _email_field(_l("We confirm your interest and tell you when the threshold is reached."))
    contact_opt_in = BooleanField(CONTACT_OPT_IN_LABEL)
    consent = BooleanField(
        _l(
            "I agree that the energy desk uses these details to count our household's interest "
            "in a heat network and to keep me informed. I can withdraw at any time."
        ),
        validators=[DataRequired(_l("Tick the box to agree, or we cannot count your interest."))],
    )


# --- surveys ---------------------------------------------------------------------------------


def question_field_name(question_id: int) -> str:
    return f"q_{question_id}"


class SurveyAnswersForm(FlaskForm):
    """The questions of one survey, added per survey by ``survey_form_for``."""

    question_ids: list[int] = []
    kinds: dict[int, QuestionKind] = {}
    contact_opt_in = BooleanField(CONTACT_OPT_IN_LABEL)

    def question_fields(self) -> list[tuple[Any, QuestionKind]]:
        return [(getattr(self, question_field_name(i)), self.kinds[i]) for i in self.question_ids]

    def answers(self) -> dict[int, AnswerValue]:
        values: dict[int, AnswerValue] = {}
        for question_id in self.question_ids:
            data = getattr(self, question_field_name(question_id)).data
            kind = self.kinds[question_id]
            if kind is QuestionKind.MULTIPLE:
                values[question_id] = [int(v) for v in data or []]
            elif kind in (QuestionKind.SINGLE, QuestionKind.SCALE):
                values[question_id] = int(data) if data not in (None, "", "None") else None
            else:
                values[question_id] = (data or "").strip() or None
        return values


class SurveyResponseForm(SurveyAnswersForm, AddressFields):
    ownership = RadioField(
        _l("Do you own or rent the home?"),
        description=_l("So that the desk can see whether it reaches owners and tenants alike."),
        choices=OWNERSHIPS,
        validators=[InputRequired(_l("Choose whether you own or rent the home."))],
    )
    name = _name_field(_l("Your name (optional)"), required=False)
    email = _email_field(_l("We send you a link to change your answers until the survey closes."))
    consent = BooleanField(
        _l(
            "I agree that the energy desk uses my answers and address for this survey. "
            "Results are only shown for groups of at least five households."
        ),
        validators=[DataRequired(_l("Tick the box to agree, or we cannot save your answers."))],
    )

    def ownership_value(self) -> Ownership:
        return Ownership(self.ownership.data)


def _question_fields(survey: Survey) -> dict[str, Any]:
    fields: dict[str, Any] = {"question_ids": [], "kinds": {}}
    for question in survey.questions:
        label = localized(question, "text")
        required = question.required
        message = _l("Answer this question.")
        name = question_field_name(question.id)
        if question.kind is QuestionKind.OPEN:
            fields[name] = TextAreaField(
                label,
                filters=[strip],
                validators=[
                    *([DataRequired(message)] if required else [Optional()]),
                    Length(max=2000, message=_l("Use at most 2000 characters.")),
                    NoControlCharacters(),
                ],
            )
        elif question.kind is QuestionKind.MULTIPLE:
            fields[name] = MultiCheckboxField(
                label,
                coerce=int,
                choices=[SelectChoice(o.id, localized(o, "text")) for o in question.options],
                validators=[DataRequired(_l("Choose at least one."))] if required else [Optional()],
            )
        else:
            choices = (
                [SelectChoice(str(v), str(v)) for v in SCALE_VALUES]
                if question.kind is QuestionKind.SCALE
                else [SelectChoice(str(o.id), localized(o, "text")) for o in question.options]
            )
            fields[name] = RadioField(
                label,
                choices=choices,
                description=SCALE_HINT if question.kind is QuestionKind.SCALE else None,
                validators=[InputRequired(_l("Choose one."))] if required else [Optional()],
                validate_choice=True,
            )
        fields["question_ids"].append(question.id)
        fields["kinds"][question.id] = question.kind
    return fields


def survey_form_for(survey: Survey, *, household: bool, **kwargs: Any) -> SurveyAnswersForm:
    """The form for a new response (with the household's details) or for changing one."""
    base: type[SurveyAnswersForm] = SurveyResponseForm if household else SurveyAnswersForm
    form_class = type(f"{base.__name__}ForSurvey{survey.id}", (base,), _question_fields(survey))
    form: SurveyAnswersForm = form_class(**kwargs)
    return form


def form_data_from(answers: dict[int, AnswerValue]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for question_id, value in answers.items():
        name = question_field_name(question_id)
        data[name] = value if isinstance(value, list) else (None if value is None else str(value))
    return data


# --- ambassadors -----------------------------------------------------------------------------


class VolunteerForm(FlaskForm):
    street = RadioField(
        _l("Which street?"),
        description=_l("You can be the ambassador of a street where you registered your home."),
        choices=[],
        validators=[InputRequired(_l("Choose your street."))],
    )
    motivation = TextAreaField(
        _l("What would you like to do for your neighbours? (optional)"),
        filters=[strip],
        validators=[Length(max=1000, message=_l("Use at most 1000 characters.")), PlainText()],
    )
    promise = BooleanField(
        _l(
            "I use my neighbours' details only to talk with them about the heat transition, "
            "and never pass them on."
        ),
        validators=[DataRequired(_l("Tick the box to promise this."))],
    )


class ContactForm(FlaskForm):
    neighbour = SelectField(
        _l("Neighbour"), choices=[], validators=[DataRequired(_l("Choose the neighbour."))]
    )
    contacted_on = LocalDateField(
        _l("Date of the conversation"),
        description=_l("Date, like 2026-12-31."),
        validators=[DataRequired(_l("Enter the date of the conversation."))],
    )
    note = TextAreaField(
        _l("Note (optional)"),
        description=_l("Short, and nothing the neighbour would not want the desk to read."),
        filters=[strip],
        validators=[Length(max=1000, message=_l("Use at most 1000 characters.")), PlainText()],
    )


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
