"""Progress counted per measure and per household, and saying which (issue #12, defect 3): the
dashboard's funnels after a roof was finished while the same household's other measures are
still open, the neighbourhood's installed measures, and the matching proposal's homes."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.actions import services as actions
from coop.actions.models import Action
from coop.desk import services
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.models import RunTrigger
from coop.participation import neighbourhoods
from coop.registrations.models import RegistrationStatus
from coop.residents import services as residents
from tests import factories
from tests.login import sign_in
from tests.registrations.household_world import Household, build, three_measure_action

S = RegistrationStatus


def log_in(client: FlaskClient, user_id: int) -> None:
    sign_in(client, user_id)


def table_counts(page: str, chart_id: str) -> list[str]:
    table = page.split(f'id="{chart_id}-table"', 1)[1].split("</table>", 1)[0]
    return [
        n for _, n in re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td>', table)
    ]


def test_the_funnel_counts_households_and_measures_as_far_as_each_got(
    app: Flask, client: FlaskClient
) -> None:
    """Anna: roof installed and confirmed, cavity wall quoted, heat pump assigned (her
    household's status, the least advanced measure, is "assigned"). Bert: roof and heat pump
    assigned."""
    with app.test_request_context():
        house: Household = build()
        action = services.action_for_dashboard(house.action)
        assert action is not None
        assert house.registration_row().status is S.ASSIGNED
        dashboard = services.action_dashboard(action)
        households = dict(dashboard.funnel)
        assert households == {
            S.PENDING_CONFIRMATION: 2,
            S.CONFIRMED: 2,
            S.ASSIGNED: 2,
            S.QUOTED: 1,
            S.ACCEPTED: 1,
            S.INSTALLED: 1,
        }
        assert dict(dashboard.measure_funnel) == {
            S.PENDING_CONFIRMATION: 5,
            S.CONFIRMED: 5,
            S.ASSIGNED: 5,
            S.QUOTED: 2,
            S.ACCEPTED: 1,
            S.INSTALLED: 1,
        }
        # The neighbourhood page counts the installed roof, whatever the household's summary.
        figures = neighbourhoods.area_figures(action.organisation_id, ["3521"])
        assert figures.installed_by_measure == {"roof": 1}
        assert figures.taking_part == 2

        # A measure withdrawn later still counts up to where it got; the household too.
        bert = db.session.get(type(house.registration_row()), house.neighbour)
        assert bert is not None
        heat_pump = next(
            rm.id for rm in bert.measures if rm.action_measure.measure.code == "hybrid_heat_pump"
        )
        residents.withdraw(
            bert,
            "Geen warmtepomp",
            actor=house.user(house.neighbour_resident),
            measure_ids=[heat_pump],
        )
        dashboard = services.action_dashboard(action)
        assert dict(dashboard.measure_funnel)[S.ASSIGNED] == 5
        assert dict(dashboard.funnel)[S.ASSIGNED] == 2

    log_in(client, house.staff)
    client.get("/language/en")
    page = client.get(f"/desk/dashboard/actions/{house.action}").get_data(as_text=True)
    assert table_counts(page, "chart-funnel") == ["2", "2", "2", "1", "1", "1"]
    assert table_counts(page, "chart-funnel-measures") == ["5", "5", "5", "2", "1", "1"]
    households_chart = page.split('id="chart-funnel"', 1)[1].split("</section>", 1)[0]
    measures_chart = page.split('id="chart-funnel-measures"', 1)[1].split("</section>", 1)[0]
    assert (
        "Households" in households_chart
        and "Households with at least one measure" in households_chart
    )
    assert "Measures" in measures_chart and "Measures this far" in measures_chart


def test_the_proposal_says_measures_and_homes(app: Flask, client: FlaskClient) -> None:
    """Two households wanting five measures in all: five measures, in two homes."""
    with app.test_request_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act: Action = three_measure_action(org)
        factories.installer(
            org,
            "Alles Utrecht",
            offers={"roof": (4000, 9), "cavity_wall": (2500, 9), "hybrid_heat_pump": (450000, 9)},
        )
        factories.confirmed_registration(
            act, measures={"roof": 40, "cavity_wall": 60, "hybrid_heat_pump": 1}
        )
        factories.confirmed_registration(act, measures={"roof": 30, "hybrid_heat_pump": 1})
        actions.close_action(staff, act)
        run = orders.start_run(staff, act, RunTrigger.STAFF, use_registry_prices=True)
        assert orders.compute_run(run.id) == "proposed"
        ids: dict[str, Any] = {"action": act.id, "run": run.id, "staff": staff.id}
    log_in(client, ids["staff"])
    client.get("/language/en")
    page = client.get(f"/desk/actions/{ids['action']}/matching/{ids['run']}").get_data(as_text=True)
    summary = page.split('id="summary">', 1)[1].split("</p>", 1)[0]
    assert "5 of 5 measures get an installer, in 2 of 2 homes" in summary
    assert "5 of 5 homes" not in page
    matching = client.get(f"/desk/actions/{ids['action']}/matching").get_data(as_text=True)
    assert re.search(r'id="homes-waiting">5 \(in 2 homes\)<', matching)
    with app.test_request_context():
        from coop.orders.models import MatchingRun

        approved = db.session.get(MatchingRun, ids["run"])
        assert approved is not None
        orders.approve_run(factories_staff(ids["staff"]), approved)
    page = client.get(f"/desk/actions/{ids['action']}/matching/{ids['run']}").get_data(as_text=True)
    assert "5 of 5 measures got an installer, in 2 homes" in page


def factories_staff(user_id: int) -> Any:
    from coop.accounts.models import User

    return db.session.scalar(select(User).where(User.id == user_id))
