"""The dashboards per action and per neighbourhood: counts of a known small data set, the
funnel, participation rates, the charts with their tables on the page, a fixed number of
queries, and nothing for staff of another organisation."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from coop.accounts.models import Organisation, Role, User
from coop.actions.models import Action, Neighbourhood
from coop.core.time import utcnow
from coop.desk import services
from coop.extensions import db
from coop.registrations.models import (
    JOURNEY,
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)
from tests import factories
from tests.login import sign_in

S = RegistrationStatus

# --- test data in the domain's words (also used by the other desk tests) -------------------


def resident(email: str, *, language: str = "nl", name: str = "Anna de Vries") -> User:
    user = User(email=email, name=name, role=Role.RESIDENT, language=language)
    db.session.add(user)
    db.session.flush()
    return user


_numbers: dict[str, int] = {}


def register(
    action: Action,
    status: RegistrationStatus = S.CONFIRMED,
    *,
    user: User | None = None,
    email: str | None = None,
    postcode: str = "3521 AB",
    measures: Sequence[str] = ("roof",),
    ownership: Ownership = Ownership.OWNER,
    dwelling_type: DwellingType = DwellingType.TERRACED,
    created_at: datetime | None = None,
    furthest: RegistrationStatus | None = None,
    history: bool = True,
) -> Registration:
    """A registration as the services leave it: household, measures and status history.

    ``furthest`` is the last JOURNEY step before a registration stepped out (withdrawn...).
    """
    number = _numbers[postcode] = _numbers.get(postcode, 0) + 1
    if user is None:
        user = resident(email or f"resident{postcode[:4]}-{number}-{action.id}@example.nl")
    household = Household(
        postcode=postcode,
        house_number=number,
        house_number_addition="",
        street="Teststraat",
        city="Utrecht",
        dwelling_type=dwelling_type,
        build_year=1975,
        ownership=ownership,
    )
    created_at = created_at or utcnow() - timedelta(days=1)
    registration = Registration(
        action=action,
        household=household,
        user=user,
        status=status,
        consent_at=created_at,
        consent_version="test",
        created_at=created_at,
    )
    by_code = {am.measure.code: am for am in action.measures}
    registration.measures = [
        RegistrationMeasure(action_measure_id=by_code[code].id, quantity=10) for code in measures
    ]
    if history:
        last = status if status in JOURNEY else (furthest or S.PENDING_CONFIRMATION)
        path = list(JOURNEY[: JOURNEY.index(last) + 1])
        if status not in JOURNEY:
            path.append(status)
        previous = None
        for step, to in enumerate(path):
            registration.history.append(
                StatusChange(
                    from_status=previous, to_status=to, at=created_at + timedelta(minutes=step)
                )
            )
            previous = to
    db.session.add(registration)
    db.session.flush()
    return registration


def neighbourhood(org: Organisation, name: str, pc4s: str, households: int | None) -> Neighbourhood:
    item = Neighbourhood(
        organisation_id=org.id,
        name=name,
        municipality="Utrecht",
        household_count=households,
        postcode_areas=pc4s,
    )
    db.session.add(item)
    db.session.flush()
    return item


def login(client: FlaskClient, user: User) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": user.email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- a known small data set --------------------------------------------------------------


@pytest.fixture
def desk(app: Flask) -> Iterator[dict[str, Any]]:
    """Org A with an action in Lombok (3521) and Zuilen (3524); org B with its own action."""
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Elders")
        action = factories.action(org_a)
        other = factories.action(org_b, slug="elders-isoleren", pc4s="1011")
        lombok = neighbourhood(org_a, "Lombok", "3521", 200)
        zuilen = neighbourhood(org_a, "Zuilen", "3524", None)
        neighbourhood(org_b, "Centrum", "1011", 1000)
        action.neighbourhoods = [lombok, zuilen]
        day = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=3)
        # Lombok: 3 confirmed (2 roof + 1 heat pump), 1 quoted, 1 installed, 1 withdrawn
        # after confirming, 1 pending; Zuilen: 1 declined (had a quote), 1 expired.
        register(action, S.CONFIRMED, created_at=day)
        register(action, S.CONFIRMED, created_at=day, ownership=Ownership.PRIVATE_TENANT)
        register(
            action,
            S.CONFIRMED,
            measures=("hybrid_heat_pump",),
            created_at=day + timedelta(days=1),
            dwelling_type=DwellingType.APARTMENT,
        )
        register(action, S.QUOTED, measures=("roof", "hybrid_heat_pump"), created_at=day)
        register(action, S.INSTALLED, created_at=day + timedelta(days=2))
        register(action, S.WITHDRAWN, furthest=S.CONFIRMED, created_at=day)
        register(action, S.PENDING_CONFIRMATION, created_at=day + timedelta(days=2))
        register(action, S.DECLINED, postcode="3524 BA", furthest=S.QUOTED, created_at=day)
        register(action, S.EXPIRED, postcode="3524 BA", created_at=day)
        # Another organisation's registrations must never show up in org A's figures.
        for _ in range(4):
            register(other, S.CONFIRMED, postcode="1011 AA")
        db.session.commit()
        data = {
            "org_a": org_a.id,
            "org_b": org_b.id,
            "action": action.id,
            "other": other.id,
            "lombok": lombok.id,
            "zuilen": zuilen.id,
            "staff_a": factories.staff(org_a, "sanne@utrecht.example.nl").id,
            "staff_b": factories.staff(org_b, "bram@elders.example.nl").id,
            "day": day,
        }
    yield data


def test_action_counts_of_a_known_data_set(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        action = services.action_for_dashboard(desk["action"])
        assert action is not None
        dashboard = services.action_dashboard(action)
        assert dashboard.total == 9
        assert dashboard.active == 6  # withdrawn, declined, expired left
        assert dashboard.by_status == {
            S.CONFIRMED: 3,
            S.QUOTED: 1,
            S.INSTALLED: 1,
            S.WITHDRAWN: 1,
            S.PENDING_CONFIRMATION: 1,
            S.DECLINED: 1,
            S.EXPIRED: 1,
        }
        assert {m.code: n for m, n in dashboard.by_measure} == {"roof": 5, "hybrid_heat_pump": 2}
        assert dashboard.by_pc4 == [("3521", 6)]
        ownership = dict(dashboard.by_ownership)
        assert ownership[Ownership.OWNER] == 5 and ownership[Ownership.PRIVATE_TENANT] == 1
        assert sum(ownership.values()) == 6
        dwelling = dict(dashboard.by_dwelling_type)
        assert dwelling[DwellingType.TERRACED] == 5 and dwelling[DwellingType.APARTMENT] == 1
        over_time = dict(dashboard.over_time)
        assert sum(over_time.values()) == 9
        first = min(over_time)
        assert over_time[first] == 6  # four in Lombok and two in Zuilen on the first day
        assert len(dashboard.over_time) >= 3
        assert dashboard.period == "day"


def test_funnel_counts_how_far_each_registration_got(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        action = services.action_for_dashboard(desk["action"])
        assert action is not None
        funnel = dict(services.action_dashboard(action).funnel)
    assert list(funnel) == [
        S.PENDING_CONFIRMATION,
        S.CONFIRMED,
        S.ASSIGNED,
        S.QUOTED,
        S.ACCEPTED,
        S.INSTALLED,
    ]
    # registered: all 9; confirmed: 3 confirmed + quoted + installed + withdrawn-after-confirming
    # + declined (got a quote); assigned and quoted: quoted + installed + declined.
    assert funnel == {
        S.PENDING_CONFIRMATION: 9,
        S.CONFIRMED: 7,
        S.ASSIGNED: 3,
        S.QUOTED: 3,
        S.ACCEPTED: 1,
        S.INSTALLED: 1,
    }
    values = list(funnel.values())
    assert values == sorted(values, reverse=True)


def test_funnel_without_history_uses_the_current_status(app: Flask) -> None:
    """Data imported without a status history: a quoted registration has passed every step
    before quoted; a declined one had a quote."""
    with app.app_context():
        action = factories.action()
        register(action, S.QUOTED, history=False)
        register(action, S.DECLINED, history=False)
        register(action, S.WITHDRAWN, history=False)
        db.session.commit()
        funnel = dict(services.action_dashboard(action).funnel)
    assert funnel[S.PENDING_CONFIRMATION] == 3
    assert funnel[S.CONFIRMED] == funnel[S.ASSIGNED] == funnel[S.QUOTED] == 2
    assert funnel[S.ACCEPTED] == 0


def test_participation_rate_per_neighbourhood(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        action = services.action_for_dashboard(desk["action"])
        assert action is not None
        participation = {
            p.neighbourhood.name: p for p in services.action_dashboard(action).participation
        }
    assert participation["Lombok"].registrations == 6
    assert participation["Lombok"].rate == pytest.approx(6 / 200)
    # Zuilen: both stepped out, and nobody entered its number of households yet.
    assert participation["Zuilen"].registrations == 0
    assert participation["Zuilen"].rate is None
    assert "Centrum" not in participation


def test_price_tier_reached_per_measure(app: Flask, desk: dict[str, Any]) -> None:
    with app.app_context():
        action = services.action_for_dashboard(desk["action"])
        assert action is not None
        offers = {
            o.action_measure.measure.code: o for o in services.action_dashboard(action).offers
        }
    # Confirmed and beyond count for the group price: 4 roof (2 confirmed, quoted, installed).
    assert offers["roof"].participants == 4
    assert offers["roof"].reached is not None and offers["roof"].reached.min_participants == 2
    assert offers["roof"].homes_to_next_tier == 1


def test_neighbourhood_dashboard_counts_only_its_postcode_areas(
    app: Flask, desk: dict[str, Any]
) -> None:
    with app.app_context():
        lombok = services.get_neighbourhood(desk["lombok"])
        assert lombok is not None
        dashboard = services.neighbourhood_dashboard(lombok)
        assert dashboard.total == 7  # Zuilen's two and org B's four are not Lombok's
        assert dashboard.households == 6
        assert dashboard.participation[0].rate == pytest.approx(6 / 200)
        assert [(a.id, n) for a, n in dashboard.by_action] == [(desk["action"], 6)]
        assert dashboard.offers == []


def test_dashboard_page_shows_charts_with_tables(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        login(client, db.session.get(User, desk["staff_a"]))  # type: ignore[arg-type]
    client.get("/language/en")
    home = client.get("/desk/").get_data(as_text=True)
    assert f'href="/desk/dashboard/actions/{desk["action"]}"' in home
    assert f'href="/desk/dashboard/neighbourhoods/{desk["lombok"]}"' in home

    response = client.get(f"/desk/dashboard/actions/{desk['action']}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'id="figure-total">\s*9<', page)
    assert re.search(r'id="figure-active">\s*6<', page)
    for chart_id in (
        "chart-over-time",
        "chart-funnel",
        "chart-measure",
        "chart-pc4",
        "chart-ownership",
        "chart-dwelling",
        "chart-participation",
        "chart-tiers",
    ):
        section = page.split(f'id="{chart_id}"', 1)[1].split("</section>", 1)[0]
        assert 'role="img"' in section and f'aria-labelledby="{chart_id}-title' in section
        assert f'<table class="table chart-table" id="{chart_id}-table">' in section
        assert "<caption>" in section and 'scope="col"' in section
    funnel = page.split('id="chart-funnel-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td>', funnel)
    assert [count for _, count in rows] == ["9", "7", "3", "3", "1", "1"]
    participation = page.split('id="chart-participation-table"', 1)[1].split("</table>", 1)[0]
    assert re.search(
        r"Lombok</th><td class=\"num\">3\.0%</td><td class=\"num\">6</td><td class=\"num\">200<",
        participation,
    )
    assert re.search(r"Zuilen</th><td class=\"num\">unknown</td>", participation)

    response = client.get(f"/desk/dashboard/neighbourhoods/{desk['lombok']}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'id="figure-households">\s*6<', page)
    assert "chart-action-table" in page


def test_the_page_needs_a_fixed_number_of_queries(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    """More registrations do not mean more queries: everything is counted by GROUP BY."""
    with app.app_context():
        login(client, db.session.get(User, desk["staff_a"]))  # type: ignore[arg-type]
    url = f"/desk/dashboard/actions/{desk['action']}"
    client.get(url)
    with app.app_context(), counting_queries() as before:
        assert client.get(url).status_code == 200
    with app.app_context():
        action = db.session.get(Action, desk["action"])
        assert action is not None
        for index in range(30):
            register(
                action,
                [S.CONFIRMED, S.QUOTED, S.WITHDRAWN][index % 3],
                postcode=f"352{index % 2 + 1} CC",
                measures=("roof", "hybrid_heat_pump"),
            )
        db.session.commit()
    with app.app_context(), counting_queries() as after:
        assert client.get(url).status_code == 200
    assert len(after) == len(before)
    assert len(after) <= 20


@pytest.mark.parametrize(
    "path",
    [
        "/desk/dashboard/actions/{action}",
        "/desk/dashboard/neighbourhoods/{lombok}",
        "/desk/dashboard/actions/999999",
        "/desk/dashboard/neighbourhoods/999999",
    ],
)
def test_staff_of_another_organisation_get_404(
    app: Flask, client: FlaskClient, desk: dict[str, Any], path: str
) -> None:
    with app.app_context():
        login(client, db.session.get(User, desk["staff_b"]))  # type: ignore[arg-type]
    assert client.get(path.format(**desk)).status_code == 404
    # Their own dashboard works, so the 404 is about whose it is.
    assert client.get(f"/desk/dashboard/actions/{desk['other']}").status_code == 200


def test_residents_and_anonymous_visitors_get_no_dashboard(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    url = f"/desk/dashboard/actions/{desk['action']}"
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        user = resident("nosy@example.nl")
        db.session.commit()
        user_id = user.id
    sign_in(client, user_id)
    assert client.get(url).status_code == 404


def test_weekly_chart_over_a_long_span(app: Flask) -> None:
    with app.app_context():
        action = factories.action(opens_in_days=-200)
        start = utcnow() - timedelta(days=150)
        for days in (0, 1, 7, 100, 149):
            register(action, S.CONFIRMED, created_at=start + timedelta(days=days))
        db.session.commit()
        dashboard = services.action_dashboard(action)
    assert dashboard.period == "week"
    assert sum(n for _, n in dashboard.over_time) == 5
    assert all(day.weekday() == 0 for day, _ in dashboard.over_time)
    steps = [
        b - a for (a, _), (b, _) in zip(dashboard.over_time, dashboard.over_time[1:], strict=False)
    ]
    assert set(steps) == {timedelta(weeks=1)}


def test_days_are_amsterdam_days(app: Flask) -> None:
    """23:30 UTC on 1 March is 00:30 on 2 March in Amsterdam."""
    with app.app_context():
        action = factories.action()
        late = datetime(2027, 3, 1, 23, 30, tzinfo=utcnow().tzinfo)
        register(action, S.CONFIRMED, created_at=late)
        register(action, S.CONFIRMED, created_at=late - timedelta(hours=2))
        db.session.commit()
        over_time = dict(services.action_dashboard(action).over_time)
    assert {str(day): n for day, n in over_time.items()} == {"2027-03-01": 1, "2027-03-02": 1}
