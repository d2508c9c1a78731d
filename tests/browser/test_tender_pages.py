"""axe-core (WCAG 2.1 A and AA) on the desk's tender pages in Dutch and English: the form with
nothing ticked and with errors (the choice kept), the confirmation of whom the invitation is
emailed to, moving a deadline and cancelling a round (each with an error), and a cancelled
round's page. And opening a tender for two of six installers with the keyboard only.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.core import jobs
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.tenders import services as tenders
from coop.tenders.models import TenderRound
from tests import factories
from tests.browser.conftest import STAFF_EMAIL, LiveServer, assert_accessible, visit
from tests.browser.test_desk_pages import _sessions, expect_error_at, heading, submit
from tests.browser.test_keyboard import MAX_TABS, assert_focus_visible, focused, tab_until

pytestmark = pytest.mark.browser

# With the registry's own "Dakwerk Utrecht BV" (tests/browser/conftest.py), six roofers.
ROOFERS = (
    "Dakwerk Lunetten",
    "Groen Dak en Gevel",
    "Isolatie Zuilen",
    "Van Dijk Daken",
    "Warmte en Dak Utrecht",
)


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def tender_world(live_server: LiveServer) -> dict[str, int]:
    """Three closed actions of the staff member's desk: one to open a tender for (the forms),
    one with a cancelled round and a round taking bids, and one for the keyboard journey."""
    app = live_server.app
    with app.test_request_context():
        staff = db.session.scalars(select(User).where(User.email == STAFF_EMAIL)).one()
        org = staff.organisation
        for n, name in enumerate(ROOFERS):
            factories.installer(org, name, offers={"roof": (4000 + 50 * n, 5)}, kvk=f"7100000{n}")
        roofers = [
            i.id
            for i in db.session.scalars(
                select(Installer)
                .where(Installer.organisation_id == org.id)
                .order_by(Installer.company_name)
            )
        ]
        assert len(roofers) == 6
        made: dict[str, int] = {}
        for n, (key, slug) in enumerate(
            (
                ("form", "isoleren-tuinwijk"),
                ("rounds", "isoleren-rivierenwijk"),
                ("keyboard", "isoleren-oog-in-al"),
            )
        ):
            act = factories.action(org, slug=slug, pc4s="3521")
            for number in range(1, 4):
                factories.confirmed_registration(act, postcode="3521 AB", number=10 * n + number)
            actions.close_action(staff, act)
            made[key] = act.id
        rounds_action = actions.action_for_desk(made["rounds"])
        assert rounds_action is not None
        cancelled = tenders.open_round(
            staff, rounds_action, roofers[:2], deadline=utcnow() + timedelta(days=2)
        )
        tenders.cancel_round(staff, cancelled, "We kiezen voor een nieuwe ronde met meer tijd.")
        running = tenders.open_round(
            staff, rounds_action, roofers[:2], deadline=utcnow() + timedelta(days=3)
        )
        jobs.dispatcher().run_pending()
        return {**made, "cancelled": cancelled.id, "running": running.id}


@pytest.fixture(scope="module")
def staff_sessions(browser: Browser, live_server: LiveServer) -> dict[str, Any]:
    return _sessions(browser, live_server, STAFF_EMAIL)


@pytest.fixture
def browser_context_options(
    staff_sessions: dict[str, Any], language: str, tender_world: dict[str, int]
) -> dict[str, Any]:
    return {"storage_state": staff_sessions[language]}


def tender_path(world: dict[str, int], which: str, rest: str = "") -> str:
    return f"/desk/actions/{world[which]}/tender{rest}"


def tomorrow() -> str:
    return (utcnow() + timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()


def installer_boxes(page: Page) -> Any:
    return page.locator('input[name="installers"]')


def test_the_form_with_nothing_ticked_then_errors_then_whom_it_goes_to(
    page: Page, tender_world: dict[str, int], language: str
) -> None:
    visit(page, tender_path(tender_world, "form", "/new"), language)
    heading(page, {"nl": "Start een aanbesteding", "en": "Open a tender round"}[language])
    expect(installer_boxes(page)).to_have_count(6)
    for box in installer_boxes(page).all():
        expect(box).not_to_be_checked()
    assert_accessible(page, "the tender form, nothing ticked")

    # Nothing ticked and no date: both errors.
    page.locator("#deadline_on").fill("")
    submit(page)
    expect_error_at(page, "deadline_on")
    expect(page.locator("#installers-error")).to_be_visible()
    assert_accessible(page, "the tender form with errors")

    # Two ticked and a date in the past: the two stay ticked, the rest not.
    boxes = installer_boxes(page).all()
    boxes[1].check()
    boxes[4].check()
    page.locator("#deadline_on").fill("2020-01-01")
    submit(page)
    expect_error_at(page, "deadline_on")
    ticked = [box.is_checked() for box in installer_boxes(page).all()]
    assert ticked == [False, True, False, False, True, False]
    assert_accessible(page, "the tender form with the choice kept after an error")

    page.locator("#deadline_on").fill(tomorrow())
    page.locator("#note").fill("Uitvoering vanaf maart.\nVragen? Bel 030 286 00 00.")
    submit(page)
    heading(page, {"nl": "Uitnodigingen controleren", "en": "Check the invitations"}[language])
    expect(page.locator("#invitees tbody tr")).to_have_count(2)
    expect(page.locator("#not-invited")).to_be_visible()
    assert_accessible(page, "whom the invitation goes to")

    # Back to change it: still the same two.
    submit(page, "#change-invitations")
    ticked = [box.is_checked() for box in installer_boxes(page).all()]
    assert ticked == [False, True, False, False, True, False]
    # The note went through the confirmation's hidden field with its line break.
    note = page.locator("#note").input_value().replace("\r\n", "\n")
    assert note == "Uitvoering vanaf maart.\nVragen? Bel 030 286 00 00."


def test_a_cancelled_round(page: Page, tender_world: dict[str, int], language: str) -> None:
    visit(page, tender_path(tender_world, "rounds", f"/{tender_world['cancelled']}"), language)
    expect(page.locator("#cancelled")).to_contain_text("nieuwe ronde met meer tijd")
    expect(page.locator("#round-actions")).to_have_count(0)
    assert_accessible(page, "a cancelled round")


def test_moving_the_deadline_with_an_error(
    page: Page, tender_world: dict[str, int], language: str
) -> None:
    bids = tender_path(tender_world, "rounds", f"/{tender_world['running']}")
    visit(page, bids, language)
    expect(page.locator("#round-actions a")).to_have_count(2)
    visit(page, f"{bids}/deadline", language)
    assert_accessible(page, "moving the deadline")
    page.locator("#deadline_on").fill(tomorrow())  # earlier than the current one
    submit(page)
    expect_error_at(page, "deadline_on")
    assert_accessible(page, "moving the deadline, with an error")


def test_cancelling_a_round_with_an_error(
    page: Page, tender_world: dict[str, int], language: str
) -> None:
    visit(page, tender_path(tender_world, "rounds", f"/{tender_world['running']}/cancel"), language)
    expect(page.locator("#cancel-consequences")).to_be_visible()
    assert_accessible(page, "cancelling a round")
    submit(page)
    expect_error_at(page, "message")
    assert_accessible(page, "cancelling a round, with an error")


def keyboard_date(page: Page, day: date) -> str:
    """What to type into a date input for ``day``: its fields follow the browser's own language
    (day-month-year in a Dutch Chromium, month-day-year in an American one), so try each order
    on a scratch page of the same browser."""
    probe = page.context.new_page()
    try:
        for pattern in ("%d%m%Y", "%m%d%Y", "%Y%m%d"):
            probe.set_content('<button id="b">b</button><input type="date" id="d">')
            probe.focus("#b")
            probe.keyboard.press("Tab")
            probe.keyboard.type(day.strftime(pattern))
            if probe.evaluate("document.getElementById('d').value") == day.isoformat():
                return day.strftime(pattern)
    finally:
        probe.close()
    raise AssertionError("no order of day, month and year fills a date input")


def tab_to(page: Page, selector: str) -> None:
    """``tab_until``, for a form with date and time inputs: their fields are Tab stops of their
    own, each drawn with the focus ring; the last stop of each is the browser's calendar or
    clock button inside the input, whose focus the browser draws itself (the input does not
    match :focus then, so the page's ring cannot be checked there)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        inside_picker = page.evaluate(
            "() => { const e = document.activeElement;"
            " return ['date', 'time'].includes(e.type) && !e.matches(':focus'); }"
        )
        if not inside_picker:
            assert_focus_visible(page)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with {MAX_TABS} presses of Tab")


@pytest.mark.parametrize("language", ["nl"])
def test_a_tender_for_two_of_six_installers_with_the_keyboard_only(
    page: Page, live_server: LiveServer, tender_world: dict[str, int], language: str
) -> None:
    visit(page, tender_path(tender_world, "keyboard", "/new"), language)
    day = (utcnow() + timedelta(days=2)).astimezone(AMSTERDAM).date()
    typed_day = keyboard_date(page, day)
    wanted = ("Groen Dak en Gevel", "Van Dijk Daken")
    ids = [page.locator("main label", has_text=name).get_attribute("for") or "" for name in wanted]
    # Space ticks a box; nothing else is ticked on the way.
    for box_id in ids:
        tab_until(page, f"#{box_id}")
        page.keyboard.press("Space")
        assert focused(page)["checked"] is True
    tab_to(page, "#deadline_on")
    page.keyboard.type(typed_day)
    tab_to(page, "#deadline_at")
    page.keyboard.type("1600")
    tab_to(page, "main form button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # The confirmation names the two and their addresses; nothing sent yet.
    expect(page.locator("#invitees tbody tr")).to_have_count(2)
    for name in wanted:
        expect(page.locator("#invitees")).to_contain_text(name)
    with live_server.app.app_context():
        assert not db.session.scalars(
            select(TenderRound).where(TenderRound.action_id == tender_world["keyboard"])
        ).all()
    tab_until(page, "#send-invitations")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#sealed")).to_be_visible()
    with live_server.app.app_context():
        tender = db.session.scalars(
            select(TenderRound).where(TenderRound.action_id == tender_world["keyboard"])
        ).one()
        assert sorted(i.installer.company_name for i in tender.invitations) == sorted(wanted)
        local = tender.deadline.astimezone(AMSTERDAM)
        assert (local.date(), local.strftime("%H:%M")) == (day, "16:00")
