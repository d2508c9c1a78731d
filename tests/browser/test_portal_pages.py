"""The installer's portal on a phone, and the resident's steps in the work on their home:
axe-core (WCAG 2.1 A and AA) on every page in Dutch and English, error states included; the order
page and the quote form fit a phone's width with big tap targets; and the resident accepts a
quote with the keyboard only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders import fieldwork, services
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import LineStatus, QuoteStatus, RunTrigger
from coop.tenders import services as tenders
from tests import factories
from tests.browser.conftest import (
    INSTALLER_EMAIL,
    STAFF_EMAIL,
    TIMEOUT_MS,
    LiveServer,
    assert_accessible,
    goto,
)
from tests.browser.test_keyboard import assert_focus_visible, focused, tab, tab_until
from tests.login import sign_in

pytestmark = pytest.mark.browser

# The narrowest phone, as wide as a 1280 px screen zoomed to 400% (WCAG 1.4.10).
PHONE = {"width": 320, "height": 640}
RESIDENTS = ("quote@example.nl", "survey@example.nl", "keys@example.nl", "done@example.nl")


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def work(live_server: LiveServer) -> dict[str, int]:
    """A closed action matched to the live server's installer, its order accepted; one household
    quoted, one with a survey planned, one quoted for the keyboard test, one installed."""
    app = live_server.app
    with app.test_request_context():
        staff = db.session.scalars(select(User).where(User.email == STAFF_EMAIL)).one()
        fitter = db.session.scalars(select(User).where(User.email == INSTALLER_EMAIL)).one()
        installer = db.session.get(Installer, fitter.installer_id)
        assert installer is not None
        act = factories.action(staff.organisation, slug="dakisolatie-lunetten", pc4s="3521")
        registrations = [
            factories.confirmed_registration(
                act, postcode="3521 AB", street="Vondellaan", number=n, email=email
            )
            for n, email in enumerate(RESIDENTS, start=40)
        ]
        for registration in registrations:
            registration.user.phone = "06 12345678"
        db.session.commit()
        actions.close_action(staff, act)
        run = services.start_run(staff, act, RunTrigger.STAFF, use_registry_prices=True)
        services.compute_run(run.id)
        [order] = services.approve_run(staff, run)
        services.accept_order(fitter, order)
        lines = {r.user.email: services.current_lines(r)[0] for r in registrations}
        valid = (utcnow() + timedelta(days=14)).astimezone(AMSTERDAM).date()
        items = [
            QuoteItemInput("Dakisolatie", 40, 4200, 9),
            QuoteItemInput("Steiger en afvoer", 1, 35000, 21),
        ]
        quoted = fieldwork.send_quote(fitter, lines["quote@example.nl"], items, valid)
        keyboard = fieldwork.send_quote(fitter, lines["keys@example.nl"], items, valid)
        starts = (
            (utcnow() + timedelta(days=3))
            .astimezone(AMSTERDAM)
            .replace(hour=10, minute=0, second=0, microsecond=0)
        )
        fieldwork.plan_survey(fitter, lines["survey@example.nl"], starts)
        installed = fieldwork.send_quote(fitter, lines["done@example.nl"], items, valid)
        fieldwork.accept_quote(lines["done@example.nl"].registration.user, installed)
        fieldwork.mark_installed(fitter, installed.line, starts.date() - timedelta(days=3))
        tender = tenders.open_round(
            staff, act, [installer.id], deadline=utcnow() + timedelta(days=2), note="Start in mei."
        )
        from coop.core import jobs

        jobs.dispatcher().run_pending()
        return {
            "order": order.id,
            "quoted_line": quoted.line.id,
            "quote": quoted.id,
            "keyboard_quote": keyboard.id,
            "survey_line": lines["survey@example.nl"].id,
            "installed_line": installed.line.id,
            "installed_registration": installed.line.registration_id,
            "quote_registration": quoted.line.registration_id,
            "invitation": tender.invitations[0].id,
        }


def session_cookie(live_server: LiveServer, email: str, language: str) -> dict[str, Any]:
    """A logged-in session reading ``language``, as the site's own cookie: the login pages are
    tested elsewhere, and a password check or login link per test would only cost time."""
    app = live_server.app
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        user_id = user.id
    client = app.test_client()
    sign_in(client, user_id, lang=language)
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    return {"name": cookie.key, "value": cookie.value, "url": live_server.url}


def logged_in(
    browser: Browser, live_server: LiveServer, email: str, language: str, **options: Any
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(locale="nl-NL", base_url=live_server.url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies([session_cookie(live_server, email, language)])  # type: ignore[list-item]
    return context, context.new_page()


@pytest.fixture
def phone(
    browser: Browser, live_server: LiveServer, work: dict[str, int], language: str
) -> Iterator[Page]:
    """The installer on a phone: small screen, touch, reading the test's language."""
    context, page = logged_in(
        browser,
        live_server,
        INSTALLER_EMAIL,
        language,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    context.close()


def resident_page(
    browser: Browser, live_server: LiveServer, email: str, path: str, language: str
) -> tuple[BrowserContext, Page]:
    context, page = logged_in(browser, live_server, email, language, viewport=PHONE)
    goto(page, path)
    assert page.locator("html").get_attribute("lang") == language
    return context, page


def fits_the_phone(page: Page) -> None:
    """No sideways scrolling, and every button and form control is big enough to tap."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
    small = page.evaluate(
        """() => [...document.querySelectorAll('main .button, main button, main input:not([type=hidden]), main select, main textarea')]
             .filter(el => el.offsetParent !== null)
             .map(el => [el.id || el.textContent.trim().slice(0, 40), el.getBoundingClientRect().height])
             .filter(([, h]) => h < 44)"""
    )
    assert not small, f"too small to tap (height < 44px): {small}"


def expect_error_at(page: Page, field_id: str) -> None:
    expect(page).to_have_title(re.compile(r"^(Fout|Error): "))
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator(f"#{field_id}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field_id}-error")).to_be_visible()


# --- the installer, on a phone -------------------------------------------------------------------


def test_order_page_on_a_phone(phone: Page, work: dict[str, int], language: str) -> None:
    goto(phone, f"/installer/orders/{work['order']}")
    expect(phone.locator("main ol.households > li")).to_have_count(4)
    # The resident's phone number is a link that calls.
    expect(phone.locator(f"#line-{work['quoted_line']} a[href^='tel:']")).to_have_count(1)
    fits_the_phone(phone)
    assert_accessible(phone)


def test_quote_form_on_a_phone_with_totals_and_errors(
    phone: Page, work: dict[str, int], language: str
) -> None:
    goto(phone, f"/installer/lines/{work['survey_line']}/quote")
    expect(phone.locator("#quote-total")).to_be_visible()  # the first row, filled in from the order
    fits_the_phone(phone)
    assert_accessible(phone, "the quote form")
    phone.locator("#description_1").fill("Steiger")
    phone.locator("#quantity_1").fill("1")
    phone.locator("#price_1").fill("-250")
    with phone.expect_navigation():
        phone.locator("button[name=send]").click()
    expect_error_at(phone, "price_1")
    fits_the_phone(phone)
    assert_accessible(phone, "the quote form with an error")


def test_the_other_portal_pages(phone: Page, work: dict[str, int], language: str) -> None:
    pages = {
        "/installer": "main #work-title",
        "/installer/orders": "main .card-list",
        f"/installer/lines/{work['survey_line']}/survey": "#day",
        f"/installer/lines/{work['installed_line']}/installation": "main .notice",
        f"/installer/lines/{work['survey_line']}/installed": "main .notice",
        "/installer/calendar": "main form",
        f"/installer/tenders/{work['invitation']}": "main fieldset.bid-measure",
    }
    for path, sign in pages.items():
        goto(phone, path)
        expect(phone.locator(sign).first).to_be_visible()
        fits_the_phone(phone)
        assert_accessible(phone, path)
    # A survey in the past: the refusal at its field.
    goto(phone, f"/installer/lines/{work['survey_line']}/survey")
    yesterday = (utcnow() - timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()
    phone.locator("#day").fill(yesterday)
    phone.locator("#at").fill("10:00")
    with phone.expect_navigation():
        phone.locator("main form button[type=submit]").click()
    expect_error_at(phone, "day")
    assert_accessible(phone, "the survey form with an error")


# --- the resident -------------------------------------------------------------------------------


def test_resident_pages(
    browser: Browser, live_server: LiveServer, work: dict[str, int], language: str
) -> None:
    context, page = resident_page(
        browser, live_server, "quote@example.nl", f"/my/quotes/{work['quote']}", language
    )
    try:
        expect(page.locator("#quote-items tbody tr")).to_have_count(2)
        expect(page.locator("#quote-total")).to_be_visible()
        fits_the_phone(page)
        assert_accessible(page, "the quote page")
        goto(page, f"/my/registrations/{work['quote_registration']}")
        expect(page.locator("#work-title")).to_be_visible()
        assert_accessible(page, "the registration page with the work")
        goto(page, f"/my/quotes/{work['quote']}/decline")
        expect(page.locator("#reason")).to_be_visible()
        assert_accessible(page, "declining the quote")
    finally:
        context.close()
    context, page = resident_page(
        browser,
        live_server,
        "survey@example.nl",
        f"/my/lines/{work['survey_line']}/survey-change",
        language,
    )
    try:
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        expect_error_at(page, "message")
        assert_accessible(page, "asking for another date, with an error")
    finally:
        context.close()
    context, page = resident_page(
        browser,
        live_server,
        "done@example.nl",
        f"/my/lines/{work['installed_line']}/confirm",
        language,
    )
    try:
        expect(page.locator("#rating-0")).to_be_visible()
        assert_accessible(page, "confirming the work")
    finally:
        context.close()


def test_the_resident_accepts_a_quote_with_the_keyboard_only(
    browser: Browser, live_server: LiveServer, work: dict[str, int]
) -> None:
    path = f"/my/quotes/{work['keyboard_quote']}"
    context, page = resident_page(browser, live_server, "keys@example.nl", path, "nl")
    try:
        # From the top: the skip link, into main, then along the page to the accept button.
        page.keyboard.press("Tab")
        assert "skip-link" in focused(page)["classes"]
        page.keyboard.press("Enter")
        tab_until(page, "main form button[type=submit]")
        assert "Accepteer" in page.evaluate("() => document.activeElement.textContent")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == live_server.url + path
        expect(page.locator("#quote-accepted")).to_be_visible()
        expect(page.locator(".notice-success[role=status]").first).to_be_visible()
        # The decision is stored, and the installer is told.
        with live_server.app.app_context():
            quote = fieldwork.get_quote(work["keyboard_quote"])
            assert quote is not None and quote.status is QuoteStatus.ACCEPTED
            assert quote.line.status is LineStatus.ACCEPTED
        tab(page)
        assert_focus_visible(page)
    finally:
        context.close()


def test_the_quote_form_without_javascript(
    browser: Browser, live_server: LiveServer, work: dict[str, int]
) -> None:
    """The portal needs no script: the quote form's "add a row" works by the server."""
    context, page = logged_in(
        browser, live_server, INSTALLER_EMAIL, "en", java_script_enabled=False, viewport=PHONE
    )
    try:
        goto(page, f"/installer/lines/{work['survey_line']}/quote")
        expect(page.locator("fieldset.quote-row")).to_have_count(3)
        with page.expect_navigation():
            page.locator("button[name=add_row]").click()
        expect(page.locator("fieldset.quote-row")).to_have_count(4)
        expect(page.locator("#description_0")).to_have_value(re.compile("Roof|Dak"))
    finally:
        context.close()
