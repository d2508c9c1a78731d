"""Neighbour ambassadors: a resident volunteers for the street of a home they registered, the
desk agrees, and then the ambassador sees only the neighbours of that street who opted in to
being contacted; contacts are logged; staff see coverage per street."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask

from coop.core.authz import authorize
from coop.extensions import db
from coop.participation import ambassadors, interest, surveys
from coop.participation.models import AmbassadorStatus
from coop.participation.services import HouseholdAddress, ParticipationError
from coop.registrations import services as registrations
from coop.registrations.models import DwellingType, Ownership
from coop.registrations.services import RegistrationStatus
from tests import factories


def registered_resident(action: Any, email: str, number: int, street: str = "Hondsrug") -> Any:
    registration = registrations.register(
        action,
        registrations.RegistrationInput(
            name="Anna de Vries",
            email=email,
            phone=None,
            address=registrations.Address("3524 BA", number, "", street, "Utrecht"),
            dwelling=registrations.Dwelling(DwellingType.TERRACED, 1970, Ownership.OWNER, None),
            measures={action.measures[0].id: 40},
            consent=True,
        ),
    )
    registration.status = RegistrationStatus.CONFIRMED
    db.session.commit()
    return registration.user


def neighbour_pledge(campaign: Any, number: int, street: str, opted_in: bool) -> Any:
    return interest.pledge(
        campaign,
        address=HouseholdAddress("3524 BA", number, "", street),
        name=f"Buur {number}",
        email=f"buur{number}@example.nl",
        language="nl",
        contact_opt_in=opted_in,
        consent=True,
    )


@pytest.fixture
def street(ctx: Flask) -> dict[str, Any]:
    org = factories.organisation()
    action = factories.action(org)
    nb = factories.neighbourhood(org, pc4s="3524")
    action.neighbourhoods.append(nb)
    db.session.commit()
    campaign = factories.campaign(nb, households=100)
    return {
        "org": org,
        "nb": nb,
        "campaign": campaign,
        "staff": factories.staff(org),
        "anna": registered_resident(action, "anna@example.nl", 1),
        "other_street": registered_resident(action, "piet@example.nl", 50, "Drentsche Aa"),
    }


def test_an_ambassador_sees_only_opted_in_neighbours_of_their_street(
    street: dict[str, Any],
) -> None:
    campaign = street["campaign"]
    neighbour_pledge(campaign, 3, "Hondsrug", opted_in=True)
    neighbour_pledge(campaign, 5, "Hondsrug", opted_in=False)
    neighbour_pledge(campaign, 7, "Drentsche Aa", opted_in=True)
    survey = factories.survey(street["nb"])
    single, _, scale_q, _ = survey.questions
    surveys.respond(
        survey,
        surveys.Respondent(
            HouseholdAddress("3524 BA", 9, "", "hondsrug "),  # the same street, typed differently
            Ownership.PRIVATE_TENANT,
            "Buur 9",
            "buur9@example.nl",
            "nl",
            contact_opt_in=True,
            consent=True,
        ),
        {single.id: single.options[0].id, scale_q.id: 3},
    )
    choices = ambassadors.street_choices(street["anna"])
    assert [(c.street, c.pc4) for c in choices] == [("Hondsrug", "3524")]
    role = ambassadors.volunteer(street["anna"], choices[0], "Ik help graag.")
    assert ambassadors.neighbours_for(role) == []  # not before the desk agrees
    ambassadors.approve(street["staff"], role)
    assert role.status is AmbassadorStatus.ACTIVE

    seen = ambassadors.neighbours_for(role)
    assert [n.house_number for n in seen] == [3, 9]
    assert all(authorize(street["anna"], n, "contact") for n in seen)
    # The neighbour who did not opt in and the other street are not shown, and not allowed.
    everyone = ambassadors._street_households(street["org"].id, "3524", None)
    hidden = [n for n in everyone if n.house_number in (5, 7)]
    assert len(hidden) == 2
    assert not any(authorize(street["anna"], n, "contact") for n in hidden)
    assert not any(authorize(street["other_street"], n, "contact") for n in seen)
    assert not any(authorize(street["staff"], n, "contact") for n in seen)

    ambassadors.log_contact(role, seen[0].ref, date.today(), "Vragen over kosten")
    not_opted = next(n for n in hidden if n.house_number == 5)
    with pytest.raises(ParticipationError, match="not_your_neighbour"):
        ambassadors.log_contact(role, not_opted.ref, date.today(), "")
    coverage = {(s.street, s.pc4): s for s in ambassadors.coverage(street["nb"])}
    hondsrug = coverage[("Hondsrug", "3524")]
    assert (hondsrug.ambassadors, hondsrug.opted_in, hondsrug.contacted) == (1, 2, 1)
    assert coverage[("Drentsche Aa", "3524")].ambassadors == 0


def test_volunteering_twice_or_for_another_street_is_refused(street: dict[str, Any]) -> None:
    anna = street["anna"]
    choice = ambassadors.street_choices(anna)[0]
    ambassadors.volunteer(anna, choice, "")
    with pytest.raises(ParticipationError, match="already_volunteered"):
        ambassadors.volunteer(anna, choice, "")
    other = ambassadors.street_choices(street["other_street"])[0]
    with pytest.raises(ParticipationError, match="not_your_street"):
        ambassadors.volunteer(anna, other, "")


def test_a_withdrawn_pledge_leaves_the_ambassadors_list(street: dict[str, Any]) -> None:
    entry = neighbour_pledge(street["campaign"], 3, "Hondsrug", opted_in=True)
    role = ambassadors.volunteer(street["anna"], ambassadors.street_choices(street["anna"])[0], "")
    ambassadors.approve(street["staff"], role)
    assert len(ambassadors.neighbours_for(role)) == 1
    interest.withdraw(entry)
    assert ambassadors.neighbours_for(role) == []


def test_the_ambassador_page_lists_and_logs_through_the_browser_forms(
    street: dict[str, Any], app: Flask
) -> None:
    from tests.test_authorization import act_as

    neighbour = neighbour_pledge(street["campaign"], 3, "Hondsrug", opted_in=True)
    neighbour_pledge(street["campaign"], 5, "Hondsrug", opted_in=False)
    anna = street["anna"]
    client = app.test_client()
    act_as(client, anna.id)
    choice = ambassadors.street_choices(anna)[0]
    volunteered = factories.post_form(
        client, "/my/ambassador", {"street": choice.value, "promise": "y"}
    )
    assert volunteered.status_code == 302
    role = ambassadors.ambassadorships_of(anna)[0]
    assert "buur3@example.nl" not in client.get("/my/ambassador").get_data(as_text=True)
    ambassadors.approve(street["staff"], role)
    page = client.get("/my/ambassador").get_data(as_text=True)
    assert "buur3@example.nl" in page and "buur5@example.nl" not in page
    logged = factories.post_form(
        client,
        f"/my/ambassador/{role.id}/contacts",
        {
            f"a{role.id}-neighbour": f"pledge:{neighbour.id}",
            f"a{role.id}-contacted_on": date.today().isoformat(),
            f"a{role.id}-note": "Komt naar de informatieavond.",
        },
        token_from="/my/ambassador",
    )
    assert logged.status_code == 302
    assert [c.note for c in ambassadors.contacts_of(role)] == ["Komt naar de informatieavond."]
