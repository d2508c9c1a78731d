"""Browser fixtures: the app served for real on loopback, one headless Chromium per session,
a fresh context and page per test, and an axe-core check for WCAG 2.1 A/AA.

The browser is Debian's Chromium at /usr/bin/chromium; Playwright never downloads one. Without it
these tests skip on a developer machine and fail under CI=true.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from coop import create_app
from coop.extensions import db
from tests import factories
from tests.conftest import base_config, unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
# No network on the test machines: everything that would call home is switched off.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_OPTIONS: dict[str, Any] = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
# A page that does not answer within this time is a failure, not something to wait for.
TIMEOUT_MS = 10_000
# The narrowest screen a page must fit without scrolling sideways (WCAG 1.4.10, reflow): a phone,
# or 1280 px zoomed to 400%.
NARROW = {"width": 320, "height": 800}
# What sticks out when a page is wider than its window: null when it fits, else the page's width
# and the innermost elements past the right edge (skipping what scrolls inside its own box).
OVERFLOW_SCRIPT = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth <= width) return null;
  const past = (el) => el.getBoundingClientRect().right > width + 0.5;
  const scrollsItself = (el) => {
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible" && !past(box)) return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    [...el.classList].map((c) => "." + c).join("");
  // Past the edge: the box itself, or (a line that does not wrap) only what it holds.
  const spills = (el) => getComputedStyle(el).overflowX === "visible" &&
    el.getBoundingClientRect().left + el.scrollWidth > width + 0.5;
  const sticksOut = (el) => past(el) || spills(el);
  const culprits = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (!sticksOut(el) || [...el.children].some(sticksOut) || scrollsItself(el)) continue;
    const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60);
    const right = Math.max(el.getBoundingClientRect().right,
      el.getBoundingClientRect().left + el.scrollWidth);
    culprits.push(`${name(el)} (right ${Math.round(right)}px) "${text}"`);
    if (culprits.length === 5) break;
  }
  return {scrollWidth: root.scrollWidth, width: width, culprits: culprits};
}"""

# A very long address, as some residents have: every page that shows it must still fit 320 px.
RESIDENT_EMAIL = (
    "anna.maria.van.der.heijden-oosterbroek.langenaam@voorbeeld-energieloket-gemeente.nl"
)
RESIDENT_ADDRESS = {"postcode": "3521 AB", "house_number": "7", "addition": ""}
STAFF_EMAIL = "staff@example.nl"
INSTALLER_EMAIL = "planning@dakwerk.example.nl"
# The desk's pages: an admin (team, audit log), a colleague with two-factor login, one invited.
ADMIN_EMAIL = "beheer@example.nl"
TOTP_EMAIL = "totp@example.nl"
INVITED_EMAIL = "nieuw@example.nl"
NEIGHBOURHOOD_NAME = "Lombok"


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright and axe-playwright-python packages")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# --- the app, served for real ------------------------------------------------------------


@dataclass
class LiveServer:
    """The running app and what was seeded in it."""

    app: Flask
    url: str
    action_slug: str
    resident_registration_id: int
    measure_ids: list[int]
    # Ids of what ``seed_desk`` made, when a module asked for it: "action", "update"...
    desk: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # House numbers for sign-ups made by the tests, so none collides with another.
        self._house_numbers = itertools.count(100)

    def next_house_number(self) -> str:
        return str(next(self._house_numbers))

    def login_path(self, next_path: str | None = None, email: str = RESIDENT_EMAIL) -> str:
        """A fresh single-use login link for a resident, as the login email would carry it;
        it leads to ``next_path`` (as when the login page was reached from a protected page)."""
        from coop.accounts.models import LoginPurpose
        from coop.accounts.services import find_user_by_email, issue_login_token, login_link

        with self.app.test_request_context():
            user = find_user_by_email(email)
            assert user is not None, email
            token = issue_login_token(user, LoginPurpose.LOGIN, next_path=next_path)
            link = login_link(token)
            db.session.commit()
        return link.removeprefix(self.app.config["BASE_URL"])


def _seed(app: Flask) -> tuple[str, int, list[int]]:
    """An open action, a resident with a confirmed registration, a staff member, an installer."""
    from coop.accounts.models import Role, User
    from coop.actions.catalogue import ensure_catalogue
    from coop.core import jobs
    from coop.installers.models import Installer, InstallerOffer
    from coop.registrations import services
    from coop.registrations.models import DwellingType, Ownership

    with app.test_request_context():
        measures = ensure_catalogue()
        action = factories.action()
        factories.staff(action.organisation, email=STAFF_EMAIL)
        registration = services.register(
            action,
            services.RegistrationInput(
                name="Jan Jansen",
                email=RESIDENT_EMAIL,
                phone="06 12345678",
                address=services.Address(
                    postcode=RESIDENT_ADDRESS["postcode"],
                    house_number=int(RESIDENT_ADDRESS["house_number"]),
                    addition=RESIDENT_ADDRESS["addition"],
                    street="Lange Nieuwstraat",
                    city="Utrecht",
                ),
                dwelling=services.Dwelling(
                    dwelling_type=DwellingType.TERRACED,
                    build_year=1965,
                    ownership=Ownership.OWNER,
                    energy_label="E",
                ),
                measures={action.measures[0].id: 40},
                consent=True,
                language="nl",
            ),
        )
        # The confirmation email, so the development mailbox has something to show.
        jobs.dispatcher().run_pending()
        services.confirm(registration)
        installer = Installer(
            organisation_id=action.organisation_id,
            company_name="Dakwerk Utrecht BV",
            kvk_number="12345678",
            email=INSTALLER_EMAIL,
            city="Utrecht",
            service_area="3500-3599",
            offers=[
                InstallerOffer(measure=measures["roof"], unit_price_cents=4200, homes_per_week=6)
            ],
        )
        db.session.add(installer)
        db.session.flush()
        db.session.add(
            User(
                email=INSTALLER_EMAIL,
                name="Ilse Installer",
                role=Role.INSTALLER,
                installer_id=installer.id,
                password_hash=factories.password_hash(),
            )
        )
        db.session.commit()
        return action.slug, registration.id, [am.id for am in action.measures]


def seed_desk(live_server: LiveServer) -> None:
    """What the desk's pages show: a desk admin and their work (a neighbourhood, changed prices,
    a note, an update sent to residents and a draft, an invited colleague, all in the audit
    log), a colleague who logs in with a TOTP code, and an older, unconfirmed registration.

    For the modules that test the desk; run on the live server, so the links in its emails
    (the invitation) lead to it. Fills ``live_server.desk`` with the ids."""
    import pyotp
    from sqlalchemy import select

    from coop.accounts import services as accounts
    from coop.accounts.models import Role, User
    from coop.actions import neighbourhoods
    from coop.actions import services as actions
    from coop.actions.models import Action
    from coop.core import jobs
    from coop.core.time import utcnow
    from coop.desk import updates
    from coop.installers.models import Installer
    from coop.registrations import desk_services, services
    from coop.registrations.models import (
        DwellingType,
        Ownership,
        Registration,
        RegistrationStatus,
    )

    with live_server.app.test_request_context():
        action = db.session.scalars(
            select(Action).where(Action.slug == live_server.action_slug)
        ).one()
        admin = factories.staff(action.organisation, email=ADMIN_EMAIL)
        admin.name = "Dirk Beheer"
        admin.is_desk_admin = True
        totp_user = factories.staff(action.organisation, email=TOTP_EMAIL)
        totp_user.name = "Tom Tweestaps"
        db.session.commit()
        accounts.confirm_totp(totp_user, pyotp.TOTP(accounts.begin_totp_setup(totp_user)).now())

        neighbourhood = neighbourhoods.create_neighbourhood(
            admin,
            neighbourhoods.NeighbourhoodDetails(
                name=NEIGHBOURHOOD_NAME,
                municipality="Utrecht",
                postcode_areas=["3521"],
                household_count=1200,
            ),
        )
        action.neighbourhoods.append(neighbourhood)
        db.session.commit()
        roof = action.measures[0]
        actions.update_offer(admin, roof, 5200, [(2, 4500), (5, 4000), (20, 3800)])

        # A second resident, a tenant who signed up three weeks ago and never confirmed: the
        # registrations list has something to filter out, and the dashboard's sign-ups per day
        # are a long table that scrolls in its own box.
        earlier = services.register(
            action,
            services.RegistrationInput(
                name="Karin de Boer",
                email="karin@example.nl",
                phone=None,
                address=services.Address(
                    postcode="3524 BA",
                    house_number=3,
                    addition="",
                    street="Hondsrug",
                    city="Utrecht",
                ),
                dwelling=services.Dwelling(
                    dwelling_type=DwellingType.APARTMENT,
                    build_year=1990,
                    ownership=Ownership.PRIVATE_TENANT,
                    energy_label=None,
                ),
                measures={action.measures[1].id: 1},
                consent=True,
                language="en",
            ),
        )
        earlier.created_at = utcnow() - timedelta(days=20)
        db.session.commit()

        registration = db.session.get(Registration, live_server.resident_registration_id)
        assert registration is not None
        desk_services.add_note(admin, registration, "Belt liever na 18:00 uur.")
        db.session.commit()
        update = updates.compose(
            admin,
            updates.UpdateInput(
                action=action,
                measure_id=roof.measure_id,
                status=RegistrationStatus.CONFIRMED,
                pc4=None,
                subject_nl="Informatieavond dakisolatie",
                subject_en="Information evening roof insulation",
                body_nl="Beste bewoner,\n\nOp 12 maart is er een informatieavond.",
                body_en="Dear resident,\n\nThere is an information evening on 12 March.",
            ),
        )
        updates.send_now(update, admin)
        # And a draft, with its send form.
        draft = updates.compose(
            admin,
            updates.UpdateInput(
                action=action,
                measure_id=None,
                status=None,
                pc4="3521",
                subject_nl="Steigers in de Lange Nieuwstraat",
                subject_en="",
                body_nl="Vanaf maandag staan er steigers.",
                body_en="",
            ),
        )
        accounts.invite_user(admin, INVITED_EMAIL, "Noor Nieuw", Role.STAFF)
        # The update's emails and the invitation, delivered to the development mailbox.
        jobs.dispatcher().run_pending()
        installer = db.session.scalars(
            select(Installer).where(Installer.organisation_id == action.organisation_id)
        ).one()
        assert db.session.scalars(select(User).where(User.email == INVITED_EMAIL)).one()
        live_server.desk = {
            "action": action.id,
            "neighbourhood": neighbourhood.id,
            "installer": installer.id,
            "update": update.id,
            "draft_update": draft.id,
            "roof_offer": roof.id,
            "roof_measure": roof.measure_id,
        }


@pytest.fixture(scope="module")
def live_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app on its own copy of the migrated SQLite file, answering on a free loopback port."""
    path = tmp_path_factory.mktemp("live") / "coop.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}"))
    slug, registration_id, measure_ids = _seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    # Links in emails point at the server the browser talks to.
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(app, url, slug, registration_id, measure_ids)
    server.shutdown()
    thread.join(timeout=10)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    """Override in a module (or a test) to change how the context is made."""
    return {}


@pytest.fixture
def context(
    browser: Browser, live_server: LiveServer, browser_context_options: dict[str, Any]
) -> Iterator[BrowserContext]:
    # A Dutch browser: the site's default language, switched by its own link where a test wants.
    options: dict[str, Any] = {"locale": "nl-NL", "base_url": live_server.url}
    options.update(browser_context_options)
    browser_context = browser.new_context(**options)
    browser_context.set_default_timeout(TIMEOUT_MS)
    yield browser_context
    browser_context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(autouse=True)
def pages_fit_their_window(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Every page a test opens (in any context it makes during the test) is measured when it
    has loaded, and the pages it ends on again narrowed to 320 px as their context closes; one
    wider than its window fails the test at teardown (WCAG 1.4.10). Contexts made by
    module-scoped fixtures are not measured; those without JavaScript are (Playwright measures
    in a world of its own)."""
    too_wide: list[str] = []
    if "browser" not in request.fixturenames:
        yield too_wide
        return
    browser: Browser = request.getfixturevalue("browser")
    make_context = browser.new_context

    def new_context(**options: Any) -> BrowserContext:
        made = make_context(**options)
        watch_widths(made, too_wide)
        return made

    browser.new_context = new_context  # type: ignore[method-assign]
    try:
        yield too_wide
    finally:
        browser.new_context = make_context  # type: ignore[method-assign]
    if too_wide:
        pytest.fail("Pages wider than their window:\n" + "\n".join(too_wide), pytrace=False)


# --- helpers -----------------------------------------------------------------------------


def goto(page: Page, path: str, status: int = 200) -> None:
    """Open a page and check the server's answer, so an error page never passes for the page."""
    response = page.goto(path)
    assert response is not None, path
    assert response.status == status, f"{path}: HTTP {response.status}, expected {status}"


def overflow(page: Page) -> str | None:
    """None when the page fits its window; else how wide it is and what sticks out."""
    found = page.evaluate(OVERFLOW_SCRIPT)
    if found is None:
        return None
    culprits = "; ".join(found["culprits"]) or "(no single element)"
    return f"{found['scrollWidth']}px wide in a {found['width']}px window: {culprits}"


def watch_widths(context: BrowserContext, too_wide: list[str]) -> None:
    """Measure every page the context loads, in its own window; and as the context closes, each
    open page once more (the last page of a test may close before its load was measured) and,
    when the window is wider, narrowed to 320 px as well. Note each page too wide, once."""
    from playwright.sync_api import Error

    def measure(page: Page, where: str = "") -> None:
        try:
            problem = overflow(page)
        except Error:  # navigated on or closed before the measurement
            return
        found = f"{page.url}{where}: {problem}"
        if problem and found not in too_wide:
            too_wide.append(found)

    context.on("page", lambda page: page.on("load", measure))
    close = context.close

    def measure_and_close(**options: Any) -> None:
        for page in context.pages:
            measure(page)
            size = page.viewport_size
            if size is not None and size["width"] > NARROW["width"]:
                try:
                    page.set_viewport_size({"width": NARROW["width"], "height": size["height"]})
                except Error:
                    continue
                measure(page, " (narrowed to 320 px)")
        close(**options)

    context.close = measure_and_close  # type: ignore[method-assign]


def choose_language(page: Page, language: str) -> None:
    """Switch with the language link in the header, as a person would; the link brings them back
    to the same page. Checks that the page then says it is in that language."""
    if page.locator("html").get_attribute("lang") != language:
        with page.expect_navigation():
            page.locator(f'header a[hreflang="{language}"]').click()
    assert page.locator("html").get_attribute("lang") == language


def visit(page: Page, path: str, language: str, status: int = 200) -> None:
    """Open a page and read it in ``language``."""
    goto(page, path, status)
    choose_language(page, language)


def log_in_resident(page: Page, live_server: LiveServer, next_path: str = "/my") -> None:
    """Follow a login link and press its button, as from the email; land on ``next_path``."""
    goto(page, live_server.login_path(next_path))
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert page.url == live_server.url + next_path, page.url


def log_in_with_password(page: Page, email: str, home: str) -> None:
    goto(page, "/staff/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(factories.PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"**{home}")


def fill_registration(page: Page, live_server: LiveServer, *, house_number: str) -> None:
    """A complete, valid sign-up in the registration form (by mouse and paste, not keyboard)."""
    roof = live_server.measure_ids[0]
    page.locator("#name").fill("Anna de Vries")
    page.locator("#email").fill(f"anna{house_number}@example.nl")
    page.locator("#phone").fill("06 12345678")
    page.locator("#postcode").fill("3524 BA")
    page.locator("#house_number").fill(house_number)
    page.locator("#street").fill("Hondsrug")
    page.locator("#city").fill("Utrecht")
    page.locator("#dwelling_type").select_option("terraced")
    page.locator("#build_year").fill("1978")
    page.locator('input[name="ownership"][value="owner"]').check()
    page.locator("#energy_label").select_option("D")
    page.locator(f"#measure_{roof}").check()
    page.locator(f"#quantity_{roof}").fill("45")
    page.locator("#consent").check()


@functools.cache
def _axe() -> Any:
    """One Axe (it holds the axe-core source it injects), made when first needed."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def assert_accessible(page: Page, what: str = "") -> None:
    """Run axe-core with the WCAG 2.1 A and AA rules; list every violation if there are any."""
    violations = _axe().run(page, options=AXE_OPTIONS).response["violations"]
    if not violations:
        return
    lines = [f"{len(violations)} WCAG violation(s) on {what or page.url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    at {node['target']}: {node['html'][:300]}")
            if node.get("failureSummary"):
                lines.append("      " + node["failureSummary"].replace("\n", "\n      "))
    raise AssertionError("\n".join(lines))
