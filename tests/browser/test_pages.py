"""axe-core (WCAG 2.1 A and AA) on every page of the resident's journey, in Dutch and English,
error states included, plus the staff and installer start pages; and the sign-up without JavaScript.

Each test first brings the page into the state it names and checks that it got there (status,
URL, the error shown), so an accessible error page can never pass for the page under test.
The language is switched with the site's own link, on the page itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus
from tests.browser.conftest import (
    INSTALLER_EMAIL,
    RESIDENT_ADDRESS,
    STAFF_EMAIL,
    LiveServer,
    assert_accessible,
    choose_language,
    fill_registration,
    goto,
    log_in_resident,
    log_in_with_password,
    visit,
)

pytestmark = pytest.mark.browser


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def register_url(live_server: LiveServer) -> str:
    return f"/actions/{live_server.action_slug}/register"


def detail_url(live_server: LiveServer) -> str:
    return f"/my/registrations/{live_server.resident_registration_id}"


def submit(page: Page) -> None:
    """Press the form's submit button and wait for the answer page."""
    with page.expect_navigation():
        page.locator("main form[method=post] button[type=submit]").click()


def expect_error_summary(page: Page) -> None:
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("li").first).to_be_visible()


# --- public pages ------------------------------------------------------------------------


def test_home(page: Page, language: str) -> None:
    visit(page, "/", language)
    expect(page.locator(".card-list .card")).to_have_count(1)
    assert_accessible(page)


def test_home_with_search_result(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/", language)
    page.locator("#postcode").fill("3524 BA")
    with page.expect_navigation():
        page.locator("#postcode").press("Enter")
    expect(page.locator("#list-title")).to_contain_text("3524")
    expect(
        page.locator(f'.card-list a[href$="/actions/{live_server.action_slug}"]')
    ).to_be_visible()
    assert_accessible(page)


def test_home_with_invalid_postcode(page: Page, language: str) -> None:
    visit(page, "/", language)
    page.locator("#postcode").fill("12")
    with page.expect_navigation():
        page.locator("#postcode").press("Enter")
    expect(page.locator("#postcode-error")).to_be_visible()
    expect(page.locator("#postcode")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_action_page(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/actions/{live_server.action_slug}", language)
    expect(page.locator("table.table")).to_have_count(2)
    # The answers are part of the page too: open the first question.
    page.locator("details.faq summary").first.click()
    expect(page.locator("details.faq").first).to_have_attribute("open", "")
    assert_accessible(page)


def test_registration_form(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, register_url(live_server), language)
    expect(page.locator("#consent")).to_be_visible()
    assert_accessible(page)


def test_registration_form_with_errors(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, register_url(live_server), language)
    submit(page)
    expect_error_summary(page)
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#consent")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_registration_form_with_a_problem_outside_the_fields(
    page: Page, live_server: LiveServer, language: str
) -> None:
    visit(page, register_url(live_server), language)
    fill_registration(page, live_server, house_number=live_server.next_house_number())
    page.locator("#postcode").fill("1234 AB")  # a postcode this action is not for
    submit(page)
    expect_error_summary(page)
    assert page.url == live_server.url + register_url(live_server)
    assert_accessible(page)


def test_already_registered(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, register_url(live_server), language)
    fill_registration(page, live_server, house_number=RESIDENT_ADDRESS["house_number"])
    page.locator("#postcode").fill(RESIDENT_ADDRESS["postcode"])
    submit(page)
    expect(page.locator('main form[action$="/register/send-access"]')).to_be_visible()
    assert_accessible(page)


def test_registered_check_your_email(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, register_url(live_server), language)
    fill_registration(page, live_server, house_number=live_server.next_house_number())
    submit(page)
    assert page.url == f"{live_server.url}/actions/{live_server.action_slug}/registered"
    assert_accessible(page)


def test_login(page: Page, language: str) -> None:
    visit(page, "/login", language)
    expect(page.locator("#email")).to_be_visible()
    assert_accessible(page)


def test_login_with_error(page: Page, language: str) -> None:
    visit(page, "/login", language)
    page.locator("#email").fill("not an email address")
    submit(page)
    expect_error_summary(page)
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_check_email(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/login", language)
    page.locator("#email").fill("someone@example.nl")
    submit(page)
    assert page.url == f"{live_server.url}/login/sent"
    assert_accessible(page)


def test_use_link(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, live_server.login_path(), language)
    expect(page.locator("main form button[type=submit]")).to_be_visible()
    assert_accessible(page)


def test_a_used_link_fails_at_once(page: Page, live_server: LiveServer, language: str) -> None:
    path = live_server.login_path("/my")
    goto(page, path)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert page.url == live_server.url + "/my"
    # The same link again, as from the email a second time: the failure shows at once.
    visit(page, path, language, status=400)
    expect(page.locator("main form")).to_have_count(0)
    expected = "Deze link is al gebruikt" if language == "nl" else "This link has already been used"
    expect(page.locator("main")).to_contain_text(expected)
    expect(page.locator('main a.button[href="/login"]')).to_be_visible()
    assert_accessible(page)


def test_link_problem(page: Page, language: str) -> None:
    # A link that cannot work says so on opening: no button to press first.
    visit(page, "/login/not-a-real-token", language, status=400)
    expect(page.locator("main form")).to_have_count(0)
    expect(page.locator('main a.button[href="/login"]')).to_be_visible()
    assert_accessible(page)


def test_not_found(page: Page, language: str) -> None:
    visit(page, "/no-such-page", language, status=404)
    expect(page.locator("main h1")).to_be_visible()
    assert_accessible(page)


def test_dev_mailbox(page: Page, language: str) -> None:
    visit(page, "/dev/mailbox", language)
    expect(page.locator("main article.card").first).to_be_visible()
    assert_accessible(page)


# --- the resident's own pages ------------------------------------------------------------


def test_my_registrations(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, "/my")
    choose_language(page, language)
    # The household's steps, then each measure's own (this registration has one measure).
    expect(page.locator("main .status-timeline")).to_have_count(2)
    expect(page.locator("main .status-timeline").first).to_be_visible()
    assert_accessible(page)


def test_my_registration_with_timeline(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, detail_url(live_server))
    choose_language(page, language)
    expect(page.locator("main .status-timeline .step-current")).to_have_count(1)
    expect(page.locator("main .status-timeline .step-done")).not_to_have_count(0)
    assert_accessible(page)


def test_edit(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, f"{detail_url(live_server)}/edit")
    choose_language(page, language)
    expect(page.locator("#name")).to_have_value("Jan Jansen")
    assert_accessible(page)


def test_edit_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, f"{detail_url(live_server)}/edit")
    choose_language(page, language)
    page.locator("#build_year").fill("12")
    submit(page)
    expect_error_summary(page)
    expect(page.locator("#build_year")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_withdraw(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, f"{detail_url(live_server)}/withdraw")
    choose_language(page, language)
    expect(page.locator("#reason")).to_be_visible()
    assert_accessible(page)


def test_withdraw_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, f"{detail_url(live_server)}/withdraw")
    choose_language(page, language)
    submit(page)
    expect_error_summary(page)
    expect(page.locator("#reason")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_erase(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, "/my/erase")
    choose_language(page, language)
    expect(page.locator("#confirm")).to_be_visible()
    assert_accessible(page)


def test_erase_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    log_in_resident(page, live_server, "/my/erase")
    choose_language(page, language)
    submit(page)
    expect_error_summary(page)
    expect(page.locator("#confirm")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


# --- staff and installers ----------------------------------------------------------------


def test_staff_login(page: Page, language: str) -> None:
    visit(page, "/staff/login", language)
    expect(page.locator("#password")).to_be_visible()
    assert_accessible(page)


def test_staff_login_with_error(page: Page, language: str) -> None:
    visit(page, "/staff/login", language)
    page.locator("#email").fill(STAFF_EMAIL)
    page.locator("#password").fill("not the password")
    submit(page)
    expect_error_summary(page)
    assert_accessible(page)


def test_desk_home(page: Page, language: str) -> None:
    log_in_with_password(page, STAFF_EMAIL, "/desk/")
    choose_language(page, language)
    expect(page.locator("main table.table")).to_have_count(1)
    assert_accessible(page)


def test_installer_home(page: Page, language: str) -> None:
    log_in_with_password(page, INSTALLER_EMAIL, "/installer")
    choose_language(page, language)
    expect(page.locator("main table.table tbody tr")).to_have_count(1)
    assert_accessible(page)


# --- without JavaScript ------------------------------------------------------------------


@pytest.mark.parametrize("browser_context_options", [{"java_script_enabled": False}])
def test_registration_works_without_javascript(
    page: Page, live_server: LiveServer, browser_context_options: dict[str, Any]
) -> None:
    # First make sure scripts really do not run in this browser.
    page.set_content("<p id=probe>off</p><script>probe.textContent = 'on'</script>")
    expect(page.locator("#probe")).to_have_text("off")
    visit(page, register_url(live_server), "en")
    house_number = live_server.next_house_number()
    fill_registration(page, live_server, house_number=house_number)
    submit(page)
    assert page.url == f"{live_server.url}/actions/{live_server.action_slug}/registered"
    expect(page.locator("main h1")).to_have_text("Almost done: check your email")
    email = f"anna{house_number}@example.nl"
    expect(page.locator("main")).to_contain_text(email)
    with live_server.app.app_context():
        registration = db.session.scalars(
            select(Registration).join(User).where(User.email == email)
        ).one()
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION
        assert registration.household.house_number == int(house_number)
        assert [m.quantity for m in registration.measures] == [45]
