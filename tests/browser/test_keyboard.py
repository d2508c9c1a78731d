"""The resident's sign-up with the keyboard only: skip link, Tab order, typing, Space and arrow
keys, Enter to submit; every stop must show where the focus is. And the way back from errors:
the error summary takes the focus and its links lead to the fields.

axe cannot judge any of this; these tests press the keys a keyboard user presses.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from coop.accounts.models import User
from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus
from tests.browser.conftest import LiveServer, goto

pytestmark = pytest.mark.browser

# The focused element and how it is drawn, as the browser computed it.
FOCUS_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    id: el.id, tag: el.tagName.toLowerCase(), type: el.type || null,
    href: el.getAttribute('href'), classes: el.className,
    checked: el.checked === undefined ? null : el.checked, value: el.value === undefined ? null : el.value,
    focusVisible: el.matches(':focus-visible'),
    outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
    boxShadow: style.boxShadow,
    left: box.left, top: box.top, width: box.width, height: box.height,
    viewportWidth: window.innerWidth, viewportHeight: window.innerHeight,
  };
}"""
# More Tab presses than this between two stops means the target is not reachable in order.
MAX_TABS = 40


def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = page.evaluate(FOCUS_JS)
    return info


def assert_focus_visible(page: Page) -> dict[str, Any]:
    """The focused element is on screen and drawn with a focus ring (outline or shadow)."""
    info = focused(page)
    where = f"{info['tag']}#{info['id']} {info['href'] or ''}"
    assert info["focusVisible"], f"{where} has focus but not :focus-visible"
    assert info["width"] > 0 and info["height"] > 0, f"{where} is focused but not drawn"
    assert 0 <= info["left"] < info["viewportWidth"], f"{where} is focused off screen"
    assert 0 <= info["top"] < info["viewportHeight"], f"{where} is focused off screen"
    ring = (info["outlineStyle"] != "none" and info["outlineWidth"] >= 2) or (
        info["boxShadow"] not in ("", "none")
    )
    assert ring, f"{where} shows no focus indicator: {info}"
    return info


def tab(page: Page) -> dict[str, Any]:
    page.keyboard.press("Tab")
    return assert_focus_visible(page)


def tab_until(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus; every stop on the way must show its focus."""
    for _ in range(MAX_TABS):
        tab(page)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with {MAX_TABS} presses of Tab")


def tab_to_field(page: Page, field_id: str) -> dict[str, Any]:
    """The next Tab stop must be this field: the form is used in the order it reads."""
    info = tab(page)
    assert info["id"] == field_id, f"Tab went to {info['tag']}#{info['id']}, expected #{field_id}"
    return info


def press_until_value(page: Page, key: str, value: str) -> None:
    """Arrow keys in a closed select move through its options, as a keyboard user does."""
    for _ in range(20):
        if focused(page)["value"] == value:
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} did not reach the option {value!r}")


def test_sign_up_with_the_keyboard_only(page: Page, live_server: LiveServer) -> None:
    goto(page, "/")

    # The first Tab stop is the skip link, shown when it has the focus; Enter moves into main.
    info = tab(page)
    assert "skip-link" in info["classes"] and info["href"] == "#main", info
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    # ...and the next stop is the first control in main, not the header's menu.
    assert tab(page)["id"] == "postcode"

    # From the list of actions to the action, and from there to its registration form.
    tab_until(page, f'main a[href="/actions/{live_server.action_slug}"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_until(page, f'main a[href="/actions/{live_server.action_slug}/register"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/actions/{live_server.action_slug}/register"

    tab_until(page, "#name")
    page.keyboard.type("Bram Bakker")
    tab_to_field(page, "email")
    page.keyboard.type("bram@example.nl")
    tab_to_field(page, "phone")
    page.keyboard.type("06 87654321")
    tab_to_field(page, "postcode")
    page.keyboard.type("3524 BA")
    tab_to_field(page, "house_number")
    page.keyboard.type("31")
    tab_to_field(page, "house_number_addition")
    page.keyboard.type("bis")
    tab_to_field(page, "street")
    page.keyboard.type("Hondsrug")
    tab_to_field(page, "city")
    page.keyboard.type("Utrecht")
    tab_to_field(page, "dwelling_type")
    press_until_value(page, "ArrowDown", "corner")
    tab_to_field(page, "build_year")
    page.keyboard.type("1931")

    # The radio group is one Tab stop: Space chooses, the arrow keys move the choice.
    tab_to_field(page, "ownership-0")
    page.keyboard.press("Space")
    assert focused(page)["checked"] is True
    page.keyboard.press("ArrowDown")
    info = assert_focus_visible(page)
    assert (info["id"], info["checked"]) == ("ownership-1", True)
    page.keyboard.press("ArrowDown")
    assert focused(page)["id"] == "ownership-2"
    page.keyboard.press("ArrowUp")
    assert focused(page)["id"] == "ownership-1"

    tab_to_field(page, "energy_label")
    press_until_value(page, "ArrowDown", "C")

    roof, heat_pump = live_server.measure_ids
    tab_to_field(page, f"measure_{roof}")
    tab_to_field(page, f"quantity_{roof}")
    tab_to_field(page, f"measure_{heat_pump}")
    page.keyboard.press("Space")
    assert focused(page)["checked"] is True
    tab_to_field(page, f"quantity_{heat_pump}")
    page.keyboard.type("1")
    tab_to_field(page, "consent")
    page.keyboard.press("Space")
    assert focused(page)["checked"] is True

    info = tab(page)
    assert (info["tag"], info["type"]) == ("button", "submit"), info
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{live_server.url}/actions/{live_server.action_slug}/registered"
    expect(page.locator("main")).to_contain_text("bram@example.nl")

    # What was typed and chosen with the keys is what was stored.
    with live_server.app.app_context():
        registration = db.session.scalars(
            select(Registration).join(User).where(User.email == "bram@example.nl")
        ).one()
        household = registration.household
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION
        assert registration.user.name == "Bram Bakker"
        assert (household.postcode, household.house_number) == ("3524 BA", 31)
        assert household.house_number_addition == "BIS"
        assert household.dwelling_type.value == "corner"
        assert household.build_year == 1931
        assert household.ownership.value == "private_tenant"
        assert household.energy_label == "C"
        assert {m.action_measure_id: m.quantity for m in registration.measures} == {heat_pump: 1}


def test_errors_are_reached_with_the_keyboard(page: Page, live_server: LiveServer) -> None:
    goto(page, f"/actions/{live_server.action_slug}/register")
    # A measure ticked without saying how much: its error must name the measure.
    heat_pump = live_server.measure_ids[1]
    tab_until(page, f"#measure_{heat_pump}")
    page.keyboard.press("Space")
    tab_until(page, "main form[method=post] button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # The summary of problems has the focus, so the next Tab is its first link.
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    assert focused(page)["id"] == "error-summary"
    info = tab(page)
    assert info["href"] == "#name", info
    page.keyboard.press("Enter")
    info = focused(page)
    assert info["id"] == "name", info
    # The field says it is wrong, and the message is read with it.
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name")).to_have_attribute("aria-describedby", "name-error")

    # The link for the radio group leads to its first option, not to something unfocusable.
    radio_link = summary.locator('a[href="#ownership-0"]')
    expect(radio_link).to_have_count(1)
    radio_link.focus()
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "ownership-0"
    measure_name = page.locator(f'label[for="measure_{heat_pump}"]').inner_text()
    expect(summary.locator(f'a[href="#quantity_{heat_pump}"]')).to_contain_text(measure_name)
    # Every link in the summary names a field that exists and can take the focus.
    for href in summary.locator("a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    ):
        target = page.locator(href)
        expect(target).to_have_count(1)
        target.focus()
        assert focused(page)["id"] == href[1:], href
