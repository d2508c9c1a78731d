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
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    Optional,
)

from coop.actions.forms import (
    LocalDateField,
    MultiCheckboxField,
    NoControlCharacters,
)
from coop.core.address import normalise_postcode
from coop.core.forms import (
    PersonName,
    PlainText,
    addition_field,
    check_addition_once,
    house_number_and_addition,
    house_number_field,
    postcode_field,
    street_field,
    strip,
)
from coop.core.web import localized
from coop.participation.models import (
    SCALE_VALUES,
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
