"""axe-core (WCAG 2.1 A and AA) on the deposit pages, in Dutch and English: the resident's
deposit in each state (to transfer, to pay through Stripe, waiting for confirmation after
Checkout, paid), the deposits on the registration and the withdraw page that says what happens
to the money; the desk's overview, deposit form (with errors) and one deposit (with an error).
And staff marking a bank transfer received with the keyboard only.

The live server runs without Stripe keys (offline mode); the Stripe states are rendered from
records, so no page here talks to Stripe.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.extensions import db
from coop.payments import services
from coop.payments.models import Payment, PaymentMode
from tests.browser.conftest import STAFF_EMAIL, LiveServer, assert_accessible, goto, visit
from tests.browser.test_desk_pages import _sessions, expect_error_at, heading, submit
from tests.browser.test_keyboard import tab_until
from tests.payments.conftest import accept, quote_for, world_of
from tests.payments.stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandIn

pytestmark = pytest.mark.browser

RESIDENTS = {
    "transfer": "bram@example.nl",
    "stripe": "chantal@example.nl",
    "paid": "daan@example.nl",
    "keyboard": "emma@example.nl",
}


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def deposits(live_server: LiveServer) -> dict[str, int]:
    """A closed action of the staff member's desk asking € 250; four residents who accepted a
    quote: one to transfer, one to pay through Stripe, one paid, one for the keyboard test."""
    with live_server.app.test_request_context():
        staff = db.session.scalars(select(User).where(User.email == STAFF_EMAIL)).one()
        world = world_of(staff=staff, slug="aanbetaling-lunetten")
        ids: dict[str, int] = {"action": world.action.id}
        for name, email in RESIDENTS.items():
            quote = quote_for(world, email=email, name=name.title())
            ids[f"{name}_quote"] = quote.id
            payment = accept(quote)
            ids[name] = payment.id
            ids[f"{name}_registration"] = payment.registration_id or 0
        stripe = db.session.get(Payment, ids["stripe"])
        assert stripe is not None
        stripe.mode = PaymentMode.STRIPE  # as if created with Stripe keys
        db.session.commit()
        paid = db.session.get(Payment, ids["paid"])
        assert paid is not None
        services.mark_received(staff, paid, 25000)
        return ids


@pytest.fixture(scope="module")
def staff_sessions(browser: Browser, live_server: LiveServer) -> dict[str, Any]:
    return _sessions(browser, live_server, STAFF_EMAIL)


def as_resident(page: Page, live_server: LiveServer, email: str, path: str, language: str) -> None:
    goto(page, live_server.login_path(path, email=email))
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    visit(page, path, language)


def test_deposit_to_transfer_and_the_registration(
    page: Page, live_server: LiveServer, deposits: dict[str, int], language: str
) -> None:
    payment_id = deposits["transfer"]
    as_resident(page, live_server, RESIDENTS["transfer"], f"/my/payments/{payment_id}", language)
    expect(page.locator("#deposit-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("#reference")).to_contain_text("COOP-")
    expect(page.locator("#iban")).to_have_text("NL91 ABNA 0417 1643 00")
    assert_accessible(page, "the deposit to transfer")
    visit(page, f"/my/quotes/{deposits['transfer_quote']}", language)
    expect(page.locator("#quote-deposit")).to_have_attribute("data-status", "pending")
    assert_accessible(page, "the accepted quote with its deposit")
    visit(page, f"/my/registrations/{deposits['transfer_registration']}", language)
    expect(page.locator(f'#deposits a[href="/my/payments/{payment_id}"]')).to_be_visible()
    assert_accessible(page, "the registration with its deposit")
    visit(page, f"/my/registrations/{deposits['transfer_registration']}/withdraw", language)
    expect(page.locator(f"#cancel-{payment_id}")).to_be_visible()
    assert_accessible(page, "withdrawing, with the deposit no longer due")


def test_deposit_through_stripe_before_and_after_checkout(
    page: Page, live_server: LiveServer, deposits: dict[str, int], language: str
) -> None:
    path = f"/my/payments/{deposits['stripe']}"
    as_resident(page, live_server, RESIDENTS["stripe"], path, language)
    expect(page.locator("#pay")).to_be_visible()
    assert_accessible(page, "the deposit to pay with iDEAL or card")
    visit(page, f"{path}?from=checkout", language)
    expect(page.locator("#waiting")).to_be_visible()
    expect(page.locator("#pay")).to_have_count(0)  # no second payment while we wait
    expect(page.locator("#not-paid-after-all")).to_be_visible()
    assert_accessible(page, "back from Checkout, waiting for confirmation")
    visit(page, f"{path}?from=cancelled", language)
    expect(page.locator("#not-finished")).to_be_visible()
    expect(page.locator("#pay")).to_be_visible()


def test_deposit_paid_and_withdrawing_gives_it_back(
    page: Page, live_server: LiveServer, deposits: dict[str, int], language: str
) -> None:
    path = f"/my/payments/{deposits['paid']}"
    as_resident(page, live_server, RESIDENTS["paid"], path, language)
    expect(page.locator("#deposit-status")).to_have_attribute("data-status", "paid")
    assert_accessible(page, "the paid deposit")
    visit(page, f"/my/registrations/{deposits['paid_registration']}/withdraw", language)
    expect(page.locator(f"#refund-{deposits['paid']}")).to_be_visible()
    assert_accessible(page, "withdrawing, with the deposit refunded")


@pytest.fixture
def staff_page(
    browser: Browser, live_server: LiveServer, staff_sessions: dict[str, Any], language: str
) -> Any:
    context = browser.new_context(
        locale="nl-NL", base_url=live_server.url, storage_state=staff_sessions[language]
    )
    yield context.new_page()
    context.close()


def test_desk_overview_and_deposit_form_with_errors(
    staff_page: Page, deposits: dict[str, int], language: str
) -> None:
    page = staff_page
    visit(page, f"/desk/actions/{deposits['action']}/payments", language)
    expect(page.locator("#figure-paid td").first).to_have_text("1")
    expect(page.locator(f"#payments #payment-{deposits['paid']}")).to_be_visible()
    assert_accessible(page, "the deposits of an action")
    visit(page, f"/desk/actions/{deposits['action']}/payments/settings", language)
    expect(page.locator("#kind-1")).to_be_checked()  # a fixed amount
    assert_accessible(page, "the deposit form")
    page.locator("#kind-2").check()
    page.locator("#percent").fill("75")
    page.locator("#iban").fill("NL00 1234")
    submit(page)
    expect_error_at(page, "percent", "iban")
    assert_accessible(page, "the deposit form with errors")


def test_desk_deposit_with_an_error_and_a_paid_one(
    staff_page: Page, deposits: dict[str, int], language: str
) -> None:
    page = staff_page
    visit(page, f"/desk/payments/{deposits['transfer']}", language)
    heading(
        page,
        {"nl": "Aanbetaling", "en": "Deposit"}[language]
        + " "
        + services.reference_for(deposits["transfer"]),
    )
    page.locator("#amount").fill("twee")
    submit(page)
    expect_error_at(page, "amount")
    assert_accessible(page, "a deposit with an amount that is no amount")
    visit(page, f"/desk/payments/{deposits['paid']}", language)
    expect(page.locator("#status")).to_have_attribute("data-status", "paid")
    expect(page.locator("#history tbody tr")).to_have_count(2)
    assert_accessible(page, "a paid deposit with its refund button and history")


def test_marking_a_transfer_received_with_the_keyboard(
    browser: Browser,
    live_server: LiveServer,
    staff_sessions: dict[str, Any],
    deposits: dict[str, int],
) -> None:
    context = browser.new_context(
        locale="nl-NL", base_url=live_server.url, storage_state=staff_sessions["nl"]
    )
    page = context.new_page()
    try:
        goto(page, f"/desk/payments/{deposits['keyboard']}")
        tab_until(page, "#amount")
        page.keyboard.type("250,00")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("#status")).to_have_attribute("data-status", "paid")
    finally:
        context.close()


def test_pressing_pay_reaches_the_checkout_page(
    page: Page, live_server: LiveServer, deposits: dict[str, int]
) -> None:
    """Issue 12, defect 10: the Content-Security-Policy's form-action also governs the redirect
    after the pay form's POST in Chromium; only a real browser pressing "pay" shows whether the
    resident reaches Stripe Checkout (here the stand-in's page, on another origin)."""
    app = live_server.app
    standin = StripeStandIn().start().serve_checkout()
    settings = {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": standin.url,
        "STRIPE_CHECKOUT_ORIGIN": standin.url,
        "STRIPE_TIMEOUT": 5,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    app.extensions.pop("coop_stripe", None)
    try:
        path = f"/my/payments/{deposits['stripe']}"
        as_resident(page, live_server, RESIDENTS["stripe"], path, "en")
        with page.expect_navigation(url=f"{standin.url}/c/pay/**"):
            page.locator("#pay").click()
        expect(page.locator("#checkout")).to_contain_text("Checkout cs_")
        assert len(standin.created_sessions()) == 1
    finally:
        app.config.update(saved)
        app.extensions.pop("coop_stripe", None)
        standin.stop()
