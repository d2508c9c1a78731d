"""A resident's participation in the GDPR export and erasure: RSVPs, survey responses,
interest pledges, ambassador roles and the contacts logged by them or about the household;
another resident's rows are neither exported nor touched."""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, or_, select

from coop.core import jobs
from coop.core.models import EmailLog, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation import ambassadors, interest, meetings, surveys
from coop.participation.models import (
    Ambassador,
    AmbassadorContact,
    InterestPledge,
    Rsvp,
    RsvpStatus,
    SurveyAnswer,
    SurveyResponse,
)
from coop.participation.services import HouseholdAddress
from coop.registrations import services as registrations
from coop.registrations.models import DwellingType, Ownership, RegistrationStatus
from coop.residents import services as residents
from tests import factories


def registered_resident(action: Any, name: str, email: str, number: int) -> Any:
    registration = registrations.register(
        action,
        registrations.RegistrationInput(
            name=name,
            email=email,
            phone=None,
            address=registrations.Address("3524 BA", number, "", "Hondsrug", "Utrecht"),
            dwelling=registrations.Dwelling(DwellingType.TERRACED, 1970, Ownership.OWNER, None),
            measures={action.measures[0].id: 40},
            consent=True,
        ),
    )
    registration.status = RegistrationStatus.CONFIRMED
    db.session.commit()
    return registration.user


def home(number: int) -> HouseholdAddress:
    return HouseholdAddress("3524 BA", number, "", "Hondsrug")


def pledge(campaign: Any, number: int, name: str, email: str) -> InterestPledge:
    return interest.pledge(
        campaign,
        address=home(number),
        name=name,
        email=email,
        language="nl",
        contact_opt_in=True,
        consent=True,
    )


def respond(survey: Any, number: int, name: str, email: str, text: str) -> SurveyResponse:
    single, multiple, scale, open_q = survey.questions
    return surveys.respond(
        survey,
        surveys.Respondent(home(number), Ownership.OWNER, name, email, "nl", True, True),
        {
            single.id: single.options[0].id,
            multiple.id: [multiple.options[0].id, multiple.options[1].id],
            scale.id: 4,
            open_q.id: text,
        },
    )


def sign_up(meeting: Any, name: str, email: str) -> Rsvp:
    return meetings.rsvp(meeting, name=name, email=email, language="nl", consent=True)


def ambassador(resident: Any, staff: Any) -> Ambassador:
    role = ambassadors.volunteer(resident, ambassadors.street_choices(resident)[0], "Ik help")
    ambassadors.approve(staff, role)
    return role


def contact(role: Ambassador, household: InterestPledge, note: str) -> AmbassadorContact:
    return ambassadors.log_contact(role, f"pledge:{household.id}", date.today(), note)


@pytest.fixture
def street(ctx: Flask) -> dict[str, Any]:
    """Anna and Bob, neighbours in the Hondsrug, both take part in everything; Daan only
    pledged. Anna and Bob are ambassadors and each logged a contact about the other."""
    org = factories.organisation()
    action = factories.action(org)
    nb = factories.neighbourhood(org, pc4s="3524")
    action.neighbourhoods.append(nb)
    db.session.commit()
    staff = factories.staff(org)
    anna = registered_resident(action, "Anna de Vries", "anna@example.nl", 1)
    bob = registered_resident(action, "Bob Jansen", "bob@example.nl", 2)

    upcoming = factories.meeting(org, capacity=2)
    anna_rsvp = sign_up(upcoming, "Anna de Vries", "anna@example.nl")
    bob_rsvp = sign_up(upcoming, "Bob Jansen", "bob@example.nl")
    chantal_rsvp = sign_up(upcoming, "Chantal Smit", "chantal@example.nl")
    past = factories.meeting(org, capacity=5)
    anna_past = sign_up(past, "Anna de Vries", "anna@example.nl")
    # Entered in other case and without the account link (as the desk might): still hers.
    anna_other_case = Rsvp(
        meeting_id=past.id,
        name="A. de Vries",
        email="Anna@Example.NL",
        status=RsvpStatus.CONFIRMED,
        consent_at=utcnow(),
    )
    db.session.add(anna_other_case)
    bob_past = sign_up(past, "Bob Jansen", "bob@example.nl")
    past.starts_at = utcnow() - timedelta(days=3)
    past.ends_at = past.starts_at + timedelta(hours=2)
    anna_past.attended = True
    bob_past.attended = True
    db.session.commit()

    survey = factories.survey(nb)
    anna_response = respond(survey, 1, "Anna de Vries", "anna@example.nl", "Graag snel")
    bob_response = respond(survey, 2, "Bob Jansen", "bob@example.nl", "Geen mening")

    campaign = factories.campaign(nb, households=10, percent=30)  # 3 households needed
    anna_pledge = pledge(campaign, 1, "Anna de Vries", "anna@example.nl")
    bob_pledge = pledge(campaign, 2, "Bob Jansen", "bob@example.nl")
    daan_pledge = pledge(campaign, 3, "Daan Visser", "daan@example.nl")

    anna_role = ambassador(anna, staff)
    bob_role = ambassador(bob, staff)
    anna_logged = contact(anna_role, bob_pledge, "Bob twijfelt nog")
    about_anna = contact(bob_role, anna_pledge, "Anna wil meedoen")
    bob_about_daan = contact(bob_role, daan_pledge, "Daan komt naar de avond")
    # The emails go out, so the email log holds the ones sent to the form's address too.
    jobs.dispatcher().run_pending()
    return locals()


def dumped(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def test_the_export_holds_each_kind_of_participation_of_the_person_and_no_one_elses(
    street: dict[str, Any],
) -> None:
    data = residents.export_resident_data(street["anna"])
    part = data["participation"]

    # In the order of the meetings: the past one first.
    past, past_other_case, upcoming = part["meeting_rsvps"]
    assert upcoming["meeting"] == "Informatieavond warmtenet"
    assert upcoming["starts_at"] == street["upcoming"].starts_at.isoformat()
    assert (upcoming["status"], upcoming["on_waiting_list"]) == ("confirmed", False)
    assert upcoming["consent_at"] is not None
    assert past["attended"] is True
    assert past_other_case["email"] == "Anna@Example.NL"

    [response] = part["survey_responses"]
    assert response["survey"] == "Hoe wilt u straks verwarmen?"
    assert response["address"]["house_number"] == 1
    assert response["submitted_at"] and response["updated_at"]
    assert response["answers"] == [
        {"question": "Wat vindt u van een warmtenet?", "answer": "Goed idee"},
        {"question": "Waar wilt u meer over weten?", "answer": ["Kosten", "Planning"]},
        {"question": "Hoe tevreden bent u over uw huidige verwarming?", "answer": 4},
        {"question": "Wat wilt u de gemeente meegeven?", "answer": "Graag snel"},
    ]

    [pledged] = part["interest_pledges"]
    assert pledged["campaign"] == "Warmtenet Lunetten"
    assert pledged["pledged_at"] is not None and pledged["withdrawn"] is False

    [role] = part["ambassador_roles"]
    assert (role["street"], role["status"], role["motivation"]) == ("Hondsrug", "active", "Ik help")
    assert [c["note"] for c in role["contacts_logged"]] == ["Bob twijfelt nog"]
    assert [c["note"] for c in part["contacts_about_you"]] == ["Anna wil meedoen"]

    everything = dumped(part)
    for not_hers in ("bob@example.nl", "Bob Jansen", "Geen mening", "chantal@", "Daan"):
        assert not_hers not in everything
    # The download is this, as JSON (the view dumps it as it is).
    assert json.loads(dumped(data))["participation"] == part

    # And next to it the readable document, with every kind of participation worded.
    from flask_babel import force_locale

    from coop.residents.export import FIELD_LABELS, readable_document

    with force_locale("en"):
        document = readable_document(data)
    values = [html.unescape(v) for v in re.findall(r"<dd>(.*?)</dd>", document, re.S)]
    assert not [v for v in values if v in FIELD_LABELS or v in ("confirmed", "active")]
    for worded in ("Meetings you signed up for", "You have a place", "Active", "Kosten, Planning"):
        assert worded in html.unescape(document), worded


def test_a_withdrawn_pledge_is_exported_as_withdrawn(street: dict[str, Any]) -> None:
    interest.withdraw(street["anna_pledge"])
    [pledged] = residents.export_resident_data(street["anna"])["participation"]["interest_pledges"]
    assert pledged["withdrawn"] is True and pledged["withdrawn_at"] is not None


def test_erasure_frees_the_place_and_keeps_the_meeting_figures(street: dict[str, Any]) -> None:
    upcoming, past = street["upcoming"], street["past"]
    past_before = meetings.counts(past)

    residents.erase_resident(street["anna"])

    anna_id = street["anna"].id
    assert not db.session.scalars(
        select(Rsvp).where(
            or_(Rsvp.user_id == anna_id, func.lower(Rsvp.email) == "anna@example.nl")
        )
    ).all()
    erased = db.session.get(Rsvp, street["anna_rsvp"].id)
    assert erased is not None
    assert (erased.status, erased.name, erased.email) == (RsvpStatus.CANCELLED, None, None)
    assert erased.erased_at is not None
    # The waiting list moved up, and Chantal is told.
    chantal = db.session.get(Rsvp, street["chantal_rsvp"].id)
    assert chantal is not None and chantal.status is RsvpStatus.CONFIRMED
    assert db.session.scalar(
        select(OutboxJob.id).where(OutboxJob.key.like(f"meeting-promoted:{chantal.id}:%"))
    )
    assert meetings.counts(upcoming)[RsvpStatus.CONFIRMED] == 2
    # The past meeting: who came stays counted, without who it was.
    assert meetings.counts(past) == past_before
    kept = db.session.get(Rsvp, street["anna_past"].id)
    assert kept is not None and kept.attended is True and kept.email is None
    # Bob's are untouched.
    for entry in (street["bob_rsvp"], street["bob_past"]):
        db.session.refresh(entry)
        assert entry.email == "bob@example.nl" and entry.status is RsvpStatus.CONFIRMED


def test_erasure_takes_the_pledge_out_of_the_campaign_count(street: dict[str, Any]) -> None:
    campaign = street["campaign"]
    assert interest.interested_count(campaign.id) == 3

    residents.erase_resident(street["anna"])

    assert interest.interested_count(campaign.id) == 2
    assert db.session.get(InterestPledge, street["anna_pledge"].id) is None
    bob = db.session.get(InterestPledge, street["bob_pledge"].id)
    assert bob is not None and bob.email == "bob@example.nl" and bob.withdrawn_at is None


def test_a_reached_threshold_stays_reached_and_is_not_announced_again(
    street: dict[str, Any],
) -> None:
    campaign = street["campaign"]
    pledge(campaign, 4, "Eva Mulder", "eva@example.nl")  # 4 of 3 needed: reached
    db.session.refresh(campaign)
    reached_at = campaign.threshold_reached_at
    assert reached_at is not None
    announced = set(db.session.scalars(select(OutboxJob.key)).all())

    residents.erase_resident(street["anna"])
    # Back at 3 of 3: a new pledge counts without a second announcement.
    pledge(campaign, 5, "Fleur de Boer", "fleur@example.nl")

    db.session.refresh(campaign)
    assert campaign.threshold_reached_at == reached_at
    new_keys = set(db.session.scalars(select(OutboxJob.key)).all()) - announced
    assert not [k for k in new_keys if k.startswith("interest-threshold:")]
    assert interest.interested_count(campaign.id) == 4


def test_erasure_deletes_the_survey_response_and_leaves_the_neighbours(
    street: dict[str, Any],
) -> None:
    survey = street["survey"]
    anna_response_id = street["anna_response"].id
    assert surveys.response_count(survey) == 2

    residents.erase_resident(street["anna"])

    assert surveys.response_count(survey) == 1
    assert db.session.get(SurveyResponse, anna_response_id) is None
    assert not db.session.scalars(
        select(SurveyAnswer).where(SurveyAnswer.response_id == anna_response_id)
    ).all()
    bob = db.session.get(SurveyResponse, street["bob_response"].id)
    assert bob is not None and bob.email == "bob@example.nl" and len(bob.answers) == 5


def test_erasure_removes_the_ambassador_role_and_contacts_by_or_about_the_person(
    street: dict[str, Any],
) -> None:
    residents.erase_resident(street["anna"])

    assert db.session.get(Ambassador, street["anna_role"].id) is None
    assert db.session.get(AmbassadorContact, street["anna_logged"].id) is None
    assert db.session.get(AmbassadorContact, street["about_anna"].id) is None
    # Bob is still an ambassador, with his contact about another neighbour.
    bob_role = db.session.get(Ambassador, street["bob_role"].id)
    assert bob_role is not None
    assert [c.note for c in ambassadors.contacts_of(bob_role)] == ["Daan komt naar de avond"]


def test_erasure_anonymises_the_emails_sent_to_the_forms_address(street: dict[str, Any]) -> None:
    # The survey link and the interest confirmation were sent without the account's id.
    assert db.session.scalar(
        select(EmailLog.id).where(
            EmailLog.recipient == "anna@example.nl", EmailLog.user_id.is_(None)
        )
    )

    residents.erase_resident(street["anna"])

    assert not db.session.scalars(
        select(EmailLog).where(EmailLog.recipient == "anna@example.nl")
    ).all()
    assert db.session.scalars(select(EmailLog).where(EmailLog.recipient == "bob@example.nl")).all()


def test_participation_is_erased_in_the_one_transaction_of_the_erasure(
    street: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from coop.payments import services as payments

    def broken(registration_ids: list[int]) -> None:
        raise RuntimeError("payments unavailable")

    anna = street["anna"]
    pledge_id = street["anna_pledge"].id
    with monkeypatch.context() as patched:
        patched.setattr(payments, "forget_registrations", broken)
        with pytest.raises(RuntimeError):
            residents.erase_resident(anna)
    db.session.rollback()
    # Nothing of the failed erasure stayed: participation did not commit on its own.
    assert db.session.get(InterestPledge, pledge_id) is not None
    assert interest.interested_count(street["campaign"].id) == 3

    residents.erase_resident(anna)
    assert db.session.get(InterestPledge, pledge_id) is None
