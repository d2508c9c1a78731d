"""The move/split form says how many homes each installer has room for in the group: its
capacity for the measure less what the proposal gives it in other groups, and no less (nor,
as it once did, more) for the homes it already has in this group."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.actions import services as actions
from coop.extensions import db
from coop.orders.models import ProposedAssignment
from tests import factories
from tests.orders.test_desk_pages import log_in


def test_room_for_counts_the_groups_own_homes_once(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act = factories.action(org, pc4s="3521,3524")
        # At registry prices over 2 weeks: Lunetten 3 a week = room for 6 roofs, only in 3521;
        # Utrecht-wide 5 a week = 10, dearer.
        local = factories.installer(
            org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 3)}, kvk="70000001"
        )
        wide = factories.installer(
            org,
            "Warmte en Dak Utrecht",
            area="3500-3599",
            offers={"roof": (4500, 5)},
            kvk="70000002",
        )
        for n in range(1, 7):
            factories.confirmed_registration(act, postcode="3521 AB", number=n)
        for n in range(1, 3):
            factories.confirmed_registration(act, postcode="3524 BA", street="Hondsrug", number=n)
        actions.close_action(staff, act)
        ids = {"action": act.id, "local": local.id, "wide": wide.id}
    log_in(client, "staff@example.nl")
    client.get("/language/en")
    base = f"/desk/actions/{ids['action']}/matching"
    response = factories.post_form(
        client, base, {"use_registry_prices": "y", "registry_weeks": "2"}
    )
    assert response.status_code == 302
    run_url = response.headers["Location"]
    with app.app_context():
        rows = db.session.scalars(select(ProposedAssignment)).all()
        by_pc4 = {(r.batch.pc4, r.installer_id): r.homes for r in rows}
        # The cheaper local roofer takes all 6 of 3521 (its whole room); the other one 3524.
        assert by_pc4 == {("3521", ids["local"]): 6, ("3524", ids["wide"]): 2}
        batch_id = next(r.batch_id for r in rows if r.batch.pc4 == "3521")

    edit_url = f"{run_url}/batches/{batch_id}"
    page = client.get(edit_url).get_data(as_text=True)

    def room(installer: str) -> int:
        label = re.search(rf"Homes for {installer} \([^)]*room for (\d+)\)", page)
        assert label, page
        return int(label[1])

    # Lunetten: 6, not 6 + the 6 it has in this group. Utrecht-wide: 10 less the 2 of 3524.
    assert room("Dakwerk Lunetten") == 6
    assert room("Warmte en Dak Utrecht") == 8

    # The whole group to the other one: now it is that one's homes that must not count twice.
    response = factories.post_form(
        client, edit_url, {f"homes_{ids['local']}": "0", f"homes_{ids['wide']}": "6"}
    )
    assert response.status_code == 302
    page = client.get(edit_url).get_data(as_text=True)
    assert room("Dakwerk Lunetten") == 6
    assert room("Warmte en Dak Utrecht") == 8  # 6 of them in this group: not 14
