"""Participation pages for residents and the public: the neighbourhood page, meetings and RSVPs,
surveys, interest campaigns, the links from their emails, and the ambassador's page (the staff's
pages are ``desk_views``).

Thin: parse, authorise (``require`` / role guards), call a service, render.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import format_decimal, format_number, format_percent, get_locale, gettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from coop.accounts.permissions import resident_required
from coop.actions import services as actions
from coop.core import address_lookup
from coop.core.authz import authorize, require
from coop.core.forms import address_looked_up
from coop.core.time import utcnow
from coop.core.web import localized
from coop.extensions import db, limiter
from coop.participation import ambassadors, interest, meetings, neighbourhoods, surveys
from coop.participation import jobs as participation_jobs
from coop.participation.forms import (
    PERSPECTIVE_LABELS,
    STATE_LABELS,
    ButtonForm,
    ContactForm,
    PledgeForm,
    RsvpForm,
    SurveyResponseForm,
    VolunteerForm,
    form_data_from,
    question_field_name,
    survey_form_for,
)
from coop.participation.models import (
    Meeting,
    MeetingKind,
    MeetingLanguage,
    QuestionKind,
    Rsvp,
    RsvpStatus,
    SurveyStatus,
    WijkPhase,
)
from coop.participation.services import ParticipationError, id_from_token
from coop.registrations.desk_services import OWNERSHIP_LABELS
from coop.registrations.models import Ownership

bp = Blueprint("participation", __name__)

MESSAGES: dict[str, Callable[[], str]] = {
    "no_consent": lambda: gettext("Tick the box to agree, or we cannot save this."),
    "meeting_started": lambda: gettext(
        "This meeting has started or is over; you can no longer sign up."
    ),
    "already_rsvped": lambda: gettext(
        "This email address is already on the list for this meeting. "
        "The email we sent you has a link to see or cancel your place."
    ),
    "already_cancelled": lambda: gettext("This place was already cancelled."),
    "meeting_not_started": lambda: gettext("This can be done once the meeting has started."),
    "follow_up_sent": lambda: gettext("The email to the attendees has already been sent."),
    "no_attendees": lambda: gettext(
        "Nobody is ticked as having come, so there is nobody to email."
    ),
    "ends_before_start": lambda: gettext("The end must be after the start."),
    "starts_in_past": lambda: gettext("Choose a moment in the future."),
    "online_needs_link": lambda: gettext("An online session needs a link."),
    "needs_location": lambda: gettext("A meeting in person needs a place."),
    "capacity_positive": lambda: gettext("Enter a number from 1 to 10000."),
    "meeting_taken_place": lambda: gettext(
        "This meeting has started or has taken place, so it can no longer be changed or cancelled."
    ),
    "meeting_cancelled": lambda: gettext(
        "This meeting is cancelled: signing up and changes are no longer possible."
    ),
    "survey_not_open": lambda: gettext("This survey is closed; answers can no longer be changed."),
    "survey_not_draft": lambda: gettext("Questions can only be changed before the survey opens."),
    "no_questions": lambda: gettext("Add at least one question before opening the survey."),
    "too_many_questions": lambda: gettext("A survey has at most 30 questions."),
    "options_needed": lambda: gettext("Give 2 to 12 options, one per line."),
    "outside_neighbourhood": lambda: gettext(
        "This postcode is not in this neighbourhood. Check the postcode."
    ),
    "already_responded": lambda: gettext(
        "Your household has already answered this survey. The email we sent after the first "
        "answer has a link to change the answers."
    ),
    "answer_missing": lambda: gettext("Answer this question."),
    "answer_invalid": lambda: gettext("Choose one of the options."),
    "too_few_responses": lambda: gettext(
        "Open answers can be exported from five responses on, so that nobody can be recognised."
    ),
    "campaign_closed": lambda: gettext("The deadline of this campaign has passed."),
    "already_interested": lambda: gettext(
        "Your household's interest is already registered. The email we sent has a link to "
        "withdraw it."
    ),
    "already_withdrawn": lambda: gettext("This interest was already withdrawn."),
    "deadline_past": lambda: gettext("Choose a deadline in the future."),
    "households_needed": lambda: gettext(
        "Enter the number of households, or set it for the neighbourhood first."
    ),
    "threshold_range": lambda: gettext("Enter a percentage from 1 to 100."),
    "not_your_street": lambda: gettext("Choose one of your own streets."),
    "already_volunteered": lambda: gettext("You have already volunteered for this street."),
    "not_a_resident": lambda: gettext("Only residents can be ambassadors."),
    "not_volunteered": lambda: gettext("This ambassador has already been approved."),
    "not_your_neighbour": lambda: gettext("Choose one of the neighbours on your list."),
    "contact_in_future": lambda: gettext("The date of the conversation cannot be in the future."),
}


def message(error: ParticipationError) -> str:
    return MESSAGES[error.code]()


def _language() -> str:
    locale = str(get_locale() or "nl")
    return locale if locale in ("nl", "en") else "nl"


def _public_limit() -> str:
    return str(current_app.config["RATELIMIT_SIGNUP"])


def _accepted(response: Any) -> bool:
    """Only a form that was taken counts towards the limit; one sent back for a typing error
    does not (a full information evening shares one Wi-Fi address)."""
    return bool(response.status_code == 302)


def _count(value: int) -> str:
    return str(format_number(value))


def _percent(share: float | None) -> str:
    return gettext("unknown") if share is None else str(format_percent(share, "#,##0.0%"))


KIND_LABELS = {
    MeetingKind.INFORMATION_EVENING: lambda: gettext("Information evening"),
    MeetingKind.STREET_MEETING: lambda: gettext("Street meeting"),
    MeetingKind.ONLINE: lambda: gettext("Online session"),
}
LANGUAGE_LABELS = {
    MeetingLanguage.DUTCH: lambda: gettext("in Dutch"),
    MeetingLanguage.ENGLISH: lambda: gettext("in English"),
    MeetingLanguage.BOTH: lambda: gettext("in Dutch and English"),
}
SURVEY_STATUS_LABELS = {
    SurveyStatus.DRAFT: lambda: gettext("draft"),
    SurveyStatus.OPEN: lambda: gettext("open"),
    SurveyStatus.CLOSED: lambda: gettext("closed"),
}
QUESTION_KIND_LABELS = {
    QuestionKind.SINGLE: lambda: gettext("single choice"),
    QuestionKind.MULTIPLE: lambda: gettext("multiple choice"),
    QuestionKind.SCALE: lambda: gettext("scale from 1 to 5"),
    QuestionKind.OPEN: lambda: gettext("open text"),
}
RSVP_STATUS_LABELS = {
    RsvpStatus.CONFIRMED: lambda: gettext("has a place"),
    RsvpStatus.WAITING: lambda: gettext("on the waiting list"),
    RsvpStatus.CANCELLED: lambda: gettext("cancelled"),
}
PHASE_NAMES = {
    WijkPhase.STARTING: lambda: gettext("Starting together"),
    WijkPhase.EXPLORING: lambda: gettext("Exploring the neighbourhood"),
    WijkPhase.PLANNING: lambda: gettext("Making the plan"),
    WijkPhase.DECIDING: lambda: gettext("Deciding"),
    WijkPhase.PREPARING: lambda: gettext("Preparing the work"),
    WijkPhase.REALISATION: lambda: gettext("Realisation and aftercare"),
}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "meeting_kind_label": lambda kind: KIND_LABELS[kind](),
        "meeting_language_label": lambda language: LANGUAGE_LABELS[language](),
        "phase_name": lambda phase: PHASE_NAMES[phase](),
        "perspective_label": lambda p: str(PERSPECTIVE_LABELS[p]),
        "perspective_state_label": lambda s: str(STATE_LABELS[s]),
        "ownership_label": lambda value: str(OWNERSHIP_LABELS[Ownership(value)]),
        "PHASES": list(WijkPhase),
        "RsvpStatus": RsvpStatus,
        "survey_status_label": lambda status: SURVEY_STATUS_LABELS[status](),
        "question_kind_label": lambda kind: QUESTION_KIND_LABELS[kind](),
        "rsvp_status_label": lambda status: RSVP_STATUS_LABELS[status](),
        "fmt_percent": _percent,
        "fmt_number": lambda value: str(format_number(value)),
        "fmt_decimal": lambda value, pattern: str(format_decimal(value, pattern)),
    }


# --- the neighbourhood page ------------------------------------------------------------------


@bp.get("/neighbourhoods/<int:neighbourhood_id>")
def neighbourhood(neighbourhood_id: int) -> str:
    profile = neighbourhoods.profile_for_page(neighbourhood_id)
    require(current_user, profile, "view")
    assert profile is not None
    return render_template(
        "participation/neighbourhood.html",
        page=neighbourhoods.page(profile),
        savings=neighbourhoods.SAVINGS,
        co2_factor=neighbourhoods.CO2_KG_PER_M3_GAS,
        measure_names=_measure_names(),
    )


def _measure_names() -> dict[str, str]:
    return {m.code: localized(m, "name") for m in actions.catalogue()}


# --- meetings --------------------------------------------------------------------------------


def _meeting(meeting_id: int, action: str = "view") -> Meeting:
    meeting = meetings.get_meeting(meeting_id)
    require(current_user, meeting, action)
    assert meeting is not None
    return meeting


@bp.route("/meetings/<int:meeting_id>", methods=["GET", "POST"])
@limiter.limit(_public_limit, methods=["POST"], deduct_when=_accepted)
def meeting(meeting_id: int) -> Any:
    item = _meeting(meeting_id)
    form = RsvpForm()
    problem = None
    if form.validate_on_submit():
        try:
            entry = meetings.rsvp(
                item,
                name=form.name.data,
                email=form.email.data,
                language=_language(),
                consent=bool(form.consent.data),
            )
        except ParticipationError as exc:
            problem = message(exc)
            if exc.code == "already_rsvped":
                form.email.errors = [problem]
                problem = None
        else:
            if entry.status is RsvpStatus.CONFIRMED:
                flash(
                    gettext("Your place is booked. We have sent you a confirmation by email."),
                    "success",
                )
            else:
                flash(
                    gettext(
                        "The meeting is full: you are on the waiting list. We email you as "
                        "soon as a place becomes free."
                    ),
                    "success",
                )
            return redirect(url_for("participation.meeting", meeting_id=item.id))
        item = _meeting(meeting_id)
    return render_template(
        "participation/meeting.html",
        meeting=item,
        form=form,
        problem=problem,
        places_left=meetings.places_left(item),
        over=meetings.is_over(item),
        started=item.starts_at <= utcnow(),
    )


@bp.get("/meetings/<int:meeting_id>/calendar.ics")
def meeting_calendar(meeting_id: int) -> Response:
    item = _meeting(meeting_id)
    filename, mimetype, data = participation_jobs.meeting_ics(item, _language())
    return Response(
        data,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _rsvp_by_token(token: str) -> Any:
    rsvp_id = id_from_token("rsvp", token)
    entry = db.session.get(Rsvp, rsvp_id) if rsvp_id else None
    if entry is None or entry.email is None:
        abort(404)
    return entry


@bp.route("/meetings/rsvp/<token>", methods=["GET", "POST"])
def my_rsvp(token: str) -> Any:
    """The link in the RSVP emails: see your place, or cancel it."""
    entry = _rsvp_by_token(token)
    form = ButtonForm()
    if form.validate_on_submit():
        try:
            meetings.cancel_rsvp(entry)
        except ParticipationError as exc:
            flash(message(exc), "error")
        else:
            flash(gettext("Your place is cancelled. Thank you for letting us know."), "success")
        return redirect(url_for("participation.my_rsvp", token=token))
    return render_template(
        "participation/my_rsvp.html",
        rsvp=entry,
        meeting=entry.meeting,
        form=form,
        started=entry.meeting.starts_at <= utcnow(),
    )


# --- surveys ---------------------------------------------------------------------------------


def _survey(survey_id: int, action: str = "view") -> Any:
    survey = surveys.get_survey(survey_id)
    require(current_user, survey, action)
    return survey


def _answer_problem(form: Any, exc: ParticipationError) -> str | None:
    """A rule's message at the question it is about, else for the top of the form."""
    question_id = exc.details.get("question_id")
    if question_id is not None:
        field = getattr(form, question_field_name(question_id), None)
        if field is not None:
            field.errors = [message(exc)]
            return None
    if exc.code == "outside_neighbourhood" and hasattr(form, "postcode"):
        form.postcode.errors = [message(exc)]
        return None
    return message(exc)


@bp.route("/surveys/<int:survey_id>", methods=["GET", "POST"])
@limiter.limit(_public_limit, methods=["POST"], deduct_when=_accepted)
def survey(survey_id: int) -> Any:
    item = _survey(survey_id)
    if item.status is not SurveyStatus.OPEN:
        return render_template("participation/survey_closed.html", survey=item)
    form = survey_form_for(item, household=True)
    assert isinstance(form, SurveyResponseForm)
    problem = None
    looked_up = address_looked_up(form, item.organisation_id)
    if not looked_up and form.validate_on_submit():
        try:
            surveys.respond(
                item,
                surveys.Respondent(
                    address=form.household_address(),
                    ownership=form.ownership_value(),
                    name=form.name.data or "",
                    email=form.email.data,
                    language=_language(),
                    contact_opt_in=bool(form.contact_opt_in.data),
                    consent=bool(form.consent.data),
                ),
                form.answers(),
            )
        except ParticipationError as exc:
            problem = _answer_problem(form, exc)
        else:
            return redirect(url_for("participation.survey_thanks", survey_id=item.id))
    return render_template(
        "participation/survey.html",
        survey=item,
        form=form,
        problem=problem,
        editing=False,
        looked_up=looked_up,
        address_lookup=address_lookup.enabled(item.organisation_id),
    )


@bp.get("/surveys/<int:survey_id>/thanks")
def survey_thanks(survey_id: int) -> str:
    return render_template("participation/survey_thanks.html", survey=_survey(survey_id))


@bp.route("/surveys/response/<token>", methods=["GET", "POST"])
def my_response(token: str) -> Any:
    """The link in the survey email: change the household's answers while the survey is open."""
    response_id = id_from_token("response", token)
    response = surveys.get_response(response_id) if response_id else None
    if response is None:
        abort(404)
    item = surveys.get_survey(response.survey_id)
    assert item is not None
    if item.status is not SurveyStatus.OPEN:
        return render_template("participation/survey_closed.html", survey=item)
    initial = form_data_from(surveys.answers_of(response))
    initial["contact_opt_in"] = response.contact_opt_in
    form = survey_form_for(item, household=False, data=initial)
    problem = None
    if form.validate_on_submit():
        try:
            surveys.update_response(
                response, form.answers(), contact_opt_in=bool(form.contact_opt_in.data)
            )
        except ParticipationError as exc:
            problem = _answer_problem(form, exc)
        else:
            flash(gettext("Your changed answers are saved."), "success")
            return redirect(url_for("participation.my_response", token=token))
    return render_template(
        "participation/survey.html",
        survey=item,
        form=form,
        problem=problem,
        editing=True,
        response=response,
    )


# --- interest campaigns ----------------------------------------------------------------------


@bp.route("/interest/<int:campaign_id>", methods=["GET", "POST"])
@limiter.limit(_public_limit, methods=["POST"], deduct_when=_accepted)
def campaign(campaign_id: int) -> Any:
    item = interest.get_campaign(campaign_id)
    require(current_user, item, "view")
    assert item is not None
    form = PledgeForm()
    problem = None
    open_now = item.is_open(utcnow())
    looked_up = open_now and address_looked_up(form, item.organisation_id)
    if open_now and not looked_up and form.validate_on_submit():
        try:
            interest.pledge(
                item,
                address=form.household_address(),
                name=form.name.data,
                email=form.email.data,
                language=_language(),
                contact_opt_in=bool(form.contact_opt_in.data),
                consent=bool(form.consent.data),
            )
        except ParticipationError as exc:
            problem = message(exc)
            if exc.code == "outside_neighbourhood":
                form.postcode.errors = [problem]
                problem = None
            elif exc.code == "already_interested":
                form.house_number.errors = [problem]
                problem = None
        else:
            flash(
                gettext(
                    "Thank you: your household's interest is counted. We have sent you an email."
                ),
                "success",
            )
            return redirect(url_for("participation.campaign", campaign_id=item.id))
        item = interest.get_campaign(campaign_id)
        assert item is not None
    return render_template(
        "participation/campaign.html",
        campaign=item,
        progress=interest.progress(item),
        form=form,
        problem=problem,
        open_now=open_now,
        looked_up=looked_up,
        address_lookup=address_lookup.enabled(item.organisation_id),
    )


@bp.route("/interest/pledge/<token>", methods=["GET", "POST"])
def my_pledge(token: str) -> Any:
    """The link in the interest emails: withdraw the household's interest at any time."""
    pledge_id = id_from_token("pledge", token)
    entry = interest.get_pledge(pledge_id) if pledge_id else None
    if entry is None:
        abort(404)
    form = ButtonForm()
    if form.validate_on_submit():
        try:
            interest.withdraw(entry)
        except ParticipationError as exc:
            flash(message(exc), "error")
        else:
            flash(gettext("Your interest is withdrawn."), "success")
        return redirect(url_for("participation.my_pledge", token=token))
    return render_template(
        "participation/my_pledge.html", pledge=entry, campaign=entry.campaign, form=form
    )


# --- neighbour ambassadors -------------------------------------------------------------------


@bp.route("/my/ambassador", methods=["GET", "POST"])
@resident_required
def ambassador() -> Any:
    user = current_user._get_current_object()
    choices = ambassadors.street_choices(user)
    # Only the streets not volunteered for yet are offered; a form sent again for a street
    # already taken (a double click, a second tab) shows what is there instead of an error.
    open_choices = ambassadors.open_street_choices(user)
    form = VolunteerForm()
    form.street.choices = [
        SelectChoice(c.value, f"{c.street} ({c.pc4}), {c.neighbourhood.name}") for c in choices
    ]
    problem = None
    if form.validate_on_submit():
        choice = next((c for c in choices if c.value == form.street.data), None)
        try:
            if choice is None:
                raise ParticipationError("not_your_street")
            ambassadors.volunteer(user, choice, form.motivation.data or "")
        except ParticipationError as exc:
            if exc.code != "already_volunteered":
                form.street.errors = [message(exc)]
            else:
                flash(gettext("You have already volunteered for this street."), "info")
                return redirect(url_for("participation.ambassador"))
        else:
            flash(
                gettext(
                    "Thank you for volunteering. We have sent you a confirmation by email; "
                    "the energy desk will get back to you."
                ),
                "success",
            )
            return redirect(url_for("participation.ambassador"))
    form.street.choices = [
        SelectChoice(c.value, f"{c.street} ({c.pc4}), {c.neighbourhood.name}") for c in open_choices
    ]
    roles = []
    for role in ambassadors.ambassadorships_of(user):
        require(current_user, role, "view")
        neighbours = [n for n in ambassadors.neighbours_for(role) if _may_contact(n)]
        contact_form = ContactForm(formdata=None, prefix=f"a{role.id}")
        contact_form.neighbour.choices = [
            SelectChoice(n.ref, f"{n.name}, {n.address}") for n in neighbours
        ]
        roles.append((role, neighbours, ambassadors.contacts_of(role), contact_form))
    return render_template(
        "participation/ambassador.html",
        form=form,
        choices=open_choices,
        any_street=bool(choices),
        roles=roles,
        problem=problem,
    )


def _may_contact(neighbour: ambassadors.Neighbour) -> bool:
    return authorize(current_user, neighbour, "contact")


@bp.post("/my/ambassador/<int:ambassador_id>/contacts")
@resident_required
def log_contact(ambassador_id: int) -> Any:
    role = ambassadors.get_ambassador(ambassador_id)
    require(current_user, role, "view")
    assert role is not None
    form = ContactForm(prefix=f"a{role.id}")
    neighbours = [n for n in ambassadors.neighbours_for(role) if _may_contact(n)]
    form.neighbour.choices = [SelectChoice(n.ref, f"{n.name}, {n.address}") for n in neighbours]
    if form.validate_on_submit():
        assert form.contacted_on.value is not None
        try:
            ambassadors.log_contact(
                role, form.neighbour.data, form.contacted_on.value, form.note.data or ""
            )
        except ParticipationError as exc:
            flash(message(exc), "error")
        else:
            flash(gettext("The conversation is noted."), "success")
    else:
        errors = [e for field in form for e in field.errors]
        flash(errors[0] if errors else gettext("Something in the request was not right"), "error")
    return redirect(url_for("participation.ambassador"))
