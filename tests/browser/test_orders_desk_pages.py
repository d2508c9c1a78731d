"""axe-core (WCAG 2.1 A and AA) on the desk's pages after registration closes, in Dutch and
English: opening a tender (empty and with errors), the bids sealed and side by side, matching,
a run in progress (its progress bar moving by itself), a proposal, moving or splitting a group
(with an error), an approval in progress and one that stopped, and the orders. And approving a
proposal with the keyboard only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.cli import scheduler_round
from coop.core import jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.models import MatchingRun, RunStatus, RunTrigger
from coop.tenders import services as tenders
from coop.tenders.services import BidInput
from tests import factories
from tests.browser.conftest import STAFF_EMAIL, LiveServer, assert_accessible, visit
from tests.browser.test_desk_pages import _sessions, expect_error_at, heading, submit
from tests.browser.test_keyboard import tab_until

pytestmark = pytest.mark.browser


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def after_registration(live_server: LiveServer) -> dict[str, int]:
    """Two closed actions of the staff member's desk. The first went through a tender and an
    approved matching (orders sent), and has a new proposal for homes confirmed since. The
    second has a tender still open and a run in progress."""
    app = live_server.app
    with app.test_request_context():
        staff = db.session.scalars(select(User).where(User.email == STAFF_EMAIL)).one()
        org = staff.organisation
        first = factories.action(org, slug="isoleren-lunetten", pc4s="3521,3524")
        local = factories.installer(
            org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 4)}, kvk="70000001"
        )
        wide = factories.installer(
            org,
            "Warmte en Dak Utrecht",
            area="3500-3599",
            offers={"roof": (4500, 4)},
            kvk="70000002",
        )
        for number in range(1, 6):
            factories.confirmed_registration(first, postcode="3521 AB", number=number)
        actions.close_action(staff, first)
        roof = next(m.id for m in first.measures if m.measure.code == "roof")
        now = utcnow()
        tender = tenders.open_round(
            staff, first, [local.id, wide.id], deadline=now + timedelta(hours=2), now=now
        )
        for invitation in tender.invitations:
            user = factories.installer_user(invitation.installer)
            tenders.submit_bid(user, invitation, {roof: BidInput(3900 + invitation.id, 6)}, now=now)
        tender.deadline = now - timedelta(minutes=1)
        db.session.commit()
        run = orders.start_run(staff, first, RunTrigger.STAFF, use_registry_prices=True)
        jobs.dispatcher().run_pending()
        orders.approve_run(staff, run)
        for number in range(10, 13):
            factories.confirmed_registration(first, postcode="3521 AB", number=number)
        proposal = orders.start_run(staff, first, RunTrigger.STAFF, use_registry_prices=True)
        jobs.dispatcher().run_pending()
        db.session.refresh(proposal)
        assert proposal.status is RunStatus.PROPOSED

        second = factories.action(org, slug="warmtepompen-zuilen", pc4s="3551")
        factories.confirmed_registration(second, postcode="3551 AA", number=1)
        actions.close_action(staff, second)
        # Work in progress: a run a worker is busy with, and a tender still taking bids.
        running = MatchingRun(
            action_id=second.id,
            trigger=RunTrigger.STAFF,
            status=RunStatus.RUNNING,
            stage="solving",
            progress=35,
            use_registry_prices=True,
        )
        db.session.add(running)
        db.session.commit()
        sealed = tenders.open_round(staff, second, [wide.id], deadline=utcnow() + timedelta(days=3))
        jobs.dispatcher().run_pending()
        batch = orders.proposal(proposal)[0].batch
        return {
            "first": first.id,
            "second": second.id,
            "tender": tender.id,
            "sealed": sealed.id,
            "proposal": proposal.id,
            "running": running.id,
            "batch": batch.id,
            "local": local.id,
        }


@pytest.fixture(scope="module")
def staff_sessions(browser: Browser, live_server: LiveServer) -> dict[str, Any]:
    return _sessions(browser, live_server, STAFF_EMAIL)


@pytest.fixture
def browser_context_options(
    staff_sessions: dict[str, Any], language: str, after_registration: dict[str, int]
) -> dict[str, Any]:
    return {"storage_state": staff_sessions[language]}


def desk(world: dict[str, int], which: str, rest: str = "") -> str:
    return f"/desk/actions/{world[which]}{rest}"


def test_open_a_tender_round_empty_and_with_errors(
    page: Page, after_registration: dict[str, int], language: str
) -> None:
    visit(page, desk(after_registration, "first", "/tender/new"), language)
    heading(page, {"nl": "Start een aanbesteding", "en": "Open a tender round"}[language])
    assert_accessible(page, "the tender form")
    page.locator("#deadline_on").fill("")
    for box in page.locator('input[name="installers"]').all():
        box.uncheck()
    submit(page)
    expect_error_at(page, "deadline_on")
    expect(page.locator("#installers-error")).to_be_visible()
    assert_accessible(page, "the tender form with errors")


def test_bids_sealed_and_side_by_side(
    page: Page, after_registration: dict[str, int], language: str
) -> None:
    visit(
        page,
        desk(after_registration, "second", f"/tender/{after_registration['sealed']}"),
        language,
    )
    expect(page.locator("#sealed")).to_be_visible()
    assert_accessible(page, "sealed bids")
    visit(
        page, desk(after_registration, "first", f"/tender/{after_registration['tender']}"), language
    )
    expect(page.locator("#bids tbody tr")).to_have_count(2)
    expect(page.locator("#bids .badge")).to_have_count(1)
    assert_accessible(page, "bids side by side")


def test_matching_page(page: Page, after_registration: dict[str, int], language: str) -> None:
    visit(page, desk(after_registration, "first", "/matching"), language)
    expect(page.locator("#current-run")).to_be_visible()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    assert_accessible(page)


def test_run_in_progress_moves_its_progress_bar(
    page: Page, live_server: LiveServer, after_registration: dict[str, int], language: str
) -> None:
    def progress(stage: str, percent: int) -> None:
        with live_server.app.app_context():
            run = db.session.get(MatchingRun, after_registration["running"])
            assert run is not None
            run.stage, run.progress = stage, percent
            db.session.commit()

    progress("solving", 35)
    visit(
        page,
        desk(after_registration, "second", f"/matching/{after_registration['running']}"),
        language,
    )
    expect(page.locator("#run-progress")).to_have_attribute("value", "35")
    assert_accessible(page, "a run in progress")
    progress("storing", 90)
    # The page's script asks for the progress and moves the bar, without a reload.
    expect(page.locator("#run-progress")).to_have_attribute("value", "90")
    expect(page.locator("#run-stage")).to_contain_text("90%")


def test_proposal_and_moving_a_group_with_an_error(
    page: Page, live_server: LiveServer, after_registration: dict[str, int], language: str
) -> None:
    run_path = desk(after_registration, "first", f"/matching/{after_registration['proposal']}")
    visit(page, run_path, language)
    expect(page.locator("#run-status")).to_have_attribute("data-status", "proposed")
    expect(page.locator("#proposal tbody tr")).to_have_count(1)
    assert_accessible(page, "a proposal")
    visit(page, f"{run_path}/batches/{after_registration['batch']}", language)
    # Each installer's room for this group, as the rule counts it (the group's own homes once).
    with live_server.app.app_context():
        run = db.session.get(MatchingRun, after_registration["proposal"])
        assert run is not None
        group = next(g for g in orders.proposal(run) if g.batch.id == after_registration["batch"])
        room = {c.installer.id: c.capacity_left for c in orders.choices_for(run, group.batch)}
        holder = group.parts[0].installer_id
    assert holder in room
    word = {"nl": "ruimte voor", "en": "room for"}[language]
    for installer_id, left in room.items():
        expect(page.locator(f'label[for="homes_{installer_id}"]')).to_contain_text(
            f"{word} {left})"
        )
    field = f"homes_{after_registration['local']}"
    page.locator(f"#{field}").fill("twee")
    submit(page)
    expect_error_at(page, field)
    assert_accessible(page, "moving a group, with an error")


def test_orders(page: Page, after_registration: dict[str, int], language: str) -> None:
    visit(page, desk(after_registration, "first", "/orders"), language)
    expect(page.locator('#orders tr[data-status="sent"]')).to_have_count(1)
    assert_accessible(page)


@pytest.mark.parametrize("language", ["nl"])
def test_approving_a_proposal_with_the_keyboard(
    page: Page, live_server: LiveServer, after_registration: dict[str, int], language: str
) -> None:
    run_path = desk(after_registration, "first", f"/matching/{after_registration['proposal']}")
    visit(page, run_path, language)
    tab_until(page, "main form button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # Back on the run's page, which follows the approval's job (on the embedded default it runs
    # once the response has gone out): the page shows its progress or, already, that it is done.
    expect(page).to_have_url(live_server.url + run_path)
    for attempt in range(120):  # up to a minute on a busy machine
        if page.locator("#approved").count():
            break
        if attempt in (20, 60):
            # `coop serve` runs a scheduler round every minute, whose sweep hands over a job
            # that never reached the in-process runner. Under this threaded test server the
            # hand-over after the response is now and then missed (the job's row stays pending,
            # never tried; not understood yet, see the closing note of stop 18): the person
            # would see the sweep take it up, so the test lets a round run as `coop serve` does.
            scheduler_round(live_server.app)
        # The person waits a moment and follows the page's own refresh link, by keyboard.
        page.wait_for_timeout(500)
        tab_until(page, "#refresh")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    expect(page.locator("#approved")).to_be_visible()
    page.locator("#approved a").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(live_server.url + desk(after_registration, "first", "/orders"))
    expect(page.locator('#orders tr[data-status="sent"]')).to_have_count(2)


def test_an_approval_in_progress_and_one_that_stopped(
    page: Page, live_server: LiveServer, after_registration: dict[str, int], language: str
) -> None:
    with live_server.app.app_context():
        approving = MatchingRun(
            action_id=after_registration["second"],
            trigger=RunTrigger.STAFF,
            status=RunStatus.APPROVING,
            stage="approving",
            progress=40,
            use_registry_prices=True,
        )
        db.session.add(approving)
        db.session.commit()
        run_id = approving.id
    try:
        visit(page, desk(after_registration, "second", f"/matching/{run_id}"), language)
        expect(page.locator("#run-progress")).to_have_attribute("value", "40")
        expect(page.locator("#refresh")).to_be_visible()
        assert_accessible(page, "an approval in progress")
        with live_server.app.app_context():
            orders.approval_failed(run_id, "RuntimeError: the worker was killed")
        visit(page, desk(after_registration, "second", f"/matching/{run_id}"), language)
        expect(page.locator("#approval-stopped button")).to_be_visible()
        assert_accessible(page, "an approval that stopped")
    finally:
        with live_server.app.app_context():
            run = db.session.get(MatchingRun, run_id)
            assert run is not None
            db.session.delete(run)
            db.session.commit()
