"""An invited installer's bid over HTTP: sent, revised, never seen by another installer, and
read-only once the deadline has passed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from coop.accounts.models import Role, User
from coop.actions import services as actions
from coop.core.time import utcnow
from coop.extensions import db
from coop.tenders import services as tenders
from coop.tenders.models import TenderInvitation, TenderRound
from tests import factories
from tests.orders.test_matching_flow import measure_of
from tests.orders.world import act_as


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def test_a_bid_is_sent_revised_sealed_from_others_and_closed_at_the_deadline(
    app: Flask, client: FlaskClient
) -> None:
    with app.test_request_context():
        org = factories.organisation()
        act = factories.action(org)
        staff = User(email="staff@example.nl", name="S", role=Role.STAFF, organisation=org)
        a = factories.installer(org, "Dakwerk Lunetten", offers={"roof": (4000, 5)})
        b = factories.installer(org, "Warmte en Dak Utrecht", offers={"roof": (4500, 5)})
        user_a = User(email="a@dakwerk.example", name="A", role=Role.INSTALLER, installer_id=a.id)
        user_b = User(email="b@warmte.example", name="B", role=Role.INSTALLER, installer_id=b.id)
        db.session.add_all([staff, user_a, user_b])
        for n in (1, 2, 3):
            factories.confirmed_registration(act, number=n)
        actions.close_action(staff, act)
        tender = tenders.open_round(staff, act, [a.id, b.id], deadline=utcnow() + timedelta(days=2))
        mine = next(i for i in tender.invitations if i.installer_id == a.id)
        theirs = next(i for i in tender.invitations if i.installer_id == b.id)
        ids = {
            "mine": mine.id,
            "theirs": theirs.id,
            "round": tender.id,
            "roof": measure_of(act, "roof"),
            "pump": measure_of(act, "hybrid_heat_pump"),
            "a": user_a.id,
            "b": user_b.id,
        }
    url = f"/installer/tenders/{ids['mine']}"
    roof, pump = ids["roof"], ids["pump"]
    client.get("/language/en")
    act_as(client, ids["a"])
    assert f'href="{url}"' in page_of(client.get("/installer"))
    page = page_of(client.get(url))
    assert (
        "not sent yet" in page and f'id="price_{roof}"' in page and f'id="capacity_{pump}"' in page
    )
    assert "3 homes signed up for it. By postcode area: 3521 (3 homes)." in " ".join(page.split())
    # The residents' indicative price is what they pay, VAT included; the bid is without VAT.
    assert re.search(
        r"Indicative price for residents: €[\d,.]+ per unit, including VAT\.",
        " ".join(page.split()),
    )

    # A price without a number of homes, or a negative price: refused at the field, not saved.
    response = factories.post_form(client, url, {f"price_{roof}": "39,50"})
    assert response.status_code == 200
    assert re.search(rf'id="capacity_{roof}-error".*how many homes', page_of(response), re.S)
    response = factories.post_form(
        client, url, {f"price_{roof}": "-39,50", f"capacity_{roof}": "12"}
    )
    assert re.search(rf'id="price_{roof}-error".*cannot be negative', page_of(response), re.S)
    with app.app_context():
        invitation = db.session.get(TenderInvitation, ids["mine"])
        assert invitation is not None and invitation.submitted_at is None

    response = factories.post_form(
        client, url, {f"price_{roof}": "39,50", f"capacity_{roof}": "12"}
    )
    assert response.status_code == 302
    page = page_of(client.get(url))
    assert 'value="39,50"' in page and "Save the changed bid" in page
    response = factories.post_form(
        client,
        url,
        {
            f"price_{roof}": "38",
            f"capacity_{roof}": "15",
            f"price_{pump}": "2.900,00",
            f"capacity_{pump}": "3",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        invitation = db.session.get(TenderInvitation, ids["mine"])
        assert invitation is not None and invitation.revisions == 2
        assert [
            (line.action_measure_id, line.unit_price_cents, line.capacity_homes)
            for line in invitation.lines
        ] == sorted([(roof, 3800, 15), (pump, 290000, 3)])

    # Sealed: the other invited installer cannot open this bid, nor see it on its own page.
    act_as(client, ids["b"])
    assert client.get(url).status_code == 404
    token = factories.csrf_token(client, "/installer")
    assert (
        client.post(
            url, data={"csrf_token": token, f"price_{roof}": "1", f"capacity_{roof}": "1"}
        ).status_code
        == 404
    )
    own = page_of(client.get(f"/installer/tenders/{ids['theirs']}"))
    assert "38,00" not in own and "38.00" not in own

    # After the deadline: read-only, and a late post changes nothing.
    with app.app_context():
        tender_round = db.session.get(TenderRound, ids["round"])
        assert tender_round is not None
        tender_round.deadline = utcnow() - timedelta(minutes=1)
        db.session.commit()
    act_as(client, ids["a"])
    page = page_of(client.get(url))
    assert "deadline has passed" in page and f'id="price_{roof}"' not in page
    assert "€38.00" in page and "€2,900.00" in page
    response = factories.post_form(
        client, url, {f"price_{roof}": "30", f"capacity_{roof}": "20"}, token_from="/installer"
    )
    assert response.status_code == 409 and "deadline has passed" in page_of(response)
    with app.app_context():
        invitation = db.session.get(TenderInvitation, ids["mine"])
        assert invitation is not None and invitation.revisions == 2
        assert {line.unit_price_cents for line in invitation.lines} == {3800, 290000}
