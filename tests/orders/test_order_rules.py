"""The order rules, each through the real path (staff and installers over HTTP, the expiry as the
scheduler calls it), on SQLite and PostgreSQL.

Each test here fails when its rule is broken on purpose (``python -m tests.mutations`` breaks
them one at a time): staff cannot give an installer more homes than it has room for; an
installer cannot answer an order after its deadline; an order not answered in time gives its
homes back to matching; VAT is rounded half up to the cent, never truncated.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.actions import services as actions
from coop.core.audit import AuditEntry
from coop.core.models import EmailLog
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.orders import services
from coop.orders.models import (
    Batch,
    LineStatus,
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    ProposedAssignment,
    Quote,
    RunStatus,
    RunTrigger,
)
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories
from tests.orders.world import World, act_as, build, run_jobs


def post(client: FlaskClient, url: str, data: dict, token_from: str | None = None) -> Any:
    return factories.post_form(client, url, data, token_from=token_from)


def text_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    with app.test_request_context():
        built = build()
    client.get("/language/en")  # the messages below are the English ones
    return built


# --- (e) no more homes than an installer has room for ------------------------------------------


@pytest.fixture
def desk(app: Flask, client: FlaskClient) -> dict:
    """A closed action: four roofs in 3521 and three in 3524. Dakwerk Lunetten (cheaper) has
    room for 5 homes (5 a week, one week counted), Warmte en Dak Utrecht for 20; both work in
    both areas."""
    with app.app_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act = factories.action(org)
        small = factories.installer(org, "Dakwerk Lunetten", offers={"roof": (4000, 5)})
        large = factories.installer(org, "Warmte en Dak Utrecht", offers={"roof": (4500, 20)})
        factories.installer_user(small)
        large_user = factories.installer_user(large)
        for n in range(1, 5):
            factories.confirmed_registration(act, postcode="3521 AB", street="Vondellaan", number=n)
        for n in range(1, 4):
            factories.confirmed_registration(act, postcode="3524 BA", street="Hondsrug", number=n)
        actions.close_action(staff, act)
        ids = {
            "action": act.id,
            "staff": staff.id,
            "small": small.id,
            "large": large.id,
            "large_user": large_user.id,
        }
    act_as(client, ids["staff"])
    client.get("/language/en")
    return ids


def batch_id(action_id: int, pc4: str) -> int:
    found = db.session.scalar(
        select(Batch.id).where(Batch.action_id == action_id, Batch.pc4 == pc4)
    )
    assert found is not None
    return found


def shares(run_id: int, batch: int) -> dict[int | None, int]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(ProposedAssignment).where(
            ProposedAssignment.run_id == run_id, ProposedAssignment.batch_id == batch
        )
    )
    return {row.installer_id: row.homes for row in rows if row.homes}


def test_staff_cannot_give_an_installer_more_homes_than_it_has_room_for(
    app: Flask, client: FlaskClient, desk: dict
) -> None:
    base = f"/desk/actions/{desk['action']}/matching"
    response = post(client, base, {"use_registry_prices": "y", "registry_weeks": "1"})
    assert response.status_code == 302
    run_url = response.headers["Location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    with app.app_context():
        assert db.session.get(MatchingRun, run_id).status is RunStatus.PROPOSED
        b3521, b3524 = batch_id(desk["action"], "3521"), batch_id(desk["action"], "3524")
    small, large = desk["small"], desk["large"]

    def move(batch: int, homes: dict[int, int]) -> Any:
        url = f"{run_url}/batches/{batch}"
        return post(client, url, {f"homes_{i}": str(n) for i, n in homes.items()})

    # Whatever the engine proposed: 3524 to the large one, then 3521 (4 homes) to the small one,
    # which then has room for 1 more.
    assert move(b3524, {small: 0, large: 3}).status_code == 302
    assert move(b3521, {small: 4, large: 0}).status_code == 302
    with app.app_context():
        assert shares(run_id, b3521) == {small: 4}
        audits = db.session.scalar(select(func.count()).select_from(AuditEntry))

    # All three of 3524 to the small one, or two of them: more than its room. Refused with the
    # room it has, and the proposal stays as it was.
    for homes in ({small: 3, large: 0}, {small: 2, large: 1}):
        refused = move(b3524, homes)
        assert refused.status_code == 409, homes
        assert "Dakwerk Lunetten has room for 1 more homes" in text_of(refused)
        with app.app_context():
            assert shares(run_id, b3524) == {large: 3}
            assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audits
            run = db.session.get(MatchingRun, run_id)
            assert run is not None and run.homes_covered == 7

    # Exactly its room: accepted, and the orders hold what was agreed.
    assert move(b3524, {small: 1, large: 2}).status_code == 302
    approved = post(client, f"{run_url}/approve", {}, token_from=run_url)
    assert approved.status_code == 302
    with app.app_context():
        homes = dict(
            db.session.execute(
                select(Order.installer_id, func.count(OrderLine.id))
                .join(OrderLine, OrderLine.order_id == Order.id)
                .group_by(Order.installer_id)
            ).all()
        )
        assert homes == {small: 5, large: 2}
        order_large = db.session.scalar(select(Order.id).where(Order.installer_id == large))

    # The large one declines its order: its two homes are matched again. The small one's room
    # is taken by the homes it already has orders for, so staff cannot give them to it.
    act_as(client, desk["large_user"])
    order_url = f"/installer/orders/{order_large}"
    declined = post(client, f"{order_url}/decline", {"reason": "Geen ploeg vrij"}, order_url)
    assert declined.status_code == 302
    with app.app_context():
        rematch = db.session.scalars(select(MatchingRun).order_by(MatchingRun.id.desc())).first()
        assert rematch is not None and rematch.trigger is RunTrigger.ORDER_DECLINED
        assert rematch.status is RunStatus.PROPOSED
        rematch_id = rematch.id
        assert shares(rematch_id, b3524) == {None: 2}  # nobody has room or may take them
    act_as(client, desk["staff"])
    rematch_url = f"{base}/{rematch_id}"
    refused = post(client, f"{rematch_url}/batches/{b3524}", {f"homes_{small}": "1"})
    assert refused.status_code == 409
    assert "Dakwerk Lunetten has room for 0 more homes" in text_of(refused)
    with app.app_context():
        assert shares(rematch_id, b3524) == {None: 2}


# --- (f) no answer after the deadline ----------------------------------------------------------


def test_an_installer_cannot_answer_an_order_after_its_deadline(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        late, on_time = world.order(world.order_x), world.order(world.order_y)
        late.respond_by = utcnow() - timedelta(minutes=1)
        on_time.respond_by = utcnow() + timedelta(minutes=10)
        db.session.commit()

    act_as(client, world.user_x)
    order_url = f"/installer/orders/{world.order_x}"
    page = text_of(client.get(order_url))
    assert "/accept" not in page and 'id="decline-form"' not in page  # no buttons offered
    for what, data in (("accept", {}), ("decline", {"reason": "Toch geen tijd"})):
        # As a browser with the page still open from before the deadline would post.
        response = post(client, f"{order_url}/{what}", data, token_from="/installer")
        assert response.status_code == 409, what
        assert "The time to answer this order has passed" in text_of(response)
        with app.app_context():
            order = world.order(world.order_x)
            assert order.status is OrderStatus.SENT and order.answered_at is None
            assert {line.status for line in order.lines} == {LineStatus.ASSIGNED}
            assert order.decline_reason is None
            runs = db.session.scalar(select(func.count()).select_from(MatchingRun))
            assert runs == 1  # nothing re-matched by a late decline
    # The households stay hidden: the order was never accepted.
    assert "Vera Vondel" not in text_of(client.get(order_url))

    # Before its deadline the other installer answers as usual.
    act_as(client, world.user_y)
    other_url = f"/installer/orders/{world.order_y}"
    assert post(client, f"{other_url}/accept", {}, other_url).status_code == 302
    with app.app_context():
        assert world.order(world.order_y).status is OrderStatus.ACCEPTED


# --- (g) an expired order gives its homes back --------------------------------------------------


def test_an_order_not_answered_in_time_gives_its_homes_back_to_matching(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.test_request_context():
        due, not_due = world.order(world.order_x), world.order(world.order_y)
        due.respond_by = utcnow() - timedelta(minutes=1)
        not_due.respond_by = utcnow() + timedelta(hours=2)
        db.session.commit()
        emails_before = db.session.scalar(select(func.count()).select_from(EmailLog))

        assert services.expire_orders() == 1
        run_jobs()  # the emails, and the matching of the homes again

        order = world.order(world.order_x)
        assert order.status is OrderStatus.EXPIRED and order.answered_at is not None
        assert {(line.status, line.current) for line in order.lines} == {
            (LineStatus.CANCELLED, False)
        }
        back = {h.registration_id for h in services.unassigned_homes(world.action)}
        assert back == set(world.registrations_x)
        for registration_id in world.registrations_x:
            registration = db.session.get(Registration, registration_id)
            assert registration is not None
            assert registration.status is RegistrationStatus.CONFIRMED
        # The other order, not due yet, is untouched.
        other = world.order(world.order_y)
        assert other.status is OrderStatus.SENT
        assert {line.current for line in other.lines} == {True}

        rematch = db.session.scalars(select(MatchingRun).order_by(MatchingRun.id.desc())).first()
        assert rematch is not None and rematch.trigger is RunTrigger.ORDER_EXPIRED
        assert rematch.status is RunStatus.PROPOSED
        [group] = services.proposal(rematch)
        # The installer that let it expire is not asked for these homes again; nobody else
        # works in 3521, so they wait, and staff read why.
        assert group.unassigned == 3 and group.parts == []

        templates = [
            e.template for e in db.session.scalars(select(EmailLog).order_by(EmailLog.id))
        ][emails_before:]
        assert templates.count("order_expired") == 2  # the installer's company address + user
        assert templates.count("installer_unavailable") == 3  # each resident
        assert templates.count("order_released") == 1  # the desk

        # Run again (the next scheduler round): nothing more.
        assert services.expire_orders() == 0

    # The installer's answer now comes too late, whatever it is.
    act_as(client, world.user_x)
    order_url = f"/installer/orders/{world.order_x}"
    response = post(client, f"{order_url}/accept", {}, token_from="/installer")
    assert response.status_code == 409
    assert "already been answered" in text_of(response)


# --- (h) VAT rounded half up ------------------------------------------------------------------


def test_vat_is_rounded_half_up_to_the_cent(app: Flask, client: FlaskClient, world: World) -> None:
    act_as(client, world.user_x)
    order_url = f"/installer/orders/{world.order_x}"
    assert post(client, f"{order_url}/accept", {}, order_url).status_code == 302
    with app.app_context():
        first, second = (world.line_of(r).id for r in world.registrations_x[:2])
    valid_until = (utcnow().astimezone(AMSTERDAM) + timedelta(days=14)).date().isoformat()

    def send(line_id: int, rows: list[tuple[str, str, str, str]]) -> Quote:
        data = {"valid_until": valid_until, "send": "1"}
        for index, (description, quantity, price, vat) in enumerate(rows):
            data |= {
                f"description_{index}": description,
                f"quantity_{index}": quantity,
                f"price_{index}": price,
                f"vat_{index}": vat,
            }
        url = f"/installer/lines/{line_id}/quote"
        assert post(client, url, data).status_code == 302
        quote = db.session.scalars(
            select(Quote).join(OrderLine).where(OrderLine.id == line_id)
        ).one()
        return quote

    with app.app_context():
        # 21% of € 10,50 is € 2,205 and 9% of € 40,50 is € 3,645: each exactly half a cent,
        # rounded up (a truncation, or Python's round-half-to-even, gives € 2,20 and € 3,64).
        quote = send(
            first,
            [("Steiger", "1", "10,50", "21"), ("Dakisolatie", "1", "40,50", "9")],
        )
        assert (quote.total_excl_vat_cents, quote.vat_cents, quote.total_cents) == (
            5100,
            221 + 365,
            5686,
        )
        # Less than half a cent is rounded down: 21% of € 10,48 is € 2,2008.
        quote = send(second, [("Steiger", "1", "10,48", "21")])
        assert (quote.vat_cents, quote.total_cents) == (220, 1268)
        first_quote = db.session.scalars(
            select(Quote).join(OrderLine).where(OrderLine.id == first)
        ).one()
        quote_id = first_quote.id
        resident_id = world.resident_of(world.registrations_x[0]).id

    # The resident reads the same figures.
    act_as(client, resident_id)
    page = text_of(client.get(f"/my/quotes/{quote_id}"))
    totals = re.search(r'id="quote-totals".*?</dl>', page, re.S)
    assert totals is not None
    for amount in ("€51.00", "€2.21", "€3.65", "€56.86"):
        assert amount in totals.group(0), amount
