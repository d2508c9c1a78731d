"""axe-core (WCAG 2.1 A and AA) on every page of the energy desk's workspace, in Dutch and
English, error states included: actions with their measures, price tiers, neighbourhoods and
email wording; installers; registrations; dashboards; updates to residents; the audit log; the
team, security and invitation pages; the login code step; and the residents' unsubscribe page.
And the staff's main journey with the keyboard only.

As in test_pages.py, each test first brings the page into the state it names and checks that it
got there (status, heading, the error shown at its field), then runs axe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.desk import updates
from coop.extensions import db
from tests import factories
from tests.browser.conftest import (
    ADMIN_EMAIL,
    NEIGHBOURHOOD_NAME,
    RESIDENT_EMAIL,
    STAFF_EMAIL,
    TIMEOUT_MS,
    TOTP_EMAIL,
    LiveServer,
    assert_accessible,
    choose_language,
    goto,
    log_in_with_password,
    seed_desk,
    visit,
)
from tests.browser.test_keyboard import assert_focus_visible, press_until_value, tab_until

pytestmark = pytest.mark.browser


@pytest.fixture(params=["nl", "en"])
def language(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def desk(live_server: LiveServer) -> LiveServer:
    """The live server with the desk's data in it (see ``seed_desk``)."""
    seed_desk(live_server)
    return live_server


def _sessions(browser: Browser, live_server: LiveServer, email: str | None) -> dict[str, Any]:
    """Cookies per language: logged in as ``email`` (or not) with the site's language chosen by
    its own link once, so each test starts there without a password hash and extra page loads."""
    context = browser.new_context(locale="nl-NL", base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    if email:
        log_in_with_password(page, email, "/desk/")
    else:
        goto(page, "/")
    states: dict[str, Any] = {}
    for language in ("nl", "en"):
        choose_language(page, language)
        states[language] = context.storage_state()
    context.close()
    return states


@pytest.fixture(scope="module")
def admin_sessions(browser: Browser, desk: LiveServer) -> dict[str, Any]:
    return _sessions(browser, desk, ADMIN_EMAIL)


@pytest.fixture(scope="module")
def anonymous_sessions(browser: Browser, desk: LiveServer) -> dict[str, Any]:
    return _sessions(browser, desk, None)


@pytest.fixture
def browser_context_options(admin_sessions: dict[str, Any], language: str) -> dict[str, Any]:
    return {"storage_state": admin_sessions[language]}


@pytest.fixture
def anonymous(
    browser: Browser, live_server: LiveServer, anonymous_sessions: dict[str, Any], language: str
) -> Iterator[Page]:
    """A page in a browser nobody has logged in with (reading the test's language)."""
    context = browser.new_context(
        locale="nl-NL", base_url=live_server.url, storage_state=anonymous_sessions[language]
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def submit(page: Page, button: str = "main form[method=post] button[type=submit]") -> None:
    """Press the form's submit button and wait for the answer page."""
    with page.expect_navigation():
        page.locator(button).first.click()


def expect_error_at(page: Page, *field_ids: str) -> None:
    """The error summary is shown and each field says it is wrong, with its message tied to it."""
    # The title says so first: it is what a screen reader announces on the new page.
    expect(page).to_have_title(re.compile(r"^(Fout|Error): "))
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    for field_id in field_ids:
        field = page.locator(f"#{field_id}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", re.compile(rf"\b{field_id}-error\b"))
        expect(page.locator(f"#{field_id}-error")).to_be_visible()
        expect(summary.locator(f'a[href="#{field_id}"]')).to_have_count(1)


def heading(page: Page, text: str | re.Pattern[str]) -> None:
    expect(page.locator("main h1")).to_have_text(text)


def action_url(live_server: LiveServer, rest: str = "") -> str:
    return f"/desk/actions/{live_server.desk['action']}{rest}"


# --- desk home and actions ---------------------------------------------------------------


def test_desk_home(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/", language)
    heading(page, "Energieloket Utrecht")
    # The admin's menu has the team and the audit log.
    expect(page.locator('main nav a[href="/desk/team"]')).to_have_count(1)
    expect(page.locator('main nav a[href="/desk/audit"]')).to_have_count(1)
    expect(page.locator("main table.table")).to_have_count(1)
    assert_accessible(page)


def test_actions_list(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/actions/", language)
    expect(page.locator(f"#actions #action-{live_server.desk['action']}")).to_be_visible()
    assert_accessible(page)


def test_action_create_form_empty_and_with_errors(page: Page, language: str) -> None:
    visit(page, "/desk/actions/new", language)
    heading(page, {"nl": "Nieuwe actie", "en": "New action"}[language])
    expect(page.locator("#title_nl")).to_be_visible()
    expect(page.locator("#error-summary")).to_have_count(0)
    assert_accessible(page, "the empty form for a new action")
    submit(page)
    expect_error_at(page, "title_nl", "summary_nl")
    assert_accessible(page, "the form for a new action with errors")


def test_action_detail(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server), language)
    expect(page.locator("#status")).to_have_attribute("data-status", "open")
    expect(page.locator(f"#measures #offer-{live_server.desk['roof_offer']}")).to_be_visible()
    assert_accessible(page)


def test_action_edit(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server, "/edit"), language)
    expect(page.locator("#title_nl")).to_have_value("Samen isoleren")
    assert_accessible(page)


def test_measure_tiers_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    visit(
        page, action_url(live_server, f"/measures/{live_server.desk['roof_offer']}/edit"), language
    )
    # The seeded tiers start at 2, 5 and 20 homes: a second tier below the first is refused.
    expect(page.locator("#tiers-0-min_participants")).to_have_value("2")
    page.locator("#tiers-1-min_participants").fill("1")
    submit(page)
    expect_error_at(page, "tiers-1-min_participants")
    assert_accessible(page)


def test_neighbourhoods_list(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/actions/neighbourhoods", language)
    row = page.locator(f"#neighbourhood-{live_server.desk['neighbourhood']}")
    expect(row).to_contain_text(NEIGHBOURHOOD_NAME)
    assert_accessible(page)


def test_neighbourhood_form(page: Page, live_server: LiveServer, language: str) -> None:
    neighbourhood = live_server.desk["neighbourhood"]
    visit(page, f"/desk/actions/neighbourhoods/{neighbourhood}/edit", language)
    expect(page.locator("#name")).to_have_value(NEIGHBOURHOOD_NAME)
    assert_accessible(page)


def test_neighbourhood_form_with_errors(page: Page, language: str) -> None:
    visit(page, "/desk/actions/neighbourhoods/new", language)
    page.locator("#municipality").fill("")
    submit(page)
    expect_error_at(page, "name", "municipality")
    assert_accessible(page)


def test_email_wording_list(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server, "/emails"), language)
    expect(page.locator("#emails #email-confirm_registration")).to_be_visible()
    assert_accessible(page)


def test_email_wording_refused(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server, "/emails/confirm_registration/nl"), language)
    # Without {{ link }} the resident could not confirm: the text is refused, not saved.
    page.locator("#body").fill("Beste {{ name }},\n\nBevestig uw aanmelding.")
    submit(page, 'main form button[value="save"]')
    expect_error_at(page, "body")
    expect(page.locator("#body-error")).to_contain_text("{{ link }}")
    assert_accessible(page)


def test_email_wording_edit_preview(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server, "/emails/confirm_registration/en"), language)
    submit(page, 'main form button[value="preview"]')
    expect(page.locator("#preview-body")).to_contain_text(live_server.url)
    expect(page.locator("#error-summary")).to_have_count(0)
    assert_accessible(page)


def test_email_preview(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, action_url(live_server, "/emails/confirm_registration/preview"), language)
    expect(page.locator("main section.panel")).to_have_count(2)
    assert_accessible(page)


# --- installers --------------------------------------------------------------------------


def test_installers_list(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/installers/", language)
    expect(page.locator("#installers tbody tr")).to_have_count(1)
    expect(page.locator("#installers")).to_contain_text("Dakwerk Utrecht BV")
    assert_accessible(page)


def test_installer_create_with_errors(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/installers/new", language)
    roof = live_server.desk["roof_measure"]
    page.locator("#kvk_number").fill("123")
    page.locator(f"#offer_{roof}").check()  # ticked without a price
    submit(page)
    expect_error_at(page, "company_name", "kvk_number", f"price_{roof}")
    assert_accessible(page)


def test_installer_detail(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/installers/{live_server.desk['installer']}", language)
    heading(page, "Dakwerk Utrecht BV")
    expect(page.locator("#offers tbody tr")).to_have_count(1)
    expect(page.locator("#installer-users")).to_contain_text("Ilse Installer")
    assert_accessible(page)


def test_installer_invite_form(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/installers/{live_server.desk['installer']}/invite", language)
    expect(page.locator("#email")).to_be_visible()
    submit(page)
    expect_error_at(page, "name", "email")
    assert_accessible(page)


# --- registrations -----------------------------------------------------------------------


def test_registrations_filtered(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/registrations/", language)
    page.locator("#q").fill("Jansen")
    page.locator("#status").select_option("confirmed")
    page.locator("#ownership").select_option("owner")
    with page.expect_navigation():
        page.locator("main form[role=search] button[type=submit]").click()
    assert "status=confirmed" in page.url and "q=Jansen" in page.url, page.url
    expect(page.locator("#status")).to_have_value("confirmed")
    rows = page.locator("#registrations tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute(
        "data-registration-id", str(live_server.resident_registration_id)
    )
    assert_accessible(page)


def test_registration_detail_with_notes(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/registrations/{live_server.resident_registration_id}", language)
    heading(page, "Jan Jansen")
    expect(page.locator("#notes li")).to_have_count(1)
    expect(page.locator("#notes")).to_contain_text("Belt liever na 18:00 uur.")
    expect(page.locator("#history li").first).to_be_visible()
    assert_accessible(page)


def test_registration_note_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/registrations/{live_server.resident_registration_id}", language)
    submit(page, 'main form[action$="/notes"] button[type=submit]')
    expect_error_at(page, "body")
    assert_accessible(page)


def test_on_behalf_form_with_errors(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/registrations/new/{live_server.desk['action']}", language)
    submit(page)
    expect_error_at(page, "name", "email", "postcode", "consent")
    assert_accessible(page)


# --- dashboards --------------------------------------------------------------------------


def expect_charts(page: Page, registrations: int) -> None:
    """Each chart is a labelled picture with its figures in a table beside it."""
    charts = page.locator("main svg[role=img]")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 5, charts.count()
    assert page.locator("main .chart-data table").count() == charts.count()
    expect(page.locator("#figure-total")).to_have_text(str(registrations))


def test_action_dashboard(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/dashboard/actions/{live_server.desk['action']}", language)
    expect_charts(page, registrations=2)
    expect(page.locator("#chart-tiers")).to_be_visible()
    # Three weeks of sign-ups per day: a table long enough to scroll in its own box.
    expect(page.locator("#chart-over-time .chart-data-long[tabindex='0']")).to_be_visible()
    assert_accessible(page)


def test_neighbourhood_dashboard(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/dashboard/neighbourhoods/{live_server.desk['neighbourhood']}", language)
    heading(page, re.compile(NEIGHBOURHOOD_NAME))
    expect_charts(page, registrations=1)  # only the 3521 postcode area
    assert_accessible(page)


# --- updates to residents ----------------------------------------------------------------


def test_updates_list(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/updates", language)
    expect(page.locator("#updates")).to_contain_text("Informatieavond dakisolatie")
    assert_accessible(page)


def test_compose_update_with_errors(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, "/desk/updates/new", language)
    page.locator("#pc4").fill("35")
    page.locator("#subject_en").fill("Only a subject")
    submit(page)
    expect_error_at(page, "pc4", "subject_nl", "body_nl", "body_en")
    assert_accessible(page)


def test_update_with_delivery_log(page: Page, live_server: LiveServer, language: str) -> None:
    visit(page, f"/desk/updates/{live_server.desk['update']}", language)
    heading(page, "Informatieavond dakisolatie")
    expect(page.locator("#count-sent")).to_have_text("1")
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    expect(page.locator("#deliveries")).to_contain_text(RESIDENT_EMAIL)
    assert_accessible(page)


def test_draft_update_send_form_with_errors(
    page: Page, live_server: LiveServer, language: str
) -> None:
    visit(page, f"/desk/updates/{live_server.desk['draft_update']}", language)
    heading(page, "Steigers in de Lange Nieuwstraat")
    # "At a set time" without saying when: refused, and nothing is sent.
    page.locator("#when-1").check()
    submit(page, 'main form[action$="/send"] button[type=submit]')
    expect_error_at(page, "send_date", "send_time")
    expect(page.locator("#deliveries")).to_have_count(0)
    assert_accessible(page)


def test_audit_log(page: Page, language: str) -> None:
    visit(page, "/desk/audit", language)
    heading(page, {"nl": "Logboek", "en": "Audit log"}[language])
    # Prices changed, a note, an update composed and sent, a colleague invited...
    assert page.locator("#audit tbody tr").count() >= 5
    expect(page.locator("#audit .changes").first).to_be_visible()
    assert_accessible(page)


# --- VAT rates ---------------------------------------------------------------------------


def test_vat_rates(page: Page, language: str) -> None:
    visit(page, "/desk/vat-rates", language)
    heading(page, {"nl": "Btw-tarieven", "en": "VAT rates"}[language])
    expect(page.locator("#vat-rates tbody tr")).to_have_count(3)
    expect(page.locator('main a[href="/desk/vat-rates/new"]')).to_have_count(1)
    assert_accessible(page)


def test_vat_rate_add_with_errors(page: Page, language: str) -> None:
    visit(page, "/desk/vat-rates/new", language)
    page.fill("#percent", "150")
    submit(page)
    expect_error_at(page, "percent", "name_nl", "name_en", "source", "valid_from")
    assert_accessible(page)


def test_vat_rate_end_with_error(page: Page, live_server: LiveServer, language: str) -> None:
    from coop.orders.models import VatRate

    with live_server.app.app_context():
        staff = db.session.scalars(select(User).where(User.email == STAFF_EMAIL)).one()
        rate_id = db.session.scalars(
            select(VatRate.id).where(
                VatRate.percent == 21, VatRate.organisation_id == staff.organisation_id
            )
        ).one()
    visit(page, f"/desk/vat-rates/{rate_id}/end", language)
    page.fill("#last_day", "2020-01-01")  # in the past: the service refuses it at the field
    submit(page)
    expect_error_at(page, "last_day")
    assert_accessible(page)


def test_vat_rate_typed_wrongly_is_withdrawn(page: Page, language: str) -> None:
    """A rate added with a typing error, before its first day: its page offers to withdraw it,
    and the list is as before."""
    from datetime import timedelta

    from coop.core.time import utcnow
    from coop.core.workdays import local_today

    visit(page, "/desk/vat-rates/new", language)
    page.fill("#percent", "92")
    page.fill("#name_nl", "Verlaagd tarief")
    page.fill("#name_en", "Reduced rate")
    page.fill("#source", "https://www.belastingdienst.nl/")
    page.fill("#valid_from", (local_today(utcnow()) + timedelta(days=7)).isoformat())
    submit(page)
    expect(page.locator("#vat-rates tbody tr")).to_have_count(4)
    typo = page.locator("#vat-rates tbody tr", has_text="92%")
    with page.expect_navigation():
        typo.locator('a[href$="/end"]').click()
    expect(page.locator('main form[action$="/withdraw"] button')).to_be_visible()
    assert_accessible(page, "a rate not yet in force, with its withdraw button")
    submit(page, 'main form[action$="/withdraw"] button')
    expect(page.locator("#vat-rates tbody tr")).to_have_count(3)
    expect(page.locator("#vat-rates tbody tr", has_text="92%")).to_have_count(0)


# --- team, security, invitation, login code ----------------------------------------------


def test_team(page: Page, language: str) -> None:
    visit(page, "/desk/team", language)
    members = page.locator("#team-members tbody tr")
    expect(members.filter(has_text="Noor Nieuw")).to_have_count(1)
    expect(members.filter(has_text=STAFF_EMAIL)).to_have_count(1)
    submit(page, 'main form[action="/desk/team"] button[type=submit]')
    expect_error_at(page, "name", "email")
    assert_accessible(page)


def test_team_deactivate_and_reactivate(page: Page, language: str) -> None:
    visit(page, "/desk/team", language)
    noor = page.locator("#team-members tbody tr").filter(has_text="Noor Nieuw")
    submit(page, f'#{noor.get_attribute("id")} form[action$="/deactivate"] button')
    noor = page.locator("#team-members tbody tr").filter(has_text="Noor Nieuw")
    expect(noor.locator('form[action$="/reactivate"] button')).to_be_visible()
    expect(page.locator("main .notice").first).to_be_visible()
    assert_accessible(page, "the team with a deactivated colleague")
    submit(page, f'#{noor.get_attribute("id")} form[action$="/reactivate"] button')
    noor = page.locator("#team-members tbody tr").filter(has_text="Noor Nieuw")
    expect(noor.locator('form[action$="/deactivate"] button')).to_be_visible()


def test_change_password_with_errors(page: Page, language: str) -> None:
    visit(page, "/account/security", language)
    with page.expect_navigation():
        page.locator("#change-password").click()
    heading(page, {"nl": "Wijzig je wachtwoord", "en": "Change your password"}[language])
    assert_accessible(page, "the password form")
    page.locator("#current").fill("not my password")
    page.locator("#password").fill("Welkom123456")
    page.locator("#confirm").fill("Welkom123456")
    submit(page)
    expect_error_at(page, "current")
    assert_accessible(page, "the password form with a wrong current password")
    page.locator("#current").fill(factories.PASSWORD)
    page.locator("#password").fill("Welkom123456")
    page.locator("#confirm").fill("Welkom123456")
    submit(page)
    expect_error_at(page, "password")
    assert_accessible(page, "the password form with a common password")


def test_security_totp_setup(page: Page, language: str) -> None:
    visit(page, "/account/security", language)
    if page.locator("#totp-secret").count() == 0:  # the other language's run started it
        submit(page, 'main form[action$="/security/setup"] button')
    expect(page.locator("#totp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{16,}$"))
    expect(page.locator("#totp-uri")).to_contain_text("otpauth://totp/")
    page.locator("#code").fill("12")
    submit(page, 'main form[action$="/security/confirm"] button')
    expect_error_at(page, "code")
    assert_accessible(page)


def invitation_path(page: Page, live_server: LiveServer) -> str:
    """The link in the invitation email, as the development mailbox shows it."""
    goto(page, "/dev/mailbox")
    link = page.locator('main a[href*="/invite/"]')
    expect(link).to_have_count(1)
    href = link.get_attribute("href")
    assert href and href.startswith(live_server.url + "/invite/"), href
    return href.removeprefix(live_server.url)


def test_accept_invitation_with_error(
    anonymous: Page, live_server: LiveServer, language: str
) -> None:
    page = anonymous
    visit(page, invitation_path(page, live_server), language)
    heading(page, {"nl": "Kies je wachtwoord", "en": "Choose your password"}[language])
    expect(page.locator("main")).to_contain_text("Noor Nieuw")
    page.locator("#password").fill("te kort")
    page.locator("#confirm").fill("te kort")
    submit(page)
    expect_error_at(page, "password")
    assert_accessible(page)


def test_login_code_step(anonymous: Page, language: str) -> None:
    page = anonymous
    visit(page, "/staff/login", language)
    page.locator("#email").fill(TOTP_EMAIL)
    page.locator("#password").fill(factories.PASSWORD)
    submit(page)
    assert page.url.endswith("/staff/login/code"), page.url
    expect(page.locator("#code")).to_be_visible()
    assert_accessible(page, "login code step")
    page.locator("#code").fill("12345")
    submit(page)
    expect_error_at(page, "code")
    assert_accessible(page, "login code step with an error")


def test_unsubscribe_confirm(anonymous: Page, live_server: LiveServer, language: str) -> None:
    with live_server.app.test_request_context():
        user = db.session.scalars(select(User).where(User.email == RESIDENT_EMAIL)).one()
        link = updates.unsubscribe_link(user)
    visit(anonymous, link.removeprefix(live_server.app.config["BASE_URL"]), language)
    expect(anonymous.locator("main form[method=post] button[type=submit]")).to_be_visible()
    expect(anonymous.locator("#unsubscribed")).to_have_count(0)
    assert_accessible(anonymous)


# --- the staff's main journey with the keyboard only -------------------------------------


@pytest.mark.parametrize("language", ["nl"])
def test_staff_journey_with_the_keyboard(
    anonymous: Page, live_server: LiveServer, language: str
) -> None:
    page = anonymous
    goto(page, "/staff/login")
    tab_until(page, "#email")
    page.keyboard.type(STAFF_EMAIL)
    tab_until(page, "#password")
    page.keyboard.type(factories.PASSWORD)
    tab_until(page, "main form[method=post] button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/desk/", page.url

    # From the desk's menu to the registrations.
    tab_until(page, 'main a[href="/desk/registrations/"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/desk/registrations/", page.url

    # Filter on status with the arrow keys, and show.
    tab_until(page, "#status")
    press_until_value(page, "ArrowDown", "confirmed")
    tab_until(page, "main form[role=search] button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "status=confirmed" in page.url, page.url
    expect(page.locator("#status")).to_have_value("confirmed")
    expect(page.locator("#registrations tbody tr")).to_have_count(1)

    # And open the registration.
    detail = f"/desk/registrations/{live_server.resident_registration_id}"
    tab_until(page, f'#registrations a[href="{detail}"]')
    assert_focus_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == live_server.url + detail, page.url
    heading(page, "Jan Jansen")
