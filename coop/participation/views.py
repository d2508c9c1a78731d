"""Participation pages. ``bp``: the public pages (neighbourhood page, meetings and RSVPs,
surveys, interest campaigns, the links from their emails) and the ambassador's page.
``desk_bp``: the staff's pages under /desk/participation.

Thin: parse, authorise (``require`` / role guards), call a service, render.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, time
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
from flask_babel import format_decimal, format_number, format_percent, get_locale, gettext, ngettext
from flask_login import current_user
from werkzeug.wrappers import Response as Redirect
from wtforms import Field
from wtforms.fields.choices import SelectChoice

from coop.actions.forms import amsterdam_moment
from coop.actions.models import Neighbourhood
from coop.core import address_lookup
from coop.core.authz import require, resident_required, staff_required
from coop.core.forms import address_looked_up
from coop.core.time import utcnow
from coop.core.web import localized
from coop.desk import exports
from coop.desk.charts import Chart, Datum
from coop.extensions import db, limiter
from coop.participation import ambassadors, interest, meetings, neighbourhoods, surveys
from coop.participation.forms import (
    PERSPECTIVE_LABELS,
    STATE_LABELS,
    AttendanceForm,
    ButtonForm,
    CampaignForm,
    CancelMeetingForm,
    ContactForm,
    FollowUpForm,
    MeetingForm,
    PledgeForm,
    QuestionForm,
    RsvpForm,
    SurveyForm,
    SurveyResponseForm,
    VolunteerForm,
    compass_form_for,
    form_data_from,
    household_counts_form_for,
    household_counts_of,
    question_field_name,
    survey_form_for,
)
from coop.participation.models import (
    Meeting,
    MeetingKind,
    MeetingLanguage,
    Perspective,
    PerspectiveState,
    QuestionKind,
    Rsvp,
    RsvpStatus,
    SurveyStatus,
    WijkPhase,
)
from coop.participation.services import SMALL_CELL, ParticipationError, id_from_token
from coop.registrations.desk_services import OWNERSHIP_LABELS
from coop.registrations.models import Ownership

bp = Blueprint("participation", __name__)
desk_bp = Blueprint("participation_desk", __name__, url_prefix="/desk/participation")

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
    from coop.actions.services import catalogue

    return {m.code: localized(m, "name") for m in catalogue()}


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
    from coop.participation.jobs import meeting_ics

    item = _meeting(meeting_id)
    filename, mimetype, data = meeting_ics(item, _language())
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
            db.session.rollback()
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
    from coop.core.authz import authorize

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


# --- the desk --------------------------------------------------------------------------------


def _organisation_neighbourhoods() -> list[Neighbourhood]:
    from coop.actions.services import neighbourhoods_of

    return neighbourhoods_of(current_user.organisation_id)


@desk_bp.get("/")
@staff_required
def index() -> str:
    organisation_id = current_user.organisation_id
    return render_template(
        "participation/desk/index.html",
        meetings=[(m, meetings.counts(m)) for m in meetings.meetings_of(organisation_id)],
        surveys=[(s, surveys.response_count(s)) for s in surveys.surveys_of(organisation_id)],
        campaigns=[(c, interest.progress(c)) for c in interest.campaigns_of(organisation_id)],
        neighbourhoods=_organisation_neighbourhoods(),
        now=utcnow(),
    )


@desk_bp.route("/meetings/new", methods=["GET", "POST"])
@staff_required
def create_meeting() -> Any:
    form = MeetingForm()
    form.set_neighbourhoods(_organisation_neighbourhoods(), optional=True)
    problem = None
    if form.validate_on_submit():
        try:
            item = meetings.create_meeting(current_user, _meeting_details(form))
        except ParticipationError as exc:
            problem = _meeting_form_problem(form, exc)
        else:
            flash(gettext("The meeting is planned and open for RSVPs."), "success")
            return redirect(url_for("participation_desk.meeting", meeting_id=item.id))
    return render_template("participation/desk/meeting_form.html", form=form, problem=problem)


def _meeting_details(form: MeetingForm) -> meetings.MeetingDetails:
    starts_at, ends_at = form.moments()
    return meetings.MeetingDetails(
        kind=MeetingKind(form.kind.data),
        title_nl=form.title_nl.data,
        title_en=form.title_en.data or "",
        description_nl=form.description_nl.data or "",
        description_en=form.description_en.data or "",
        location=form.location.data or "",
        online_url=form.online_url.data or "",
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        capacity=int(form.capacity.data),
        language=MeetingLanguage(form.language.data),
        neighbourhood_id=form.neighbourhood_id(),
    )


def _meeting_form_problem(form: MeetingForm, exc: ParticipationError) -> str | None:
    """Put a refused rule's message next to its field; return it if it belongs to none."""
    field = {
        "ends_before_start": form.ends_at,
        "starts_in_past": form.starts_on,
        "online_needs_link": form.online_url,
        "needs_location": form.location,
        "capacity_positive": form.capacity,
        "capacity_below_confirmed": form.capacity,
    }.get(exc.code)
    if field is None:
        return message(exc)
    if exc.code == "capacity_below_confirmed":
        field.errors = [
            ngettext(
                "%(num)s person already has a place: choose at least that many places. "
                "Nobody loses a place without being asked.",
                "%(num)s people already have a place: choose at least that many places. "
                "Nobody loses a place without being asked.",
                exc.details["confirmed"],
            )
        ]
    else:
        field.errors = [message(exc)]
    return None


@desk_bp.route("/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_meeting(meeting_id: int) -> Any:
    item = _meeting(meeting_id, "manage")
    form = MeetingForm()
    form.set_neighbourhoods(_organisation_neighbourhoods(), optional=True)
    problem = None
    if form.validate_on_submit():
        try:
            change = meetings.update_meeting(current_user, item, _meeting_details(form))
        except ParticipationError as exc:
            problem = _meeting_form_problem(form, exc)
            item = _meeting(meeting_id, "manage")
        else:
            flash(_change_message(change), "success")
            return redirect(url_for("participation_desk.meeting", meeting_id=item.id))
    elif not form.is_submitted():
        form.fill_from(item)
    return render_template(
        "participation/desk/meeting_form.html",
        form=form,
        problem=problem,
        meeting=item,
        locked=_locked_reason(item),
    )


def _locked_reason(item: Meeting) -> str | None:
    """Why the meeting can no longer be changed or cancelled, if so."""
    refused = meetings.change_refused(item)
    return message(ParticipationError(refused)) if refused else None


def _change_message(change: meetings.MeetingChange) -> str:
    parts = [gettext("The meeting is saved.")]
    if change.notified:
        parts.append(
            ngettext(
                "The new time or place is being emailed to %(num)s person.",
                "The new time or place is being emailed to %(num)s people.",
                change.notified,
            )
        )
    if change.promoted:
        parts.append(
            ngettext(
                "%(num)s person moved up from the waiting list.",
                "%(num)s people moved up from the waiting list.",
                len(change.promoted),
            )
        )
    return " ".join(parts)


@desk_bp.route("/meetings/<int:meeting_id>/cancel", methods=["GET", "POST"])
@staff_required
def cancel_meeting(meeting_id: int) -> Any:
    """A page to confirm on (no script needed): the cancellation happens only on its POST."""
    item = _meeting(meeting_id, "manage")
    form = CancelMeetingForm()
    if form.validate_on_submit():
        try:
            sent = meetings.cancel_meeting(current_user, item, form.message.data or "")
        except ParticipationError as exc:
            flash(message(exc), "error")
        else:
            flash(
                ngettext(
                    "The meeting is cancelled. %(num)s person is being emailed.",
                    "The meeting is cancelled. %(num)s people are being emailed.",
                    sent,
                ),
                "success",
            )
        return redirect(url_for("participation_desk.meeting", meeting_id=item.id))
    counts = meetings.counts(item)
    return render_template(
        "participation/desk/meeting_cancel.html",
        meeting=item,
        form=form,
        locked=_locked_reason(item),
        to_email=counts[RsvpStatus.CONFIRMED] + counts[RsvpStatus.WAITING],
    )


def _render_desk_meeting(item: Meeting, follow_up: FollowUpForm, problem: str | None = None) -> str:
    entries = meetings.rsvps_of(item)
    attendance = AttendanceForm(formdata=None)
    attendance.attended.choices = [
        SelectChoice(e.id, e.name or gettext("(erased)"))
        for e in entries
        if e.status is RsvpStatus.CONFIRMED
    ]
    attendance.attended.data = [e.id for e in entries if e.attended]
    return render_template(
        "participation/desk/meeting.html",
        meeting=item,
        rsvps=entries,
        counts=meetings.counts(item),
        attendance=attendance,
        follow_up=follow_up,
        problem=problem,
        started=item.starts_at <= utcnow(),
    )


@desk_bp.get("/meetings/<int:meeting_id>", endpoint="meeting")
@staff_required
def meeting_detail(meeting_id: int) -> str:
    return _render_desk_meeting(_meeting(meeting_id, "manage"), FollowUpForm(formdata=None))


@desk_bp.post("/meetings/<int:meeting_id>/attendance")
@staff_required
def attendance(meeting_id: int) -> Any:
    item = _meeting(meeting_id, "manage")
    form = AttendanceForm()
    form.attended.choices = [
        SelectChoice(e.id, e.name or "")
        for e in meetings.rsvps_of(item)
        if e.status is RsvpStatus.CONFIRMED
    ]
    if form.validate_on_submit():
        try:
            present = meetings.record_attendance(current_user, item, set(form.attended.data or []))
        except ParticipationError as exc:
            flash(message(exc), "error")
        else:
            flash(
                ngettext(
                    "Attendance saved: %(num)s person came.",
                    "Attendance saved: %(num)s people came.",
                    present,
                ),
                "success",
            )
    else:
        flash(gettext("Choose from the people with a place."), "error")
    return redirect(url_for("participation_desk.meeting", meeting_id=item.id))


@desk_bp.post("/meetings/<int:meeting_id>/follow-up")
@staff_required
def follow_up(meeting_id: int) -> Any:
    item = _meeting(meeting_id, "manage")
    form = FollowUpForm()
    problem = None
    if form.validate_on_submit():
        try:
            sent = meetings.send_follow_up(current_user, item, form.subject.data, form.body.data)
        except ParticipationError as exc:
            problem = message(exc)
        else:
            flash(
                ngettext(
                    "Sending to %(num)s attendee has started.",
                    "Sending to %(num)s attendees has started.",
                    sent,
                ),
                "success",
            )
            return redirect(url_for("participation_desk.meeting", meeting_id=item.id))
        item = _meeting(meeting_id, "manage")
    return _render_desk_meeting(item, form, problem)


@desk_bp.route("/surveys/new", methods=["GET", "POST"])
@staff_required
def create_survey() -> Any:
    form = SurveyForm()
    options = _organisation_neighbourhoods()
    form.set_neighbourhoods(options, optional=False)
    if form.validate_on_submit():
        chosen = next((n for n in options if n.id == form.neighbourhood_id()), None)
        require(current_user, chosen, "manage")
        assert chosen is not None
        item = surveys.create_survey(
            current_user,
            chosen,
            surveys.SurveyDetails(
                title_nl=form.title_nl.data,
                title_en=form.title_en.data or "",
                intro_nl=form.intro_nl.data or "",
                intro_en=form.intro_en.data or "",
            ),
        )
        flash(gettext("The survey is saved as a draft. Add its questions."), "success")
        return redirect(url_for("participation_desk.survey", survey_id=item.id))
    return render_template(
        "participation/desk/survey_form.html", form=form, has_neighbourhoods=bool(options)
    )


def _survey_charts(
    result: surveys.SurveyResults,
) -> list[tuple[surveys.QuestionResult, Chart | None]]:
    english = _language() == "en"
    charts: list[tuple[surveys.QuestionResult, Chart | None]] = []
    for index, question_result in enumerate(result.questions):
        question = question_result.question
        if question.kind is QuestionKind.OPEN:
            charts.append((question_result, None))
            continue
        title = localized(question, "text")
        data = tuple(
            Datum(
                (en or nl) if english else nl,
                None if cell.hidden else cell.count,
                gettext("fewer than 5") if cell.hidden else _count(cell.count),
            )
            for (nl, en), cell in zip(question_result.labels, question_result.cells, strict=True)
        )
        charts.append(
            (
                question_result,
                Chart(
                    id=f"chart-q{index + 1}",
                    title=title,
                    description=gettext(
                        "%(title)s. The same figures are in the table next to this chart.",
                        title=title,
                    ),
                    label_heading=gettext("Answer"),
                    value_heading=gettext("Households"),
                    data=data,
                    empty_text=gettext("No answers yet."),
                ),
            )
        )
    return charts


def _reach_chart(chart_id: str, title: str, heading: str, rows: list[tuple[str, Any]]) -> Chart:
    return Chart(
        id=chart_id,
        title=title,
        description=gettext(
            "%(title)s. The same figures are in the table next to this chart.", title=title
        ),
        label_heading=heading,
        value_heading=gettext("Response rate"),
        extra_headings=(gettext("Responses"), gettext("Households")),
        data=tuple(
            Datum(
                label,
                None if cell.rate is None else cell.rate * 100,
                gettext("fewer than 5") if cell.hidden else _percent(cell.rate),
                (
                    gettext("fewer than 5") if cell.hidden else _count(cell.count),
                    gettext("unknown") if cell.denominator is None else _count(cell.denominator),
                ),
            )
            for label, cell in rows
        ),
        scale_max=100,
    )


@desk_bp.get("/surveys/<int:survey_id>", endpoint="survey")
@staff_required
def survey_detail(survey_id: int) -> str:
    return _render_desk_survey(_survey(survey_id, "manage"), QuestionForm(formdata=None))


def _render_desk_survey(item: Any, question_form: QuestionForm, problem: str | None = None) -> str:
    result = surveys.results(item) if item.status is not SurveyStatus.DRAFT else None
    reach: list[Chart] = []
    if result is not None and result.shown:
        reach = [
            _reach_chart(
                "chart-reach-pc4",
                gettext("Response rate per postcode area"),
                gettext("Postcode area"),
                [(r.label, r.cell) for r in result.by_pc4],
            ),
            _reach_chart(
                "chart-reach-ownership",
                gettext("Response rate per ownership type"),
                gettext("Ownership"),
                [(str(OWNERSHIP_LABELS[Ownership(r.label)]), r.cell) for r in result.by_ownership],
            ),
        ]
    return render_template(
        "participation/desk/survey.html",
        survey=item,
        question_form=question_form,
        button=ButtonForm(),
        problem=problem,
        result=result,
        charts=_survey_charts(result) if result is not None and result.shown else [],
        reach=reach,
        responses=surveys.response_count(item),
        small=SMALL_CELL,
    )


@desk_bp.post("/surveys/<int:survey_id>/questions")
@staff_required
def add_question(survey_id: int) -> Any:
    item = _survey(survey_id, "manage")
    form = QuestionForm()
    problem = None
    if form.validate_on_submit():
        try:
            surveys.add_question(
                current_user,
                item,
                kind=QuestionKind(form.kind.data),
                text_nl=form.text_nl.data,
                text_en=form.text_en.data or "",
                required=bool(form.required.data),
                options=form.option_pairs(),
            )
        except ParticipationError as exc:
            problem = message(exc)
        else:
            flash(gettext("The question is added."), "success")
            return redirect(url_for("participation_desk.survey", survey_id=item.id))
    return _render_desk_survey(item, form, problem)


def _survey_step(survey_id: int, step: Callable[..., None], done: str) -> Redirect:
    item = _survey(survey_id, "manage")
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        step(current_user, item)
    except ParticipationError as exc:
        flash(message(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("participation_desk.survey", survey_id=item.id))


@desk_bp.post("/surveys/<int:survey_id>/open")
@staff_required
def open_survey(survey_id: int) -> Redirect:
    return _survey_step(survey_id, surveys.open_survey, gettext("The survey is open for answers."))


@desk_bp.post("/surveys/<int:survey_id>/close")
@staff_required
def close_survey(survey_id: int) -> Redirect:
    return _survey_step(survey_id, surveys.close_survey, gettext("The survey is closed."))


@desk_bp.get("/surveys/<int:survey_id>/open-answers/<fmt>")
@staff_required
def export_open_answers(survey_id: int, fmt: str) -> Any:
    item = _survey(survey_id, "manage")
    if fmt not in exports.FORMATS:
        abort(404)
    try:
        rows = list(surveys.open_answers(item))
    except ParticipationError as exc:
        flash(message(exc), "error")
        return redirect(url_for("participation_desk.survey", survey_id=item.id))
    table = exports.Table(
        title=gettext("Open answers"),
        headers=[gettext("Question"), gettext("Answer")],
        rows=rows,
    )
    return exports.response(table, fmt, stem=f"survey-{item.id}-open-answers")


@desk_bp.route("/interest/new", methods=["GET", "POST"])
@staff_required
def create_campaign() -> Any:
    form = CampaignForm()
    options = _organisation_neighbourhoods()
    form.set_neighbourhoods(options, optional=False)
    if form.validate_on_submit():
        chosen = next((n for n in options if n.id == form.neighbourhood_id()), None)
        require(current_user, chosen, "manage")
        assert chosen is not None and form.deadline_on.value is not None
        households = form.household_count.data or chosen.household_count or 0
        deadline = amsterdam_moment(form.deadline_on.value, time(23, 59, 59)).astimezone(UTC)
        try:
            item = interest.create_campaign(
                current_user,
                chosen,
                interest.CampaignDetails(
                    title_nl=form.title_nl.data,
                    title_en=form.title_en.data or "",
                    description_nl=form.description_nl.data or "",
                    description_en=form.description_en.data or "",
                    household_count=int(households),
                    threshold_percent=int(form.threshold_percent.data),
                    deadline_at=deadline,
                ),
            )
        except ParticipationError as exc:
            field: Field = {
                "deadline_past": form.deadline_on,
                "households_needed": form.household_count,
                "threshold_range": form.threshold_percent,
            }[exc.code]
            field.errors = [message(exc)]
        else:
            flash(gettext("The interest campaign is open."), "success")
            return redirect(url_for("participation_desk.campaign", campaign_id=item.id))
    return render_template(
        "participation/desk/campaign_form.html", form=form, has_neighbourhoods=bool(options)
    )


@desk_bp.get("/interest/<int:campaign_id>", endpoint="campaign")
@staff_required
def campaign_detail(campaign_id: int) -> str:
    item = interest.get_campaign(campaign_id)
    require(current_user, item, "manage")
    assert item is not None
    by_pc4 = interest.pledges_by_pc4(item)
    title = gettext("Interested households per postcode area")
    chart = Chart(
        id="chart-interest-pc4",
        title=title,
        description=gettext(
            "%(title)s. The same figures are in the table next to this chart.", title=title
        ),
        label_heading=gettext("Postcode area"),
        value_heading=gettext("Households"),
        data=tuple(Datum(pc4, n, _count(n)) for pc4, n in by_pc4),
        empty_text=gettext("No interest registered yet."),
    )
    return render_template(
        "participation/desk/campaign.html",
        campaign=item,
        progress=interest.progress(item),
        chart=chart,
        now=utcnow(),
    )


def _desk_neighbourhood(neighbourhood_id: int) -> Neighbourhood:
    from coop.desk.services import get_neighbourhood

    item = get_neighbourhood(neighbourhood_id)
    require(current_user, item, "manage")
    assert item is not None
    return item


def _compass_initial(item: Neighbourhood) -> dict[str, Any]:
    profile = neighbourhoods.profile_of(item)
    data: dict[str, Any] = {
        "phase": profile.phase.value if profile else WijkPhase.STARTING.value,
        "is_public": profile.is_public if profile else False,
        "intro_nl": profile.intro_nl if profile else "",
        "intro_en": profile.intro_en if profile else "",
    }
    for state in neighbourhoods.perspective_states(profile):
        data[f"{state.perspective.value}_state"] = state.state.value
        data[f"{state.perspective.value}_nl"] = state.explanation_nl
        data[f"{state.perspective.value}_en"] = state.explanation_en
    return data


def _counts_initial(item: Neighbourhood) -> dict[str, Any]:
    known = surveys.household_counts(item.id)
    data: dict[str, Any] = {}
    for dimension, values in known.items():
        for value, households in values.items():
            data[f"{dimension.value}_{value}"] = households
    return data


def _render_desk_neighbourhood(item: Neighbourhood, compass: Any = None, counts: Any = None) -> str:
    return render_template(
        "participation/desk/neighbourhood.html",
        neighbourhood=item,
        profile=neighbourhoods.profile_of(item),
        compass=compass or compass_form_for(formdata=None, data=_compass_initial(item)),
        counts=counts or household_counts_form_for(item, formdata=None, data=_counts_initial(item)),
        perspectives=list(Perspective),
        coverage=ambassadors.coverage(item),
        ambassadors=ambassadors.ambassadors_in(item),
        button=ButtonForm(),
    )


@desk_bp.get("/neighbourhoods/<int:neighbourhood_id>", endpoint="neighbourhood")
@staff_required
def neighbourhood_detail(neighbourhood_id: int) -> str:
    return _render_desk_neighbourhood(_desk_neighbourhood(neighbourhood_id))


@desk_bp.post("/neighbourhoods/<int:neighbourhood_id>/compass")
@staff_required
def save_compass(neighbourhood_id: int) -> Any:
    item = _desk_neighbourhood(neighbourhood_id)
    form = compass_form_for()
    if form.validate_on_submit():
        neighbourhoods.save_compass(
            current_user,
            item,
            neighbourhoods.CompassInput(
                phase=WijkPhase(form.phase.data),
                is_public=bool(form.is_public.data),
                intro_nl=form.intro_nl.data or "",
                intro_en=form.intro_en.data or "",
                perspectives={
                    p: (
                        PerspectiveState(getattr(form, f"{p.value}_state").data),
                        getattr(form, f"{p.value}_nl").data or "",
                        getattr(form, f"{p.value}_en").data or "",
                    )
                    for p in Perspective
                },
            ),
        )
        flash(gettext("The neighbourhood page is saved."), "success")
        return redirect(url_for("participation_desk.neighbourhood", neighbourhood_id=item.id))
    return _render_desk_neighbourhood(item, compass=form)


@desk_bp.post("/neighbourhoods/<int:neighbourhood_id>/households")
@staff_required
def save_household_counts(neighbourhood_id: int) -> Any:
    item = _desk_neighbourhood(neighbourhood_id)
    form = household_counts_form_for(item)
    if form.validate_on_submit():
        neighbourhoods.save_household_counts(current_user, item, household_counts_of(form))
        flash(gettext("The household numbers are saved."), "success")
        return redirect(url_for("participation_desk.neighbourhood", neighbourhood_id=item.id))
    return _render_desk_neighbourhood(item, counts=form)


@desk_bp.post("/ambassadors/<int:ambassador_id>/approve")
@staff_required
def approve_ambassador(ambassador_id: int) -> Redirect:
    role = ambassadors.get_ambassador(ambassador_id)
    require(current_user, role, "manage")
    assert role is not None
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        ambassadors.approve(current_user, role)
    except ParticipationError as exc:
        flash(message(exc), "error")
    else:
        flash(gettext("The ambassador can now see the neighbours who opted in."), "success")
    return redirect(
        url_for("participation_desk.neighbourhood", neighbourhood_id=role.neighbourhood_id)
    )
