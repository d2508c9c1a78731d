"""Realistic demo data: a municipal energy desk in Utrecht, two neighbourhoods, two open actions,
six installers and a few hundred registrations in different stages; and a closed roof insulation
action whose orders went to Groen Dak & Gevel, with households at every step of the work, plus a
closed glazing action with a tender round open for bids."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select

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
    Neighbourhood,
    PriceTier,
)
from coop.core.time import utcnow
from coop.demo.households import seed_registrations
from coop.demo.participation import seed_participation
from coop.demo.people import DEMO_PASSWORD, INSTALLERS
from coop.demo.work import DEMO_ORDER_INSTALLER, seed_orders
from coop.extensions import db
from coop.installers.models import Installer, InstallerOffer

__all__ = ["DEMO_ORDER_INSTALLER", "DEMO_PASSWORD", "seed_demo"]


def seed_demo(registrations: int = 300, seed: int = 2026) -> list[tuple[str, str, str]] | None:
    """Fill an empty database; returns (role, email, password) of the demo logins."""
    if db.session.scalar(select(func.count()).select_from(Organisation)):
        return None
    rng = random.Random(seed)
    measures = ensure_catalogue()
    now = utcnow()
    desk = Organisation(
        name="Energieloket Gemeente Utrecht",
        kind=OrganisationKind.MUNICIPALITY,
        municipality="Utrecht",
        email="energieloket@utrecht.example",
        phone="030 286 00 00",
    )
    db.session.add(desk)
    db.session.flush()
    account_events.organisation_created.send(desk)  # its VAT rates
    lunetten = Neighbourhood(
        organisation=desk,
        name="Lunetten",
        municipality="Utrecht",
        household_count=4800,
        postcode_areas="3521,3523,3524",
    )
    zuilen = Neighbourhood(
        organisation=desk,
        name="Zuilen",
        municipality="Utrecht",
        household_count=7300,
        postcode_areas="3551,3552,3553,3554",
    )
    db.session.add_all([lunetten, zuilen])

    insulation = Action(
        organisation=desk,
        slug="isolatie-lunetten-zuilen-2027",
        title_nl="Samen isoleren in Lunetten en Zuilen",
        title_en="Insulating together in Lunetten and Zuilen",
        summary_nl="Met de buurt tegelijk je huis isoleren: één keer uitzoeken, een scherpe groepsprijs en vakmensen die straat voor straat werken.",
        summary_en="Insulate your home together with your neighbours: one selection, a sharp group price and professionals who work street by street.",
        status=ActionStatus.OPEN,
        registration_opens_at=now - timedelta(days=20),
        registration_closes_at=now + timedelta(days=40),
        contact_email="isoleren@utrecht.example",
        contact_phone="030 286 00 00",
        postcode_areas=",".join(lunetten.pc4_list + zuilen.pc4_list),
        neighbourhoods=[lunetten, zuilen],
    )
    for position, (code, price, tiers) in enumerate(
        [
            ("cavity_wall", 2500, [(50, 2300), (150, 2100), (300, 1950)]),
            ("roof", 5200, [(50, 4900), (150, 4600)]),
            ("floor", 3400, [(50, 3200), (150, 2950)]),
            ("glazing", 21000, [(40, 19900), (120, 18800)]),
        ]
    ):
        insulation.measures.append(
            ActionMeasure(
                measure=measures[code],
                position=position,
                indicative_price_cents=price,
                tiers=[PriceTier(min_participants=m, price_cents=p) for m, p in tiers],
            )
        )
    today = date.today()
    insulation.milestones = [
        ActionMilestone(
            on_date=today - timedelta(days=20),
            label_nl="Aanmelding geopend",
            label_en="Registration opened",
        ),
        ActionMilestone(
            on_date=today + timedelta(days=10),
            label_nl="Informatieavond in buurthuis De Leeuw",
            label_en="Information evening at community centre De Leeuw",
        ),
        ActionMilestone(
            on_date=today + timedelta(days=40),
            label_nl="Aanmelding sluit",
            label_en="Registration closes",
        ),
        ActionMilestone(
            on_date=today + timedelta(days=55),
            label_nl="Installateurs gekozen, opnames beginnen",
            label_en="Installers chosen, site surveys start",
        ),
        ActionMilestone(
            on_date=today + timedelta(days=90),
            label_nl="Uitvoering straat voor straat",
            label_en="Work street by street",
        ),
    ]
    insulation.faqs = [
        ActionFaq(
            position=1,
            question_nl="Zit ik ergens aan vast als ik me aanmeld?",
            question_en="Am I committed to anything when I register?",
            answer_nl="Nee. Je krijgt eerst een opname en een offerte op maat. Pas als je die accepteert, ga je een overeenkomst aan.",
            answer_en="No. You first get a site survey and a personal quote. Only when you accept it do you enter into an agreement.",
        ),
        ActionFaq(
            position=2,
            question_nl="Kan ik subsidie krijgen?",
            question_en="Can I get a subsidy?",
            answer_nl="Voor twee of meer isolatiemaatregelen kun je ISDE-subsidie aanvragen bij de RVO. Het energieloket helpt je daarbij.",
            answer_en="For two or more insulation measures you can apply for the ISDE subsidy at RVO. The energy desk helps you with it.",
        ),
        ActionFaq(
            position=3,
            question_nl="Ik huur mijn woning. Kan ik meedoen?",
            question_en="I rent my home. Can I take part?",
            answer_nl="Ja, meld je aan en geef aan dat je huurt. Wij nemen contact op met je verhuurder of woningcorporatie.",
            answer_en="Yes, register and say that you rent. We contact your landlord or housing corporation.",
        ),
    ]
    heat_pump = Action(
        organisation=desk,
        slug="hybride-warmtepomp-zuilen-2027",
        title_nl="Hybride warmtepomp in Zuilen",
        title_en="Hybrid heat pump in Zuilen",
        summary_nl="Halveer je gasverbruik met een hybride warmtepomp, samen ingekocht voor de hele wijk.",
        summary_en="Halve your gas use with a hybrid heat pump, bought together for the whole neighbourhood.",
        status=ActionStatus.OPEN,
        registration_opens_at=now - timedelta(days=10),
        registration_closes_at=now + timedelta(days=50),
        contact_email="warmtepomp@utrecht.example",
        contact_phone="030 286 00 00",
        postcode_areas=",".join(zuilen.pc4_list),
        neighbourhoods=[zuilen],
        deposit_cents=25000,
    )
    heat_pump.measures.append(
        ActionMeasure(
            measure=measures["hybrid_heat_pump"],
            position=0,
            indicative_price_cents=480000,
            tiers=[
                PriceTier(min_participants=25, price_cents=455000),
                PriceTier(min_participants=75, price_cents=430000),
            ],
        )
    )
    heat_pump.milestones = [
        ActionMilestone(
            on_date=today - timedelta(days=10),
            label_nl="Aanmelding geopend",
            label_en="Registration opened",
        ),
        ActionMilestone(
            on_date=today + timedelta(days=50),
            label_nl="Aanmelding sluit",
            label_en="Registration closes",
        ),
    ]
    heat_pump.faqs = [
        ActionFaq(
            position=1,
            question_nl="Is mijn huis geschikt?",
            question_en="Is my home suitable?",
            answer_nl="Een hybride warmtepomp past bij de meeste woningen met energielabel D of beter. Bij de opname kijkt de installateur mee.",
            answer_en="A hybrid heat pump suits most homes with energy label D or better. The installer checks during the site survey.",
        ),
    ]
    db.session.add_all([insulation, heat_pump])

    staff = User(
        email="medewerker@utrecht.example",
        name="Sanne Willems",
        role=Role.STAFF,
        organisation=desk,
        password_hash=hash_password(DEMO_PASSWORD),
        # The desk's admin, as the first account of a new desk is: team and audit log too.
        is_desk_admin=True,
    )
    db.session.add(staff)
    logins = [("desk admin", staff.email, DEMO_PASSWORD)]
    for company, kvk, city, area, offers in INSTALLERS:
        installer = Installer(
            organisation=desk,
            company_name=company,
            kvk_number=kvk,
            email=f"info@{kvk}.example",
            city=city,
            service_area=area,
        )
        for code, (price, capacity) in offers.items():
            installer.offers.append(
                InstallerOffer(
                    measure=measures[code], unit_price_cents=price, homes_per_week=capacity
                )
            )
        db.session.add(installer)
        db.session.flush()
        user = User(
            email=f"planning@{kvk}.example",
            name=f"Planning {company}",
            role=Role.INSTALLER,
            installer_id=installer.id,
            password_hash=hash_password(DEMO_PASSWORD),
        )
        db.session.add(user)
        logins.append(("installer", user.email, DEMO_PASSWORD))
    db.session.flush()

    seed_registrations(rng, [insulation, heat_pump], registrations, now)
    db.session.commit()
    seed_participation(rng, desk, lunetten, zuilen)
    seed_orders(rng, desk, lunetten, staff, now)
    return logins
