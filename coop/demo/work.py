"""A closed roof insulation action whose orders went to Groen Dak & Gevel, with households at
every step of the work and their deposits, and a closed glazing action with a tender round open
for bids: made through the services, as it would have happened over the last days."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from coop.accounts.models import Organisation, Role, User
from coop.actions import services as actions
from coop.actions.catalogue import ensure_catalogue
from coop.actions.models import (
    Action,
    ActionMeasure,
    ActionStatus,
    Neighbourhood,
)
from coop.core.time import AMSTERDAM
from coop.demo.people import FIRST, LAST
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders import fieldwork
from coop.orders import services as orders
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import RunTrigger
from coop.payments import services as payments
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)
from coop.tenders import services as tenders

# --- a closed action with orders at every step (the installer's portal) ------------------------

DEMO_ORDER_INSTALLER = "Groen Dak & Gevel"  # the cheapest roofer: it gets the orders
ROOF_STREETS = [
    ("Balijelaan", "3521", "GK", 4),
    ("Ravellijn", "3523", "HM", 3),
    ("Hondsrug", "3524", "BA", 5),
    ("Drentsche Aa", "3524", "BE", 4),
]


def _closed_action(
    desk: Organisation,
    hood: Neighbourhood,
    slug: str,
    title: tuple[str, str],
    measure: Any,
    price: int,
    now: datetime,
) -> Action:
    action = Action(
        organisation=desk,
        slug=slug,
        title_nl=title[0],
        title_en=title[1],
        summary_nl="De aanmelding is gesloten; de installateurs zijn aan het werk.",
        summary_en="Registration has closed; the installers are at work.",
        status=ActionStatus.OPEN,
        registration_opens_at=now - timedelta(days=70),
        registration_closes_at=now - timedelta(days=10),
        contact_email="isoleren@utrecht.example",
        contact_phone="030 286 00 00",
        postcode_areas=",".join(hood.pc4_list),
        neighbourhoods=[hood],
    )
    action.measures.append(
        ActionMeasure(measure=measure, position=0, indicative_price_cents=price, tiers=[])
    )
    db.session.add(action)
    return action


def _confirmed(
    rng: random.Random,
    action: Action,
    street: str,
    pc4: str,
    letters: str,
    number: int,
    quantity: int,
    created: datetime,
) -> Registration:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    serial = f"{action.slug[:6]}{pc4}{letters}{number}"
    registration = Registration(
        action=action,
        household=Household(
            postcode=f"{pc4} {letters}",
            house_number=number,
            house_number_addition="",
            street=street,
            city="Utrecht",
            dwelling_type=rng.choice([DwellingType.TERRACED, DwellingType.CORNER]),
            build_year=rng.randint(1965, 1985),
            ownership=Ownership.OWNER,
            energy_label=rng.choice(["D", "E", "F"]),
        ),
        user=User(
            email=f"{first}.{last}.{serial}@voorbeeld.nl".lower().replace(" ", ""),
            name=f"{first} {last}",
            phone=f"06 {rng.randint(10000000, 99999999)}",
            role=Role.RESIDENT,
        ),
        consent_at=created,
        consent_version="2026-11",
        created_at=created,
        status=RegistrationStatus.CONFIRMED,
        history=[
            StatusChange(to_status=RegistrationStatus.PENDING_CONFIRMATION, at=created),
            StatusChange(
                from_status=RegistrationStatus.PENDING_CONFIRMATION,
                to_status=RegistrationStatus.CONFIRMED,
                at=created + timedelta(hours=2),
            ),
        ],
        measures=[RegistrationMeasure(action_measure=action.measures[0], quantity=quantity)],
    )
    db.session.add(registration)
    return registration


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


def seed_orders(
    rng: random.Random, desk: Organisation, hood: Neighbourhood, staff: User, now: datetime
) -> None:
    """Through the services, as it would have happened over the last days: registration closed,
    matching with the registry prices approved three days ago, then the installer's work."""
    measures = ensure_catalogue()
    roof = _closed_action(
        desk,
        hood,
        "dakisolatie-lunetten-2026",
        ("Dakisolatie in Lunetten", "Roof insulation in Lunetten"),
        measures["roof"],
        5200,
        now,
    )
    # The roof action asks a deposit; without Stripe keys it is paid by bank transfer.
    roof.deposit_cents = 25000
    roof.deposit_iban = "NL91ABNA0417164300"
    roof.deposit_account_name = "Gemeente Utrecht, Energieloket"
    for street, pc4, letters, count in ROOF_STREETS:
        for n in range(count):
            created = now - timedelta(days=40)
            _confirmed(rng, roof, street, pc4, letters, 200 + n, rng.randint(30, 70), created)
    db.session.commit()
    approved = now - timedelta(days=3)
    actions.close_action(staff, roof, now=approved - timedelta(hours=2))
    run = orders.start_run(
        staff, roof, RunTrigger.STAFF, use_registry_prices=True, now=approved - timedelta(hours=1)
    )
    orders.compute_run(run.id, time_limit_s=5)
    sent = {o.batch.pc4: o for o in orders.approve_run(staff, run, now=approved)}
    company = db.session.scalars(
        select(Installer).where(Installer.company_name == DEMO_ORDER_INSTALLER)
    ).one()
    fitter = db.session.scalars(select(User).where(User.installer_id == company.id)).one()
    if {o.installer_id for o in sent.values()} != {company.id}:
        return  # the registry changed: no story to tell
    # 3523: no crew free, declined (its homes are matched again, without this installer);
    # 3521: still waiting for the answer; 3524: accepted, and the work is under way.
    orders.decline_order(
        fitter, sent["3523"], "Geen ploeg vrij in deze periode.", now=approved + timedelta(hours=3)
    )
    accepted = sent["3524"]
    orders.accept_order(fitter, accepted, now=approved + timedelta(hours=1))
    lines = fieldwork.lines_of_order(accepted)
    first_day = (approved + timedelta(days=1)).astimezone(AMSTERDAM).date()
    today = now.astimezone(AMSTERDAM).date()
    valid = today + timedelta(days=14)
    for index, line in enumerate(lines[:6]):
        fieldwork.plan_survey(
            fitter, line, _at(first_day, 9 + index), 45, now=approved + timedelta(hours=2)
        )
    for line in lines[:6]:
        items = [
            QuoteItemInput(
                "Dakisolatie (isolatieplaten en dampremmende folie)", line.quantity, 4200, 21
            ),
            QuoteItemInput("Steiger plaatsen en afvoer", 1, 27500, 21),
        ]
        fieldwork.send_quote(
            fitter,
            line,
            items,
            valid,
            "Inclusief afvoer van het oude materiaal.",
            now=_at(first_day, 17),
        )
    for line in lines[:4]:
        quote = line.quote
        assert quote is not None
        fieldwork.accept_quote(
            line.household_registration.user, quote, now=_at(first_day + timedelta(days=1), 8)
        )
    _seed_deposits(staff, lines[:4])
    declined = lines[5].quote
    assert declined is not None
    fieldwork.decline_quote(
        lines[5].household_registration.user,
        declined,
        "We wachten nog een jaar.",
        now=_at(first_day + timedelta(days=1), 9),
    )
    for line in lines[:2]:
        fieldwork.mark_installed(fitter, line, today - timedelta(days=1), now=now)
    fieldwork.confirm_installation(
        lines[0].household_registration.user,
        lines[0],
        5,
        "Netjes en snel gewerkt, alles opgeruimd.",
        now=now,
    )
    fieldwork.plan_installation(fitter, lines[2], today + timedelta(days=6), now=now)
    for index, line in enumerate(lines[6:8]):
        fieldwork.plan_survey(fitter, line, _at(today + timedelta(days=2), 10 + index), now=now)
    if len(lines) > 7:
        fieldwork.request_survey_change(
            lines[7].household_registration.user,
            lines[7],
            "Die dag werk ik; liever na 16:00 uur.",
            now=now,
        )

    # A glazing action of the same area, closed last week: its tender is open for bids.
    glazing = _closed_action(
        desk,
        hood,
        "hr-glas-lunetten-2026",
        ("HR++-glas in Lunetten", "Insulating glass in Lunetten"),
        measures["glazing"],
        21000,
        now,
    )
    for n, (street, pc4, letters, _count) in enumerate(ROOF_STREETS * 2):
        _confirmed(
            rng,
            glazing,
            street,
            pc4,
            letters,
            300 + n,
            rng.randint(4, 12),
            now - timedelta(days=30),
        )
    db.session.commit()
    actions.close_action(staff, glazing, now=now - timedelta(days=2))
    bidders = db.session.scalars(
        select(Installer.id).where(
            Installer.company_name.in_([DEMO_ORDER_INSTALLER, "Van Dijk Glas en Isolatie"])
        )
    )
    tenders.open_round(
        staff,
        glazing,
        list(bidders),
        deadline=_at(today + timedelta(days=7), 17),
        note="Uitvoering vanaf maart. Vragen? Bel het energieloket: 030 286 00 00.",
        now=now - timedelta(days=1),
    )


def _seed_deposits(staff: User, lines: list[Any]) -> None:
    """The deposits the accepted roof quotes asked, in offline mode (bank transfers staff
    mark): two arrived, one with another amount than asked (flagged), one still to pay."""
    for line, story in zip(lines, ["paid", "paid", "other_amount", "to_pay"], strict=False):
        payment = payments.deposit_of_quote(line.quote) if line.quote else None
        if payment is None:
            continue
        if story == "paid":
            payments.mark_received(staff, payment, payment.amount_cents)
        elif story == "other_amount":
            payments.mark_received(staff, payment, payment.amount_cents // 2)
