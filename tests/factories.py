"""Test data in the domain's own words: an energy desk, an open action, a resident."""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from coop.accounts import events as account_events
from coop.accounts.models import Organisation, OrganisationKind, Role, User
from coop.accounts.services import hash_password
from coop.actions.catalogue import ensure_catalogue
from coop.actions.models import (
    Action,
    ActionFaq,
    ActionMeasure,
    ActionMilestone,
    ActionStatus,
    PriceTier,
)
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer, InstallerOffer
from coop.orders.models import VatRate
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def password_hash() -> str:
    """The hash of ``PASSWORD``, made once: Argon2id is meant to be slow, and every test that
    makes a staff member or an installer user would otherwise pay for it again."""
    return hash_password(PASSWORD)


def organisation(name: str = "Energieloket Utrecht") -> Organisation:
    org = Organisation(
        name=name,
        kind=OrganisationKind.MUNICIPALITY,
        municipality="Utrecht",
        email="loket@example.nl",
    )
    db.session.add(org)
    db.session.flush()
    account_events.organisation_created.send(org)  # its VAT rates, as a desk made for real
    db.session.commit()
    return org


def action(
    org: Organisation | None = None,
    *,
    slug: str = "samen-isoleren",
    pc4s: str = "3521,3524",
    status: ActionStatus = ActionStatus.OPEN,
    opens_in_days: float = -5,
    closes_in_days: float = 30,
) -> Action:
    org = org or organisation()
    measures = ensure_catalogue()
    now = utcnow()
    item = Action(
        organisation=org,
        slug=slug,
        title_nl="Samen isoleren",
        title_en="Insulating together",
        summary_nl="Samen isoleren in de wijk.",
        summary_en="Insulate together in the neighbourhood.",
        status=status,
        registration_opens_at=now + timedelta(days=opens_in_days),
        registration_closes_at=now + timedelta(days=closes_in_days),
        contact_email="isoleren@example.nl",
        contact_phone="030 123 45 67",
        postcode_areas=pc4s,
    )
    item.measures = [
        ActionMeasure(
            measure=measures["roof"],
            position=0,
            indicative_price_cents=5000,
            tiers=[
                PriceTier(min_participants=2, price_cents=4500),
                PriceTier(min_participants=5, price_cents=4000),
            ],
        ),
        ActionMeasure(
            measure=measures["hybrid_heat_pump"],
            position=1,
            indicative_price_cents=450000,
            tiers=[],
        ),
    ]
    item.milestones = [
        ActionMilestone(
            on_date=(now + timedelta(days=10)).date(),
            label_nl="Informatieavond",
            label_en="Information evening",
        )
    ]
    item.faqs = [
        ActionFaq(
            position=1,
            question_nl="Kost het iets?",
            question_en="Does it cost anything?",
            answer_nl="Nee.",
            answer_en="No.",
        )
    ]
    db.session.add(item)
    db.session.commit()
    return item


def staff(org: Organisation, email: str = "staff@example.nl") -> User:
    user = User(
        email=email,
        name="Sanne Staff",
        role=Role.STAFF,
        organisation_id=org.id,
        password_hash=password_hash(),
    )
    db.session.add(user)
    db.session.commit()
    return user


def registration_form(act: Action, **overrides: Any) -> dict[str, Any]:
    """A complete, valid sign-up as the form posts it."""
    roof, heat_pump = act.measures[0], act.measures[1]
    data: dict[str, Any] = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "phone": "06 12345678",
        "postcode": "3524ba",
        "house_number": "12",
        "house_number_addition": "a",
        "street": "Hondsrug",
        "city": "Utrecht",
        "dwelling_type": "terraced",
        "build_year": "1978",
        "ownership": "owner",
        "energy_label": "D",
        f"measure_{roof.id}": "y",
        f"quantity_{roof.id}": "45",
        f"measure_{heat_pump.id}": "",
        f"quantity_{heat_pump.id}": "",
        "consent": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def csrf_token(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def post_form(
    client: FlaskClient,
    url: str,
    data: dict[str, Any],
    *,
    token_from: str | None = None,
    **kwargs: Any,
) -> Any:
    """Post like a browser does: first load the page for its CSRF token."""
    token = csrf_token(client, token_from or url)
    return client.post(url, data={**data, "csrf_token": token}, **kwargs)


# --- installers, confirmed registrations: the world of orders --------------------------------


def installer(
    org: Organisation,
    name: str = "Dakwerk Utrecht BV",
    *,
    area: str = "3500-3599",
    offers: dict[str, tuple[int, int]] | None = None,
    email: str | None = None,
    kvk: str | None = None,
) -> Installer:
    """An installer in the desk's registry; ``offers`` maps measure codes to (price per unit in
    cents, homes per week)."""
    measures = ensure_catalogue()
    slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    company = Installer(
        organisation_id=org.id,
        company_name=name,
        kvk_number=kvk or str(10_000_000 + len(name) * 7919 % 89_999_999)[:8],
        contact_name="Planning",
        email=email or f"planning@{slug}.example",
        phone="030 765 43 21",
        city="Utrecht",
        service_area=area,
        offers=[
            InstallerOffer(
                measure_id=measures[code].id, unit_price_cents=price, homes_per_week=per_week
            )
            for code, (price, per_week) in (offers or {"roof": (4200, 5)}).items()
        ],
    )
    db.session.add(company)
    db.session.commit()
    return company


def installer_user(company: Installer, email: str | None = None) -> User:
    user = User(
        email=email or f"fitter@{company.email.split('@')[1]}",
        name="Fatima Fitter",
        role=Role.INSTALLER,
        installer_id=company.id,
        password_hash=password_hash(),
    )
    db.session.add(user)
    db.session.commit()
    return user


# --- VAT rates: each desk's, as ``organisation()`` starts it with -------------------------------


def vat_rates(org: Organisation) -> list[VatRate]:
    """The desk's VAT rates: those it started with and any added since."""
    return list(
        db.session.scalars(
            select(VatRate).where(VatRate.organisation_id == org.id).order_by(VatRate.id)
        )
    )


def vat_rate(
    org: Organisation,
    percent: int,
    valid_from: date,
    valid_until: date | None = None,
    *,
    name_nl: str = "Testtarief",
    name_en: str = "Test rate",
) -> VatRate:
    """A rate of the desk recorded directly, whatever its days (the service only adds rates
    from today)."""
    rate = VatRate(
        organisation_id=org.id,
        percent=percent,
        name_nl=name_nl,
        name_en=name_en,
        source="https://www.belastingdienst.nl/",
        valid_from=valid_from,
        valid_until=valid_until,
    )
    db.session.add(rate)
    db.session.commit()
    return rate


_house_numbers = iter(range(1, 10**6))


def confirmed_registration(
    act: Action,
    *,
    postcode: str = "3521 AB",
    street: str = "Vondellaan",
    number: int | None = None,
    measures: dict[str, int] | None = None,
    email: str | None = None,
    name: str = "Anna de Vries",
) -> Registration:
    """A confirmed registration of a household, as after the resident followed the link;
    ``measures`` maps measure codes of the action to quantities."""
    now = utcnow()
    if number is None:
        # Skip a number already taken at this postcode (a browser module's seeded resident
        # lives at 3521 AB 7, and the counter is shared by every module in the process).
        number = next(_house_numbers)
        while db.session.scalar(
            select(Household.id).where(
                Household.postcode == postcode, Household.house_number == number
            )
        ):
            number = next(_house_numbers)
    wanted = measures or {"roof": 40}
    offered = {m.measure.code: m for m in act.measures}
    resident = User(
        email=email or f"resident-{postcode.replace(' ', '').lower()}-{number}@example.nl",
        name=name,
    )
    registration = Registration(
        action=act,
        household=Household(
            postcode=postcode,
            house_number=number,
            house_number_addition="",
            street=street,
            city="Utrecht",
            dwelling_type=DwellingType.TERRACED,
            build_year=1978,
            ownership=Ownership.OWNER,
        ),
        user=resident,
        status=RegistrationStatus.CONFIRMED,
        consent_at=now,
        consent_version="test",
        created_at=now,
        measures=[
            RegistrationMeasure(action_measure_id=offered[code].id, quantity=quantity)
            for code, quantity in wanted.items()
        ],
        history=[
            StatusChange(to_status=RegistrationStatus.PENDING_CONFIRMATION, at=now),
            StatusChange(
                from_status=RegistrationStatus.PENDING_CONFIRMATION,
                to_status=RegistrationStatus.CONFIRMED,
                at=now,
            ),
        ],
    )
    db.session.add(registration)
    db.session.commit()
    return registration


# --- participation -----------------------------------------------------------------------


def neighbourhood(
    org: Organisation, *, name: str = "Lunetten", pc4s: str = "3524,3523", households: int = 100
) -> Any:
    from coop.actions.models import Neighbourhood

    item = Neighbourhood(
        organisation_id=org.id,
        name=name,
        municipality="Utrecht",
        postcode_areas=pc4s,
        household_count=households,
    )
    db.session.add(item)
    db.session.commit()
    return item


def meeting(
    org: Organisation, *, capacity: int = 2, starts_in_days: float = 7, **extra: Any
) -> Any:
    from coop.participation.models import Meeting, MeetingKind, MeetingLanguage

    starts = utcnow() + timedelta(days=starts_in_days)
    item = Meeting(
        organisation_id=org.id,
        kind=MeetingKind.INFORMATION_EVENING,
        title_nl="Informatieavond warmtenet",
        title_en="Information evening heat network",
        location="Buurthuis De Leeuw, Utrecht",
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        capacity=capacity,
        language=MeetingLanguage.DUTCH,
        **extra,
    )
    db.session.add(item)
    db.session.commit()
    return item


def survey(nb: Any, *, open_: bool = True) -> Any:
    from coop.participation.models import (
        QuestionKind,
        Survey,
        SurveyOption,
        SurveyQuestion,
        SurveyStatus,
    )

    item = Survey(
        organisation_id=nb.organisation_id,
        neighbourhood_id=nb.id,
        title_nl="Hoe wilt u straks verwarmen?",
        title_en="How would you like to heat your home?",
        status=SurveyStatus.OPEN if open_ else SurveyStatus.DRAFT,
        opened_at=utcnow() if open_ else None,
        questions=[
            SurveyQuestion(
                position=0,
                kind=QuestionKind.SINGLE,
                text_nl="Wat vindt u van een warmtenet?",
                text_en="What do you think of a heat network?",
                options=[
                    SurveyOption(position=0, text_nl="Goed idee", text_en="Good idea"),
                    SurveyOption(position=1, text_nl="Weet ik niet", text_en="Don't know"),
                    SurveyOption(position=2, text_nl="Liever niet", text_en="Rather not"),
                ],
            ),
            SurveyQuestion(
                position=1,
                kind=QuestionKind.MULTIPLE,
                text_nl="Waar wilt u meer over weten?",
                text_en="What would you like to know more about?",
                required=False,
                options=[
                    SurveyOption(position=0, text_nl="Kosten", text_en="Costs"),
                    SurveyOption(position=1, text_nl="Planning", text_en="Planning"),
                ],
            ),
            SurveyQuestion(
                position=2,
                kind=QuestionKind.SCALE,
                text_nl="Hoe tevreden bent u over uw huidige verwarming?",
                text_en="How satisfied are you with your current heating?",
            ),
            SurveyQuestion(
                position=3,
                kind=QuestionKind.OPEN,
                text_nl="Wat wilt u de gemeente meegeven?",
                text_en="What would you like to tell the municipality?",
                required=False,
            ),
        ],
    )
    db.session.add(item)
    db.session.commit()
    return item


def campaign(nb: Any, *, households: int = 10, percent: int = 30, days: float = 30) -> Any:
    from coop.participation.models import InterestCampaign

    item = InterestCampaign(
        organisation_id=nb.organisation_id,
        neighbourhood_id=nb.id,
        title_nl="Warmtenet Lunetten",
        title_en="Heat network Lunetten",
        household_count=households,
        threshold_percent=percent,
        deadline_at=utcnow() + timedelta(days=days),
    )
    db.session.add(item)
    db.session.commit()
    return item
