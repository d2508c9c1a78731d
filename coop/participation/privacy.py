"""A person's participation data, for the GDPR rights of access and erasure: meeting RSVPs,
survey responses, heat-network interest pledges, neighbour ambassador roles and the contacts
logged by them or about the person's household.

The registrations service calls these from ``export_resident_data`` and ``erase_resident``, so
each domain gathers and erases its own rows (as payments does with ``forget_registrations``).

Who is the person, per record, as each model identifies people:

* an RSVP by its ``user_id`` (set when the email had an account at the RSVP) or its email;
* a survey response and an interest pledge by their email: they are a household's (the address
  makes them one per household), but the email says which member of it filled them in. A
  response at the same address with someone else's email is that person's, not this one's;
* an ambassador role by its ``user_id``;
* a contact *about* the person by the household address and organisation of one of the
  person's own pledges or responses: ambassadors only reach households through those, and a
  contact row has no name or email of its own.

Emails compare without case: accounts hold them in lower case, the forms store them so too, but
rows entered otherwise (the desk, imports) need not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.actions.models import Neighbourhood
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation import ambassadors, interest, meetings, surveys
from coop.participation.models import (
    Ambassador,
    AmbassadorContact,
    InterestPledge,
    Meeting,
    QuestionKind,
    Rsvp,
    RsvpStatus,
    Survey,
    SurveyQuestion,
    SurveyResponse,
)
from coop.participation.services import address_line

# --- finding the person's rows -----------------------------------------------------------------


def _email(user: User) -> str:
    return user.email.strip().lower()


def rsvps_of(user: User) -> list[Rsvp]:
    return list(
        db.session.scalars(
            select(Rsvp)
            .join(Meeting, Meeting.id == Rsvp.meeting_id)
            .where(or_(Rsvp.user_id == user.id, func.lower(Rsvp.email) == _email(user)))
            .order_by(Meeting.starts_at, Rsvp.id)
        )
    )


def responses_of(user: User) -> list[SurveyResponse]:
    return list(
        db.session.scalars(
            select(SurveyResponse)
            .where(func.lower(SurveyResponse.email) == _email(user))
            .options(
                selectinload(SurveyResponse.answers),
                selectinload(SurveyResponse.survey)
                .selectinload(Survey.questions)
                .selectinload(SurveyQuestion.options),
            )
            .order_by(SurveyResponse.created_at, SurveyResponse.id)
        )
    )


def pledges_of(user: User) -> list[InterestPledge]:
    return list(
        db.session.scalars(
            select(InterestPledge)
            .where(func.lower(InterestPledge.email) == _email(user))
            .order_by(InterestPledge.created_at, InterestPledge.id)
        )
    )


def contacts_about(
    pledges: list[InterestPledge], responses: list[SurveyResponse]
) -> list[AmbassadorContact]:
    """Contacts ambassadors of the same organisation logged at the households of these pledges
    and responses."""
    households = {
        (p.campaign.organisation_id, p.postcode, p.house_number, p.house_number_addition)
        for p in pledges
    } | {
        (r.survey.organisation_id, r.postcode, r.house_number, r.house_number_addition)
        for r in responses
    }
    if not households:
        return []
    matches: list[ColumnElement[bool]] = [
        and_(
            Neighbourhood.organisation_id == organisation_id,
            AmbassadorContact.postcode == postcode,
            AmbassadorContact.house_number == number,
            AmbassadorContact.house_number_addition == addition,
        )
        for organisation_id, postcode, number, addition in sorted(households)
    ]
    return list(
        db.session.scalars(
            select(AmbassadorContact)
            .join(Ambassador, Ambassador.id == AmbassadorContact.ambassador_id)
            .join(Neighbourhood, Neighbourhood.id == Ambassador.neighbourhood_id)
            .where(or_(*matches))
            .order_by(AmbassadorContact.contacted_on, AmbassadorContact.id)
        )
    )


# --- export --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _text(obj: Any, field: str, language: str) -> str:
    """The text in the language the person used (the form they filled in, the emails they
    got); Dutch where there is no English."""
    if language == "en":
        english = getattr(obj, f"{field}_en", None)
        if english:
            return str(english)
    return str(getattr(obj, f"{field}_nl"))


def _address(row: Any) -> dict[str, Any]:
    return {
        "street": getattr(row, "street", None),
        "house_number": row.house_number,
        "addition": row.house_number_addition,
        "postcode": row.postcode,
    }


def _answers(response: SurveyResponse) -> list[dict[str, Any]]:
    """Per question, in the survey's order, the answer as the person gave it: the option's
    text (a list of them for multiple choice), the scale value or the text."""
    language = response.language
    given: dict[int, list[Any]] = {}
    for answer in response.answers:
        given.setdefault(answer.question_id, []).append(answer)
    rows: list[dict[str, Any]] = []
    for question in response.survey.questions:
        answers = given.get(question.id)
        if not answers:
            continue
        options = {o.id: _text(o, "text", language) for o in question.options}
        value: Any
        if question.kind is QuestionKind.MULTIPLE:
            value = [options.get(a.option_id or 0, "") for a in answers]
        elif question.kind is QuestionKind.SINGLE:
            value = options.get(answers[0].option_id or 0, "")
        elif question.kind is QuestionKind.SCALE:
            value = answers[0].scale_value
        else:
            value = answers[0].text
        rows.append({"question": _text(question, "text", language), "answer": value})
    return rows


def _contact(contact: AmbassadorContact) -> dict[str, Any]:
    return {
        "contacted_on": contact.contacted_on.isoformat(),
        "household": address_line(contact),
        "note": contact.note,
        "logged_at": _iso(contact.created_at),
    }


def export_person(user: User) -> dict[str, Any]:
    """The person's participation data as plain data, for ``export_resident_data``."""
    pledges = pledges_of(user)
    responses = responses_of(user)
    return {
        "meeting_rsvps": [
            {
                "meeting": _text(r.meeting, "title", r.language),
                "starts_at": _iso(r.meeting.starts_at),
                "ends_at": _iso(r.meeting.ends_at),
                "location": r.meeting.location or r.meeting.online_url,
                "name": r.name,
                "email": r.email,
                "status": r.status.value,
                "on_waiting_list": r.status is RsvpStatus.WAITING,
                "signed_up_at": _iso(r.queued_at),
                "consent_at": _iso(r.consent_at),
                "promoted_at": _iso(r.promoted_at),
                "cancelled_at": _iso(r.cancelled_at),
                "attended": r.attended,
            }
            for r in rsvps_of(user)
        ],
        "survey_responses": [
            {
                "survey": _text(r.survey, "title", r.language),
                "address": _address(r),
                "ownership": r.ownership.value,
                "name": r.name,
                "email": r.email,
                "contact_opt_in": r.contact_opt_in,
                "consent_at": _iso(r.consent_at),
                "submitted_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
                "answers": _answers(r),
            }
            for r in responses
        ],
        "interest_pledges": [
            {
                "campaign": _text(p.campaign, "title", p.language),
                "address": _address(p),
                "name": p.name,
                "email": p.email,
                "contact_opt_in": p.contact_opt_in,
                "consent_at": _iso(p.consent_at),
                "pledged_at": _iso(p.created_at),
                "withdrawn": p.withdrawn_at is not None,
                "withdrawn_at": _iso(p.withdrawn_at),
            }
            for p in pledges
        ],
        "ambassador_roles": [
            {
                "neighbourhood": a.neighbourhood.name,
                "street": a.street,
                "pc4": a.pc4,
                "status": a.status.value,
                "motivation": a.motivation,
                "volunteered_at": _iso(a.created_at),
                "approved_at": _iso(a.approved_at),
                "contacts_logged": [_contact(c) for c in ambassadors.contacts_of(a)],
            }
            for a in ambassadors.ambassadorships_of(user)
        ],
        # Which ambassador logged them is another person's data and is left out.
        "contacts_about_you": [_contact(c) for c in contacts_about(pledges, responses)],
    }


# --- erasure -------------------------------------------------------------------------------


def erase_person(user: User, now: datetime | None = None) -> None:
    """Erase the person's participation data, in the caller's transaction (it commits once for
    the whole erasure):

    * RSVPs: cancelled if the meeting has not started, so the waiting list moves up; name,
      email and account link erased, the row kept for the meeting's figures
      (``meetings.erase_rsvp``);
    * interest pledges: deleted, so the campaign's progress no longer counts them; a reached
      threshold stays reached and nothing is announced again (``interest.erase_pledge``);
    * survey responses: deleted with their answers (``surveys.erase_response`` says why they
      are not kept as anonymous answers);
    * ambassador roles and the contacts they logged: deleted; the contacts are the person's
      notes about neighbours and a street's "contacted" figure is theirs as well;
    * contacts ambassadors logged about the person's household: deleted, as the pledges and
      responses they came from are.
    """
    now = now or utcnow()
    # Flushed first: the locks below re-read rows and must not meet changes not yet written.
    db.session.flush()
    pledges = pledges_of(user)
    responses = responses_of(user)
    # Found before the pledges and responses go: their addresses say which households.
    about = contacts_about(pledges, responses)
    roles = ambassadors.ambassadorships_of(user)
    logged = [c for a in roles for c in ambassadors.contacts_of(a)]
    for entry in rsvps_of(user):
        meetings.erase_rsvp(entry, now)
    for contact in {c.id: c for c in about + logged}.values():
        db.session.delete(contact)
    for role in roles:
        db.session.delete(role)
    for pledge in pledges:
        interest.erase_pledge(pledge)
    for response in responses:
        surveys.erase_response(response)
    db.session.flush()
