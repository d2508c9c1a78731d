"""Demo registrations: a few hundred households in different stages of the open actions."""

from __future__ import annotations

import random
from datetime import timedelta

from coop.accounts.models import Role, User
from coop.actions.models import (
    Action,
)
from coop.demo.people import FIRST, LAST, STREETS
from coop.extensions import db
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)


def seed_registrations(rng: random.Random, actions: list[Action], count: int, now: object) -> None:
    statuses = (
        [RegistrationStatus.CONFIRMED] * 14
        + [RegistrationStatus.PENDING_CONFIRMATION] * 3
        + [RegistrationStatus.WITHDRAWN, RegistrationStatus.EXPIRED]
    )
    used: set[tuple[str, int]] = set()
    for number in range(count):
        action = actions[0] if number % 4 else actions[1]
        hood = "Zuilen" if action is actions[1] or number % 2 else "Lunetten"
        street, pc4, letters = rng.choice(STREETS[hood])
        house_number = rng.randint(1, 180)
        if (street, house_number) in used:
            continue
        used.add((street, house_number))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        user = User(
            email=f"{first}.{last}.{number}@voorbeeld.nl".lower().replace(" ", ""),
            name=f"{first} {last}",
            role=Role.RESIDENT,
            language="nl" if rng.random() < 0.85 else "en",
        )
        household = Household(
            postcode=f"{pc4} {letters}",
            house_number=house_number,
            house_number_addition="",
            street=street,
            city="Utrecht",
            dwelling_type=rng.choice(list(DwellingType)),
            build_year=rng.randint(1925, 1995),
            ownership=rng.choices(list(Ownership), weights=[60, 10, 22, 8])[0],
            energy_label=rng.choice([None, "C", "D", "E", "F", "G"]),
        )
        created = now - timedelta(days=rng.uniform(0.5, 19), minutes=number)  # type: ignore[operator]
        status = rng.choice(statuses)
        registration = Registration(
            action=action,
            household=household,
            user=user,
            consent_at=created,
            consent_version="2026-11",
            created_at=created,
            status=status,
        )
        registration.history.append(
            StatusChange(
                from_status=None, to_status=RegistrationStatus.PENDING_CONFIRMATION, at=created
            )
        )
        if status is not RegistrationStatus.PENDING_CONFIRMATION:
            later = created + timedelta(hours=rng.uniform(0.1, 30))
            if status is RegistrationStatus.WITHDRAWN:
                registration.history.append(
                    StatusChange(
                        from_status=RegistrationStatus.PENDING_CONFIRMATION,
                        to_status=RegistrationStatus.CONFIRMED,
                        at=later,
                    )
                )
                registration.history.append(
                    StatusChange(
                        from_status=RegistrationStatus.CONFIRMED,
                        to_status=status,
                        at=later + timedelta(days=1),
                        note="Verhuizing",
                    )
                )
                registration.withdrawal_reason = "Verhuizing"
            elif status is RegistrationStatus.EXPIRED:
                registration.history.append(
                    StatusChange(
                        from_status=RegistrationStatus.PENDING_CONFIRMATION,
                        to_status=status,
                        at=created + timedelta(days=7),
                    )
                )
            else:
                registration.history.append(
                    StatusChange(
                        from_status=RegistrationStatus.PENDING_CONFIRMATION,
                        to_status=status,
                        at=later,
                    )
                )
        chosen = rng.sample(action.measures, k=rng.randint(1, min(2, len(action.measures))))
        for action_measure in chosen:
            quantity = (
                rng.randint(1, 1)
                if action_measure.measure.unit.value == "piece"
                else rng.randint(12, 85)
            )
            registration.measures.append(
                RegistrationMeasure(action_measure=action_measure, quantity=quantity)
            )
        db.session.add(registration)
