"""Every page fits a 320 px wide screen (WCAG 1.4.10, reflow): a phone, or a desk employee's
1280 px screen zoomed to 400%.

For every role (a visitor, a resident who is also a neighbour ambassador, an installer, a desk
employee and a desk admin), every GET page of the URL map that the role can open is visited in
a 320 px wide Chromium, in Dutch (the longer words); a sample in English. The pages are found
from ``app.url_map`` and the objects of the authorisation matrix's world (as in
tests/test_url_map.py), so a new page is swept without anyone remembering to; downloads, feeds
and redirects are left out. The data has a very long email address, long names and a long street,
the things that stretch a page. A table may scroll, but only inside its own box.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from coop import create_app
from coop.accounts.models import User
from coop.extensions import db
from coop.installers.models import Installer
from coop.registrations.models import Household, Registration
from tests.browser.conftest import NARROW, TIMEOUT_MS, LiveServer, goto, overflow
from tests.conftest import base_config
from tests.login import sign_in
from tests.test_authorization import TARGETS, build_world, value_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

LONG_EMAIL = "anna.maria.van.der.heijden-oosterbroek.langenaam@voorbeeld-energieloket-gemeente.nl"
LONG_NAME = "Anna Maria Wilhelmina van der Heijden-Oosterbroek Langenaam"
LONG_INSTALLER_EMAIL = "planning.en.uitvoering@isolatiebedrijf-van-der-heijden-oosterbroek.nl"
LONG_COMPANY = "Isolatie- en Installatiebedrijf Van der Heijden-Oosterbroek en Zonen BV"
LONG_STREET = "Burgemeester Reigerstraat-Hoograventunnelkade"

# The roles swept, each as the matrix's world has them (resident_a is also an ambassador).
ROLES = ("anonymous", "resident_a", "installer", "staff_a_member", "staff_a")
# English: every page of this role, and every third page of the others.
ENGLISH_IN_FULL = "staff_a"


@dataclass
class SweepServer:
    app: Flask
    url: str
    world: dict[str, Any]


def lengthen(world: dict[str, Any]) -> None:
    """The things that stretch a page: a very long email address, long names and a street."""
    users, objects = world["users"], world["objects"]
    resident = db.session.get(User, users["resident_a"])
    assert resident is not None
    resident.email, resident.name = LONG_EMAIL, LONG_NAME
    fitter = db.session.get(User, users["installer"])
    assert fitter is not None
    fitter.email = LONG_INSTALLER_EMAIL
    staff = db.session.get(User, users["staff_a"])
    assert staff is not None
    staff.name = "Maria-Louise Schimmelpenninck van der Oye-Langenaam"
    installer = db.session.get(Installer, objects["inst_a"])
    assert installer is not None
    installer.company_name, installer.email = LONG_COMPANY, LONG_INSTALLER_EMAIL
    registration = db.session.get(Registration, objects["reg_a"])
    assert registration is not None
    household: Household = registration.household
    household.street = LONG_STREET
    db.session.commit()


@pytest.fixture(scope="module")
def sweep_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SweepServer]:
    """The app with the authorisation matrix's world (both desks, every role and object),
    lengthened, answering on a free loopback port."""
    path = tmp_path_factory.mktemp("reflow") / "coop.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}"))
    world = build_world(app)
    with app.app_context():
        lengthen(world)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="sweep-server", daemon=True)
    thread.start()
    yield SweepServer(app, url, world)
    server.shutdown()
    thread.join(timeout=10)
    with app.app_context():
        db.engine.dispose()


def candidate_urls(app: Flask, world: dict[str, Any]) -> list[str]:
    """Every GET address of the URL map, with each object the matrix tries it with (exports,
    downloads and feeds are left out by what they answer: not an HTML page)."""
    urls: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or "GET" not in (rule.methods or ()):
            continue
        parameters = tuple(sorted(rule.arguments, key=rule.rule.index))
        for combination in TARGETS[parameters]:
            values = {
                p: value_of(p, o, world) for p, o in zip(parameters, combination, strict=True)
            }
            urls.append(str(rule.build(values, append_unknown=False)[1]))  # type: ignore[index]
    return sorted(set(urls))


def session_cookie(app: Flask, user_id: int | None) -> str | None:
    """The session cookie of ``user_id`` logged in (None: a visitor)."""
    if user_id is None:
        return None
    client = app.test_client()
    sign_in(client, user_id)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def pages_of(app: Flask, cookie: str | None, urls: list[str]) -> list[str]:
    """The addresses that give this role an HTML page (not a refusal, redirect or file)."""
    client = app.test_client()
    if cookie is not None:
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    pages = []
    for url in urls:
        response = client.get(url)
        response.get_data()
        response.close()
        if response.status_code == 200 and response.mimetype == "text/html":
            pages.append(url)
    return pages


# Tables not inside a box of their own that scrolls sideways, takes the keyboard's focus and is
# named by the text of the element its aria-labelledby points at.
UNBOXED_TABLES_SCRIPT = """() => [...document.querySelectorAll("main table")].filter((table) => {
  const box = table.closest('[role="region"][tabindex="0"][aria-labelledby]');
  const label = box && document.getElementById(box.getAttribute("aria-labelledby"));
  return !(box && label && label.textContent.trim() &&
    ["auto", "scroll"].includes(getComputedStyle(box).overflowX));
}).map((table) => table.id || table.querySelector("caption, th")?.textContent.trim() || "?")"""

# A page that is not there: the error page, in the role's own header, must fit too.
MISSING = "/this-page-does-not-exist"


def sweep(page: Page, urls: list[str]) -> list[str]:
    """Open each page; what does not fit the window (with what sticks out), and each table
    that does not scroll in a box of its own."""
    too_wide = []
    for url in urls:
        response = page.goto(url)
        expected = 404 if url == MISSING else 200
        assert response is not None and response.status == expected, (url, response)
        problem = overflow(page)
        if problem:
            too_wide.append(f"{url}: {problem}")
        unboxed = page.evaluate(UNBOXED_TABLES_SCRIPT)
        if unboxed:
            too_wide.append(f"{url}: table(s) not in a named, focusable scrolling box: {unboxed}")
    return too_wide


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_every_role_fits_320_px(
    browser: Browser, sweep_server: SweepServer, role: str, pages_fit_their_window: list[str]
) -> None:
    started = time.monotonic()
    app, world = sweep_server.app, sweep_server.world
    cookie = session_cookie(app, world["users"].get(role))
    pages = pages_of(app, cookie, candidate_urls(app, world))
    # The URL map, not a list kept by hand: every role has pages to sweep.
    assert len(pages) >= {"anonymous": 8, "resident_a": 10, "installer": 5}.get(role, 40), pages
    # One context per role; measured here, not by the watch on every load.
    context = browser.new_context(
        locale="nl-NL", base_url=sweep_server.url, viewport=NARROW, java_script_enabled=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    pages_fit_their_window.clear()
    if cookie is not None:
        context.add_cookies(
            [
                {
                    "name": app.config["SESSION_COOKIE_NAME"],
                    "value": cookie,
                    "url": sweep_server.url,
                }
            ]
        )
    page = context.new_page()
    try:
        too_wide = [f"nl {line}" for line in sweep(page, [*pages, MISSING])]
        page.goto("/language/en")
        english = pages if role == ENGLISH_IN_FULL else pages[::3]
        too_wide += [f"en {line}" for line in sweep(page, english)]
    finally:
        pages_fit_their_window.clear()
        context.close()
    seconds = time.monotonic() - started
    print(f"{role}: {len(pages)} pages in Dutch, {len(english)} in English, {seconds:.1f}s")
    assert not too_wide, f"{len(too_wide)} page(s) that do not reflow for {role}:\n" + "\n".join(
        too_wide
    )


def test_a_page_wider_than_its_window_is_reported(
    page: Page, live_server: LiveServer, pages_fit_their_window: list[str]
) -> None:
    """The watch on every page a browser test loads: a page too wide for its window (here a
    login page at 320 px, made wider by a line that cannot wrap) is written down with what
    sticks out, and would fail the test at teardown."""
    page.set_viewport_size(NARROW)
    goto(page, "/staff/login")
    page.evaluate(
        """() => { const line = document.createElement("p"); line.id = "too-long";
        line.style.whiteSpace = "nowrap"; line.textContent = "x".repeat(200);
        document.querySelector("main").append(line); }"""
    )
    # Measured on each load, and again as the context closes (the last page of a test).
    page.context.close()
    assert len(pages_fit_their_window) == 1, pages_fit_their_window
    assert pages_fit_their_window[0].startswith(f"{live_server.url}/staff/login: ")
    assert "in a 320px window: p#too-long (right " in pages_fit_their_window[0]
    pages_fit_their_window.clear()  # seen: not a failure of this test
