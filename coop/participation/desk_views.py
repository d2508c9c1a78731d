"""The staff's participation pages under /desk/participation: meetings with their RSVPs,
surveys with their results, interest campaigns, neighbourhood pages and ambassadors.

Thin: parse, authorise (``require`` / role guards), call a service, render.
"""

from __future__ import annotations

from datetime import UTC, time
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_login import current_user
from werkzeug.wrappers import Response as Redirect
from wtforms import Field
from wtforms.fields.choices import SelectChoice

from coop.accounts.permissions import staff_required
from coop.actions import neighbourhoods as neighbourhood_areas
from coop.actions.forms import amsterdam_moment
from coop.actions.models import Neighbourhood
from coop.core.authz import require
from coop.core.charts import Chart, Datum
from coop.core.time import utcnow
from coop.participation import ambassadors, interest, meetings, neighbourhoods, surveys
from coop.participation.desk_forms import (
    AttendanceForm,
    CampaignForm,
    CancelMeetingForm,
    FollowUpForm,
    MeetingForm,
    compass_form_for,
    household_counts_form_for,
    household_counts_of,
)
from coop.participation.forms import ButtonForm
from coop.participation.models import (
    Meeting,
    MeetingKind,
    MeetingLanguage,
    Perspective,
    PerspectiveState,
    RsvpStatus,
    WijkPhase,
)
from coop.participation.services import ParticipationError
from coop.participation.views import _count, _meeting, message

bp = Blueprint("participation_desk", __name__, url_prefix="/desk/participation")


# --- the desk --------------------------------------------------------------------------------


def _organisation_neighbourhoods() -> list[Neighbourhood]:
    return neighbourhood_areas.neighbourhoods_of(current_user.organisation_id)


@bp.get("/")
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


@bp.route("/meetings/new", methods=["GET", "POST"])
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


@bp.route("/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
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


@bp.route("/meetings/<int:meeting_id>/cancel", methods=["GET", "POST"])
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


@bp.get("/meetings/<int:meeting_id>", endpoint="meeting")
@staff_required
def meeting_detail(meeting_id: int) -> str:
    return _render_desk_meeting(_meeting(meeting_id, "manage"), FollowUpForm(formdata=None))


@bp.post("/meetings/<int:meeting_id>/attendance")
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


@bp.post("/meetings/<int:meeting_id>/follow-up")
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


@bp.route("/interest/new", methods=["GET", "POST"])
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


@bp.get("/interest/<int:campaign_id>", endpoint="campaign")
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
    item = neighbourhood_areas.get_neighbourhood(neighbourhood_id)
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


@bp.get("/neighbourhoods/<int:neighbourhood_id>", endpoint="neighbourhood")
@staff_required
def neighbourhood_detail(neighbourhood_id: int) -> str:
    return _render_desk_neighbourhood(_desk_neighbourhood(neighbourhood_id))


@bp.post("/neighbourhoods/<int:neighbourhood_id>/compass")
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


@bp.post("/neighbourhoods/<int:neighbourhood_id>/households")
@staff_required
def save_household_counts(neighbourhood_id: int) -> Any:
    item = _desk_neighbourhood(neighbourhood_id)
    form = household_counts_form_for(item)
    if form.validate_on_submit():
        neighbourhoods.save_household_counts(current_user, item, household_counts_of(form))
        flash(gettext("The household numbers are saved."), "success")
        return redirect(url_for("participation_desk.neighbourhood", neighbourhood_id=item.id))
    return _render_desk_neighbourhood(item, counts=form)


@bp.post("/ambassadors/<int:ambassador_id>/approve")
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
