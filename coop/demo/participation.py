"""Demo participation: Lunetten explores a heat network (a public neighbourhood page, an
information evening with a waiting list and a street meeting, a survey with answers, an interest
campaign, an ambassador for the Hondsrug); Zuilen has a page that is not public yet."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from coop.accounts.models import Organisation
from coop.actions.models import (
    Neighbourhood,
)
from coop.core.time import utcnow
from coop.demo.people import FIRST, LAST, STREETS
from coop.extensions import db
from coop.participation.models import (
    Ambassador,
    AmbassadorStatus,
    CountDimension,
    HouseholdCount,
    InterestCampaign,
    InterestPledge,
    Meeting,
    MeetingKind,
    MeetingLanguage,
    NeighbourhoodProfile,
    Perspective,
    PerspectiveState,
    PerspectiveStatus,
    QuestionKind,
    Rsvp,
    RsvpStatus,
    Survey,
    SurveyAnswer,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
    SurveyStatus,
    WijkPhase,
)
from coop.registrations.models import (
    Household,
    Ownership,
    Registration,
    RegistrationStatus,
    StatusChange,
)


def seed_participation(
    rng: random.Random, desk: Organisation, lunetten: Neighbourhood, zuilen: Neighbourhood
) -> None:
    """Lunetten explores a heat network: a public neighbourhood page, an information evening
    with a waiting list and a street meeting, a survey with answers, an interest campaign, and
    an ambassador for the Hondsrug; Zuilen has a page that is not public yet."""
    now = utcnow()
    evening = now.replace(hour=18, minute=30, second=0, microsecond=0) + timedelta(days=10)
    db.session.add_all(
        [
            NeighbourhoodProfile(
                neighbourhood_id=lunetten.id,
                phase=WijkPhase.EXPLORING,
                is_public=True,
                intro_nl="Lunetten onderzoekt samen met bewoners, Mitros en Stedin of een "
                "warmtenet op restwarmte een goed alternatief voor aardgas is.",
                intro_en="Lunetten, with its residents, Mitros and Stedin, explores whether a "
                "heat network on residual heat is a good alternative to natural gas.",
                perspectives=[
                    PerspectiveStatus(
                        perspective=Perspective.RESIDENTS,
                        state=PerspectiveState.ON_TRACK,
                        explanation_nl="Ruim 200 huishoudens vulden de enquête in; huurders "
                        "blijven achter.",
                        explanation_en="Over 200 households answered the survey; tenants lag "
                        "behind.",
                    ),
                    PerspectiveStatus(
                        perspective=Perspective.BUSINESS_OWNERS,
                        state=PerspectiveState.ON_TRACK,
                        explanation_nl="Woningcorporatie Mitros doet mee met 600 woningen.",
                        explanation_en="Housing corporation Mitros takes part with 600 homes.",
                    ),
                    PerspectiveStatus(
                        perspective=Perspective.DECISION_MAKING,
                        state=PerspectiveState.ON_TRACK,
                        explanation_nl="De gemeenteraad besluit in het voorjaar over het "
                        "wijkuitvoeringsplan.",
                        explanation_en="The council decides on the neighbourhood plan in spring.",
                    ),
                    PerspectiveStatus(
                        perspective=Perspective.AFFORDABLE,
                        state=PerspectiveState.ATTENTION,
                        explanation_nl="De aansluitbijdrage is nog onbekend.",
                        explanation_en="The connection fee is not known yet.",
                    ),
                    PerspectiveStatus(
                        perspective=Perspective.FITTING_OFFER,
                        state=PerspectiveState.ON_TRACK,
                        explanation_nl="Isolatie loopt via de collectieve actie.",
                        explanation_en="Insulation runs through the collective action.",
                    ),
                    PerspectiveStatus(
                        perspective=Perspective.RELIABLE_NETWORK,
                        state=PerspectiveState.NOT_STARTED,
                    ),
                ],
            ),
            NeighbourhoodProfile(neighbourhood_id=zuilen.id, phase=WijkPhase.STARTING),
        ]
    )
    for dimension, value, households in [
        (CountDimension.PC4, "3521", 900),
        (CountDimension.PC4, "3523", 1500),
        (CountDimension.PC4, "3524", 2400),
        (CountDimension.OWNERSHIP, Ownership.OWNER.value, 2300),
        (CountDimension.OWNERSHIP, Ownership.PRIVATE_TENANT.value, 700),
        (CountDimension.OWNERSHIP, Ownership.CORPORATION_TENANT.value, 1500),
        (CountDimension.OWNERSHIP, Ownership.VVE_MEMBER.value, 300),
    ]:
        db.session.add(
            HouseholdCount(
                neighbourhood_id=lunetten.id,
                dimension=dimension,
                value=value,
                households=households,
            )
        )
    information = Meeting(
        organisation_id=desk.id,
        neighbourhood_id=lunetten.id,
        kind=MeetingKind.INFORMATION_EVENING,
        title_nl="Informatieavond warmtenet Lunetten",
        title_en="Information evening heat network Lunetten",
        description_nl="Wat is een warmtenet, wat kost het en wat betekent het voor je woning?",
        description_en="What is a heat network, what does it cost, what does it mean for your home?",
        location="Buurthuis De Leeuw, Hondsrug 2, Utrecht",
        starts_at=evening,
        ends_at=evening + timedelta(hours=2),
        capacity=40,
        language=MeetingLanguage.BOTH,
    )
    street_meeting = Meeting(
        organisation_id=desk.id,
        neighbourhood_id=lunetten.id,
        kind=MeetingKind.STREET_MEETING,
        title_nl="Straatgesprek Drentsche Aa",
        title_en="Street meeting Drentsche Aa",
        location="Speeltuin Drentsche Aa, Utrecht",
        starts_at=evening + timedelta(days=4),
        ends_at=evening + timedelta(days=4, hours=1, minutes=30),
        capacity=15,
        language=MeetingLanguage.DUTCH,
    )
    db.session.add_all([information, street_meeting])
    for number in range(46):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        information.rsvps.append(
            Rsvp(
                name=f"{first} {last}",
                email=f"rsvp{number}.{first}@voorbeeld.nl".lower(),
                status=RsvpStatus.CONFIRMED if number < 40 else RsvpStatus.WAITING,
                queued_at=now - timedelta(hours=200 - number),
                consent_at=now - timedelta(hours=200 - number),
            )
        )
    survey = Survey(
        organisation_id=desk.id,
        neighbourhood_id=lunetten.id,
        title_nl="Hoe wil je straks je huis verwarmen?",
        title_en="How would you like to heat your home in future?",
        intro_nl="Vijf korte vragen. Je antwoorden helpen bij de keuze voor een warmtenet.",
        intro_en="Five short questions. Your answers help decide on a heat network.",
        status=SurveyStatus.OPEN,
        opened_at=now - timedelta(days=12),
        questions=[
            SurveyQuestion(
                position=0,
                kind=QuestionKind.SINGLE,
                text_nl="Wat vind je van een warmtenet in Lunetten?",
                text_en="What do you think of a heat network in Lunetten?",
                options=[
                    SurveyOption(position=0, text_nl="Goed idee", text_en="Good idea"),
                    SurveyOption(position=1, text_nl="Weet ik nog niet", text_en="Not sure yet"),
                    SurveyOption(position=2, text_nl="Liever niet", text_en="Rather not"),
                ],
            ),
            SurveyQuestion(
                position=1,
                kind=QuestionKind.MULTIPLE,
                text_nl="Waar wil je meer over weten?",
                text_en="What would you like to know more about?",
                required=False,
                options=[
                    SurveyOption(position=0, text_nl="Kosten", text_en="Costs"),
                    SurveyOption(position=1, text_nl="Planning", text_en="Planning"),
                    SurveyOption(position=2, text_nl="Isoleren", text_en="Insulation"),
                ],
            ),
            SurveyQuestion(
                position=2,
                kind=QuestionKind.SCALE,
                text_nl="Hoe tevreden ben je over je huidige verwarming?",
                text_en="How satisfied are you with your current heating?",
            ),
            SurveyQuestion(
                position=3,
                kind=QuestionKind.OPEN,
                text_nl="Wat wil je de gemeente meegeven?",
                text_en="What would you like to tell the municipality?",
                required=False,
            ),
        ],
    )
    db.session.add(survey)
    db.session.flush()
    single, multiple, scale, open_question = survey.questions
    remarks = [
        "Graag duidelijkheid over de kosten.",
        "Wij hebben net een nieuwe cv-ketel.",
        "Prima plan, als het betaalbaar is.",
        "Ik huur; wat doet Mitros?",
    ]
    campaign = InterestCampaign(
        organisation_id=desk.id,
        neighbourhood_id=lunetten.id,
        title_nl="Interesse in een warmtenet voor Lunetten",
        title_en="Interest in a heat network for Lunetten",
        description_nl="Geef vrijblijvend aan of je huishouden interesse heeft. Bij 30% van de "
        "huishoudens werken we het plan verder uit.",
        description_en="Say, without obligation, whether your household is interested. At 30% "
        "of the households we work the plan out further.",
        household_count=lunetten.household_count or 4800,
        threshold_percent=30,
        deadline_at=now + timedelta(days=45),
    )
    db.session.add(campaign)
    db.session.flush()
    used: set[tuple[str, int]] = set()
    for number in range(260):
        street, pc4, letters = rng.choice(STREETS["Lunetten"])
        house_number = rng.randint(181, 400)  # apart from the registrations' numbers
        if (street, house_number) in used:
            continue
        used.add((street, house_number))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        ownership = rng.choices(list(Ownership), weights=[70, 8, 15, 7])[0]
        opted_in = rng.random() < 0.3
        if pc4 == "3521" and rng.random() < 0.7:
            continue  # the Balijelaan is hardly reached: the reach table shows it
        response = SurveyResponse(
            survey_id=survey.id,
            postcode=f"{pc4} {letters}",
            pc4=pc4,
            house_number=house_number,
            house_number_addition="",
            street=street,
            ownership=ownership,
            name=f"{first} {last}",
            email=f"enquete{number}.{first}@voorbeeld.nl".lower(),
            contact_opt_in=opted_in,
            consent_at=now - timedelta(days=rng.uniform(0, 12)),
            answers=[
                SurveyAnswer(question_id=single.id, option_id=rng.choice(single.options).id),
                SurveyAnswer(question_id=multiple.id, option_id=rng.choice(multiple.options).id),
                SurveyAnswer(question_id=scale.id, scale_value=rng.randint(1, 5)),
            ],
        )
        if rng.random() < 0.25:
            response.answers.append(
                SurveyAnswer(question_id=open_question.id, text=rng.choice(remarks))
            )
        db.session.add(response)
        if rng.random() < 0.5:
            db.session.add(
                InterestPledge(
                    campaign_id=campaign.id,
                    postcode=f"{pc4} {letters}",
                    pc4=pc4,
                    house_number=house_number,
                    house_number_addition="",
                    street=street,
                    name=f"{first} {last}",
                    email=f"interesse{number}.{first}@voorbeeld.nl".lower(),
                    contact_opt_in=opted_in,
                    consent_at=now - timedelta(days=rng.uniform(0, 12)),
                )
            )
    # The first homes of Lunetten are done: the neighbourhood page counts their saving.
    done = db.session.scalars(
        select(Registration)
        .join(Household, Household.id == Registration.household_id)
        .where(
            Household.pc4.in_(lunetten.pc4_list),
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .order_by(Registration.id)
        .limit(14)
    ).all()
    for registration in done:
        registration.history.append(
            StatusChange(
                from_status=RegistrationStatus.CONFIRMED,
                to_status=RegistrationStatus.INSTALLED,
                at=now - timedelta(days=2),
            )
        )
        registration.status = RegistrationStatus.INSTALLED
    # A resident of the Hondsrug with a registration is the ambassador of that street.
    hondsrug = db.session.scalars(
        select(Registration)
        .join(Household, Household.id == Registration.household_id)
        .where(Household.street == "Hondsrug")
        .order_by(Registration.id)
        .limit(2)
    ).all()
    for index, registration in enumerate(hondsrug):
        db.session.add(
            Ambassador(
                user_id=registration.user_id,
                neighbourhood_id=lunetten.id,
                street="Hondsrug",
                pc4=registration.household.pc4,
                motivation="Ik woon hier al twintig jaar en help graag.",
                status=AmbassadorStatus.ACTIVE if index == 0 else AmbassadorStatus.VOLUNTEERED,
                approved_at=now if index == 0 else None,
            )
        )
    db.session.commit()
