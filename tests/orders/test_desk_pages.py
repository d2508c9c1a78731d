"""The desk's side over HTTP: open a tender, see bids sealed then side by side, start matching,
follow its progress, move and split a group, approve, and follow the orders."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.actions.models import Action
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.orders import services
from coop.orders.models import MatchingRun, Order, ProposedAssignment, RunStatus
from coop.orders.services import approval
from coop.tenders import services as tenders
from coop.tenders.models import TenderRound
from coop.tenders.services import BidInput
from tests import factories
from tests.orders.test_matching_flow import measure_of


def log_in(client: FlaskClient, email: str) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def desk(app: Flask, client: FlaskClient) -> dict:
    with app.app_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act = factories.action(org)
        a = factories.installer(org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)})
        b = factories.installer(
            org, "Warmte en Dak Utrecht", area="3500-3599", offers={"roof": (4500, 5)}
        )
        factories.installer_user(a)
        factories.installer_user(b)
        for n in range(1, 7):
            factories.confirmed_registration(act, postcode="3521 AB", number=n)
        actions.close_action(staff, act)
        ids = {"action": act.id, "a": a.id, "b": b.id, "roof": measure_of(act, "roof")}
    log_in(client, "staff@example.nl")
    client.get("/language/en")  # the texts below are the English ones (Dutch is tested apart)
    return ids


def test_a_tender_round_from_invitation_to_bids_side_by_side(
    app: Flask, client: FlaskClient, desk: dict
) -> None:
    url = f"/desk/actions/{desk['action']}/tender/new"
    page = client.get(url).get_data(as_text=True)
    assert "Dakwerk Lunetten" in page and "Warmte en Dak Utrecht" in page
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()

    # A deadline in the past is refused at the field, and nothing is opened.
    response = factories.post_form(
        client,
        url,
        {"installers": [desk["a"], desk["b"]], "deadline_on": "2020-01-01", "deadline_at": "17:00"},
    )
    assert response.status_code == 200
    assert "at least an hour" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TenderRound)) == 0

    response = factories.post_form(
        client,
        url,
        {
            "installers": [desk["a"], desk["b"]],
            "deadline_on": tomorrow,
            "deadline_at": "17:00",
            "step": "send",  # the confirmation's button (tests/tenders/test_desk_rounds.py)
        },
    )
    assert response.status_code == 302
    bids_url = response.headers["Location"]
    with app.app_context():
        tender = db.session.scalars(select(TenderRound)).one()
        invitation = next(i for i in tender.invitations if i.installer_id == desk["a"])
        tenders.submit_bid(
            installer_user_of(desk["a"]), invitation, {desk["roof"]: BidInput(3875, 20)}
        )
    sealed = client.get(bids_url).get_data(as_text=True)
    assert 'id="sealed"' in sealed and "38,75" not in sealed

    with app.app_context():
        tender = db.session.scalars(select(TenderRound)).one()
        tender.deadline = utcnow() - timedelta(minutes=1)
        db.session.commit()
    opened = client.get(bids_url).get_data(as_text=True)
    assert "€38.75" in opened and "20 homes" in opened


def installer_user_of(installer_id: int) -> User:
    return db.session.scalars(select(User).where(User.installer_id == installer_id)).one()


def test_matching_with_registry_prices_then_split_and_approve(
    app: Flask, client: FlaskClient, desk: dict
) -> None:
    base = f"/desk/actions/{desk['action']}/matching"
    # Without a tender, matching needs the registry prices.
    response = factories.post_form(client, base, {"registry_weeks": "12"})
    assert response.status_code == 409
    assert "registry prices" in response.get_data(as_text=True)
    response = factories.post_form(
        client, base, {"use_registry_prices": "y", "registry_weeks": "0"}
    )
    assert response.status_code == 400  # at the field: weeks from 1

    response = factories.post_form(
        client, base, {"use_registry_prices": "y", "registry_weeks": "12"}
    )
    assert response.status_code == 302
    run_url = response.headers["Location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    # The job ran after the request (embedded default): the proposal is there.
    status = client.get(f"{run_url}/status").get_json()
    assert status["finished"] and status["progress"] == 100
    page = client.get(run_url).get_data(as_text=True)
    assert "Dakwerk Lunetten" in page  # the cheaper one takes the whole street

    with app.app_context():
        [row] = db.session.scalars(select(ProposedAssignment)).all()
        batch_id = row.batch_id
    edit_url = f"{run_url}/batches/{batch_id}"
    form = client.get(edit_url).get_data(as_text=True)
    assert f'name="homes_{desk["a"]}"' in form and 'value="6"' in form
    response = factories.post_form(
        client, edit_url, {f"homes_{desk['a']}": "5", f"homes_{desk['b']}": "5"}
    )
    assert response.status_code == 409  # more homes than the group has
    response = factories.post_form(
        client, edit_url, {f"homes_{desk['a']}": "4", f"homes_{desk['b']}": "two"}
    )
    assert response.status_code == 200
    assert "Enter a whole number of homes" in response.get_data(as_text=True)
    response = factories.post_form(
        client, edit_url, {f"homes_{desk['a']}": "4", f"homes_{desk['b']}": "2"}
    )
    assert response.status_code == 302

    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 302
    with app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.installer_id)).all()
        assert [(o.installer_id, len(o.lines)) for o in orders] == [(desk["a"], 4), (desk["b"], 2)]
        run = db.session.get(MatchingRun, run_id)
        assert run is not None and run.status is RunStatus.APPROVED
    overview = client.get(f"/desk/actions/{desk['action']}/orders").get_data(as_text=True)
    assert overview.count('data-status="sent"') == 2
    # Approving again changes nothing.
    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 409
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 2
    assert re.search(r"Run \d+", client.get(base).get_data(as_text=True))


def test_approval_is_a_job_whose_progress_the_run_page_shows(
    app: Flask, client: FlaskClient, desk: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        act = db.session.get(Action, desk["action"])
        assert act is not None
        for n in range(1, 4):  # a second batch, so that the approval has two steps
            factories.confirmed_registration(act, postcode="3524 BA", street="Hondsrug", number=n)
    base = f"/desk/actions/{desk['action']}/matching"
    response = factories.post_form(
        client, base, {"use_registry_prices": "y", "registry_weeks": "12"}
    )
    run_url = response.headers["Location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    monkeypatch.setattr(approval, "APPROVAL_CHUNK_HOMES", 1)
    real_chunk = approval._approve_groups
    chunks: list[int] = []

    def stops_after_the_first_batch(*args: object, **kwargs: object) -> bool:
        if chunks:
            raise RuntimeError("worker killed")
        chunks.append(1)
        return real_chunk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(approval, "_approve_groups", stops_after_the_first_batch)
    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 302 and response.headers["Location"].endswith(run_url)

    # The job (run after the request here) stopped half-way: the page shows how far it got,
    # with a link to refresh it for a browser without JavaScript.
    page = client.get(run_url).get_data(as_text=True)
    assert 'data-status="approving"' in page and "Approval of run" in page
    progress = re.search(r'<progress id="run-progress" max="100" value="(\d+)"', page)
    assert progress and 0 < int(progress.group(1)) < 100
    assert 'id="refresh"' in page and "creating the orders" in page
    assert 'action="' + run_url + '/approve"' not in page  # no second approve button
    status = client.get(f"{run_url}/status").get_json()
    assert status["status"] == "approving" and not status["finished"]
    # A second click changes nothing.
    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1

    # The outbox gave up on the job: the page says so and staff carry on.
    with app.app_context():
        services.approval_failed(run_id, "RuntimeError: worker killed")
    page = client.get(run_url).get_data(as_text=True)
    assert 'id="approval-stopped"' in page and 'id="run-progress"' not in page
    assert client.get(f"{run_url}/status").get_json()["finished"]
    monkeypatch.setattr(approval, "_approve_groups", real_chunk)
    response = factories.post_form(client, f"{run_url}/approve", {}, token_from=run_url)
    assert response.status_code == 302
    page = client.get(run_url).get_data(as_text=True)
    assert 'data-status="approved"' in page and 'id="approved"' in page
    with app.app_context():
        orders = db.session.scalars(select(Order)).all()
        assert sorted(len(o.lines) for o in orders) == [3, 6]
        assert {o.installer_id for o in orders} == {desk["a"], desk["b"]}
