"""In Chromium: "12a" and "12,5" accepted through the real sign-up form; street and town filled
in from a loopback stand-in for PDOK while typing, typed by hand when it is down, and filled in
on submit without JavaScript; the changed pages through axe in Dutch and English, at 1280 and
at 320 px wide without scrolling sideways; the desk's charts with every label inside the picture
as Chromium draws it; deposits found by reference and their received date.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from coop import create_app
from coop.core import address_lookup
from coop.extensions import db
from coop.registrations.models import Household, Registration
from tests import factories
from tests.browser.conftest import (
    ADMIN_EMAIL,
    TIMEOUT_MS,
    LiveServer,
    _seed,
    assert_accessible,
    fill_registration,
    goto,
    seed_desk,
    visit,
)
from tests.browser.test_desk_pages import _sessions
from tests.browser.test_payment_pages import deposits  # noqa: F401  (a fixture of this module too)
from tests.conftest import base_config
from tests.core.pdok_standin import PdokStandIn

pytestmark = pytest.mark.browser

TEXTS = {
    "found": {
        "nl": "Straat en woonplaats zijn ingevuld uit de adresregistratie. Controleer ze.",
        "en": "Street and town are filled in from the address register. Check them.",
    },
    "unavailable": {
        "nl": "De adresregistratie is nu niet bereikbaar: typ de straat en woonplaats zelf.",
        "en": "The address register cannot be reached now: type the street and town yourself.",
    },
}


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def standin() -> Iterator[PdokStandIn]:
    server = PdokStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, standin: PdokStandIn
) -> Iterator[LiveServer]:
    """As conftest's, with the address lookup pointed at the stand-in."""
    path = tmp_path_factory.mktemp("live-addresses") / "coop.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(
        base_config(
            f"sqlite:///{path}",
            ADDRESS_LOOKUP_URL=standin.url,
            ADDRESS_LOOKUP_TIMEOUT=1.0,
            ADDRESS_LOOKUP_PAUSE=0,
        )
    )
    slug, registration_id, measure_ids = _seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-addresses", daemon=True)
    thread.start()
    live = LiveServer(app, url, slug, registration_id, measure_ids)
    seed_desk(live)
    yield live
    server.shutdown()
    thread.join(timeout=10)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def admin_sessions(browser: Browser, live_server: LiveServer) -> dict[str, Any]:
    return _sessions(browser, live_server, ADMIN_EMAIL)


@pytest.fixture
def admin(
    browser: Browser, live_server: LiveServer, admin_sessions: dict[str, Any], language: str
) -> Iterator[Page]:
    context = browser.new_context(
        locale="nl-NL", base_url=live_server.url, storage_state=admin_sessions[language]
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def fits(page: Page, what: str) -> None:
    """At 320 px wide (a phone, or 1280 px zoomed to 400%) nothing scrolls sideways, and the
    page still passes axe; then back to a desktop width."""
    page.set_viewport_size({"width": 320, "height": 800})
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        wide = page.evaluate(
            """() => [...document.querySelectorAll("body *")]
              .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth
                && !e.closest(".table-scroll"))
              .slice(0, 8).map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className
                + " " + Math.round(e.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{what}: {overflow} px wider than the 320 px screen: {wide}")
    assert_accessible(page, f"{what}, at 320 px")
    page.set_viewport_size({"width": 1280, "height": 800})


def registration_of(live_server: LiveServer, email: str) -> tuple[Any, ...]:
    from coop.accounts.models import User

    with live_server.app.app_context():
        registration = db.session.scalars(
            select(Registration)
            .join(User, User.id == Registration.user_id)
            .where(User.email == email)
        ).one()
        household: Household = registration.household
        return (
            household.house_number,
            household.house_number_addition,
            household.street,
            household.city,
            [m.quantity for m in registration.measures],
        )


def register_url(live_server: LiveServer) -> str:
    return f"/actions/{live_server.action_slug}/register"


# --- the sign-up form ------------------------------------------------------------------------


def test_12a_and_12_5_are_accepted_by_the_sign_up_form(page: Page, live_server: LiveServer) -> None:
    goto(page, register_url(live_server))
    fill_registration(page, live_server, house_number="12a")
    page.locator(f"#quantity_{live_server.measure_ids[0]}").fill("12,5")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert page.url.endswith(f"/actions/{live_server.action_slug}/registered"), page.url
    number, addition, street, city, quantities = registration_of(live_server, "anna12a@example.nl")
    assert (number, addition, street, city, quantities) == (12, "A", "Hondsrug", "Utrecht", [13])


def test_street_and_town_come_from_the_register_while_typing(
    page: Page, live_server: LiveServer, standin: PdokStandIn, language: str
) -> None:
    visit(page, register_url(live_server), language)
    page.locator("#postcode").fill("3521 ab")
    page.locator("#house_number").fill("12a")
    expect(page.locator("#street")).to_have_value("Croeselaan")
    expect(page.locator("#city")).to_have_value("Utrecht")
    expect(page.locator("#address-lookup-status")).to_have_text(TEXTS["found"][language])
    # The browser asked coop, coop asked the stand-in: for this address, of the type adres.
    assert standin.requests[-1]["fq"] == ["postcode:3521AB AND huisnummer:12 AND type:adres"]
    assert_accessible(page, "the sign-up with street and town filled in")
    fits(page, "the sign-up with street and town filled in")
    # What the person typed is never overwritten.
    page.locator("#street").fill("Croeselaan (achterom)")
    page.locator("#house_number").fill("12")
    page.wait_for_timeout(900)
    expect(page.locator("#street")).to_have_value("Croeselaan (achterom)")


def test_street_and_town_are_typed_by_hand_when_the_register_is_down(
    page: Page, live_server: LiveServer, standin: PdokStandIn, language: str
) -> None:
    standin.stop()
    try:
        visit(page, register_url(live_server), language)
        house_number = f"{live_server.next_house_number()}{language}"
        fill_registration(page, live_server, house_number=house_number)
        page.locator("#street").fill("")
        page.locator("#city").fill("")
        page.locator("#postcode").fill("3524 BA")
        page.locator("#house_number").fill(house_number)
        expect(page.locator("#address-lookup-status")).to_have_text(TEXTS["unavailable"][language])
        expect(page.locator("#street")).to_have_value("")
        assert_accessible(page, "the sign-up with the register unreachable")
        page.locator("#street").fill("Hondsrug")
        page.locator("#city").fill("Utrecht")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert page.url.endswith("/registered"), page.url
        email = f"anna{house_number}@example.nl"
        assert registration_of(live_server, email)[2:4] == ("Hondsrug", "Utrecht")
    finally:
        standin.start()
        with live_server.app.app_context():
            address_lookup.rest_over()


def submit_without_street_and_town(page: Page, live_server: LiveServer, number: str) -> None:
    fill_registration(page, live_server, house_number=number)
    page.locator("#house_number").fill(number)
    page.locator("#street").fill("")
    page.locator("#city").fill("")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def test_without_javascript_the_form_comes_back_filled_in_to_check(
    browser: Browser, live_server: LiveServer, language: str
) -> None:
    context = browser.new_context(
        locale="nl-NL", base_url=live_server.url, java_script_enabled=False
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    number = "100" if language == "nl" else "100b"
    try:
        visit(page, register_url(live_server), language)
        submit_without_street_and_town(page, live_server, number)
        expect(page.locator("#address-looked-up")).to_be_visible()
        expect(page.locator("#street")).to_have_value("Hondsrug")
        expect(page.locator("#city")).to_have_value("Utrecht")
        expect(page.locator("#error-summary")).to_have_count(0)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert page.url.endswith("/registered"), page.url
        assert registration_of(live_server, f"anna{number}@example.nl")[2:4] == (
            "Hondsrug",
            "Utrecht",
        )
    finally:
        context.close()


def test_the_page_that_comes_back_to_check_passes_axe(
    browser: Browser, live_server: LiveServer, language: str
) -> None:
    # axe runs as a script: here the page's own script is kept away instead of all JavaScript.
    context = browser.new_context(locale="nl-NL", base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/address-lookup.js", lambda route: route.abort())
    page = context.new_page()
    try:
        visit(page, register_url(live_server), language)
        submit_without_street_and_town(page, live_server, f"10{language}")
        expect(page.locator("#address-looked-up")).to_be_visible()
        expect(page.locator("#address-looked-up")).to_be_focused()
        assert_accessible(page, "the sign-up back to check the address")
        fits(page, "the sign-up back to check the address")
    finally:
        context.close()


# --- the desk's changed pages ----------------------------------------------------------------


def test_registering_by_phone_fills_in_the_address(
    admin: Page, live_server: LiveServer, language: str
) -> None:
    visit(admin, f"/desk/registrations/new/{live_server.desk['action']}", language)
    label = {"nl": "Naam van de bewoner", "en": "The resident's name"}[language]
    expect(admin.locator('label[for="name"]')).to_have_text(label)
    admin.locator("#postcode").fill("3524BA")
    admin.locator("#house_number").fill("7")
    expect(admin.locator("#street")).to_have_value("Hondsrug")
    assert_accessible(admin, "registering by phone")
    fits(admin, "registering by phone")


def test_desk_settings(admin: Page, language: str) -> None:
    visit(admin, "/desk/settings", language)
    expect(admin.locator("#address_lookup")).to_be_checked()
    assert_accessible(admin, "the desk's settings")
    fits(admin, "the desk's settings")
    visit(admin, "/desk/", language)
    expect(admin.locator('main a[href="/desk/settings"]')).to_have_count(1)


def test_registrations_found_as_people_type(
    admin: Page, live_server: LiveServer, language: str
) -> None:
    from coop.accounts.models import User
    from coop.actions.models import Action
    from tests.registrations.test_desk_list import add_registration

    with live_server.app.test_request_context():
        action = db.session.get(Action, live_server.desk["action"])
        assert action is not None
        email = "ozturk@example.nl"
        if db.session.scalars(select(User).where(User.email == email)).first() is None:
            add_registration(
                action, name="Öztürk-van Dijk", email=email, postcode="3521 AB", number=77
            )
    for query in ("ozturk", "VAN DIJK", "dijk öztürk"):
        visit(admin, f"/desk/registrations/?q={query}", language)
        expect(admin.locator("#registrations tbody tr")).to_have_count(1)
        expect(admin.locator("#registrations tbody")).to_contain_text("Öztürk-van Dijk")
    assert_accessible(admin, "the registrations found by a search")
    fits(admin, "the registrations found by a search")


CHART_TEXTS_INSIDE = """() => {
  const problems = [];
  for (const svg of document.querySelectorAll("svg.chart-svg")) {
    const box = svg.viewBox.baseVal;
    const axis = svg.querySelector("line");
    for (const text of svg.querySelectorAll("text")) {
      const b = text.getBBox();
      if (b.x < -0.5 || b.x + b.width > box.width + 0.5) {
        problems.push(`${svg.parentElement.closest("section").id}: "${text.textContent}" `
          + `from ${b.x.toFixed(1)} to ${(b.x + b.width).toFixed(1)} of ${box.width}`);
      }
      const anchor = text.getAttribute("text-anchor");
      if (anchor === "end" && axis && b.x + b.width > axis.x1.baseVal.value + 0.5) {
        problems.push(`"${text.textContent}" crosses the axis`);
      }
    }
  }
  return problems;
}"""


def test_dashboard_charts_keep_their_labels_whole(
    admin: Page, live_server: LiveServer, language: str
) -> None:
    with live_server.app.test_request_context():
        from coop.actions.models import Action
        from coop.registrations.models import DwellingType
        from tests.registrations.test_desk_list import add_registration

        action = db.session.get(Action, live_server.desk["action"])
        assert action is not None
        for number, kind in enumerate(DwellingType, start=40 if language == "nl" else 60):
            registration_id = add_registration(
                action,
                name="Twee Kap",
                email=f"kap{number}{language}@example.nl",
                postcode="3524 BA",
                number=number,
            )
            registration = db.session.get(Registration, registration_id)
            assert registration is not None
            registration.household.dwelling_type = kind
        db.session.commit()
    visit(admin, f"/desk/dashboard/actions/{live_server.desk['action']}", language)
    if language == "nl":
        expect(admin.locator("#chart-dwelling svg")).to_contain_text("Twee-onder-een-")
    assert admin.locator("svg.chart-svg").count() >= 6
    assert admin.evaluate(CHART_TEXTS_INSIDE) == []
    assert_accessible(admin, "the dashboard")
    fits(admin, "the dashboard")
    # Narrow, the pictures scale down with their labels still inside.
    admin.set_viewport_size({"width": 320, "height": 800})
    assert admin.evaluate(CHART_TEXTS_INSIDE) == []


# --- deposits ---------------------------------------------------------------------------------


def test_a_deposit_found_by_reference_and_received_on_a_day(
    admin: Page,
    deposits: dict[str, int],  # noqa: F811  (the fixture imported above)
    language: str,
) -> None:
    from coop.payments.services import reference_for

    reference = reference_for(deposits["transfer"])
    visit(admin, f"/desk/actions/{deposits['action']}/payments", language)
    admin.locator("#q").fill(reference.replace("-", " "))
    with admin.expect_navigation():
        admin.locator("form.search-form button[type=submit]").click()
    expect(admin.locator("#payments tbody tr")).to_have_count(1)
    expect(admin.locator(f"#payment-{deposits['transfer']}")).to_be_visible()
    assert_accessible(admin, "a deposit found by its reference")
    fits(admin, "a deposit found by its reference")
    visit(admin, f"/desk/payments/{deposits['transfer']}", language)
    today = admin.locator("#received_on").input_value()
    assert len(today) == 10
    admin.locator("#amount").fill("250")
    admin.locator("#received_on").fill("2099-01-01")
    with admin.expect_navigation():
        admin.locator("main form button[type=submit]").first.click()
    expect(admin.locator("#received_on-error")).to_be_visible()
    assert_accessible(admin, "a received date in the future")
    fits(admin, "a received date in the future")


def test_interest_and_survey_fill_in_the_street(
    page: Page, live_server: LiveServer, language: str
) -> None:
    with live_server.app.test_request_context():
        from coop.actions.models import Neighbourhood

        neighbourhood = db.session.get(Neighbourhood, live_server.desk["neighbourhood"])
        campaign_id = factories.campaign(neighbourhood).id
        survey_id = factories.survey(neighbourhood).id
    for path in (f"/interest/{campaign_id}", f"/surveys/{survey_id}"):
        visit(page, path, language)
        page.locator("#postcode").fill("3524 BA")
        page.locator("#house_number").fill("7")
        expect(page.locator("#street")).to_have_value("Hondsrug")
        assert_accessible(page, path)
        fits(page, path)
