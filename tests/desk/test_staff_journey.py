"""The issue's "done when": a staff member runs an action from the first form to an update in the
residents' mailboxes, all over HTTP, with the emails on a real SMTP server.

Only the starting point is written to the database: two energy desks, each with staff, and a
resident of the other desk who must never hear from this one. Everything after that is what the
staff member (and the residents) click: a neighbourhood, an action with group price tiers,
installers, publishing, a phone registration, two sign-ups on the public form, confirmations by
the emailed links, an update to the residents who want roof insulation, its delivery log and the
audit log.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from coop.accounts.models import User
from coop.core.audit import AuditEntry
from coop.core.time import AMSTERDAM
from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories
from tests.conftest import SMTPRecorder, link_in, message_text, smtp_config
from tests.desk.test_dashboard import register, resident

SMTPServer = tuple[SMTPRecorder, int]

STAFF = "sanne@energieloket-utrecht.example.nl"
OTHER_STAFF = "bram@elders.example.nl"
OTHER_RESIDENT = "elders-bewoner@example.nl"
PHONED_IN = "henk.janssen@example.nl"  # registered by staff during a phone call: roof, 3521
ROOF_SIGN_UP = "fatima@example.nl"  # signs up herself: roof, 3524
HEAT_PUMP_SIGN_UP = "piet@example.nl"  # signs up himself: only a hybrid heat pump, 3521
SLUG = "samen-isoleren-oog-in-al"
UPDATE_SUBJECT_NL = "Informatieavond dakisolatie op 12 maart"
UPDATE_SUBJECT_EN = "Roof insulation evening on 12 March"


@pytest.fixture
def app_config(smtp_server: SMTPServer) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


# --- small helpers -----------------------------------------------------------------------------


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def submit(client: FlaskClient, url: str, data: dict[str, Any], **kwargs: Any) -> str:
    """Post a form as a browser does; returns where it redirects (a refused form is a failure)."""
    response = factories.post_form(client, url, data, **kwargs)
    assert response.status_code == 302, (url, response.get_data(as_text=True)[-3000:])
    location: str = response.headers["Location"]
    return location


def english_client(app: Flask) -> FlaskClient:
    """A browser of its own, reading English (the msgids) so the test can read the pages."""
    client = app.test_client()
    client.get("/language/en")
    return client


def client_gets(app: Flask, url: str) -> int:
    """The status code for someone who is not logged in."""
    return app.test_client().get(url).status_code


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def mail_to(
    smtp: SMTPRecorder, address: str, count: int = 1, timeout: float = 5.0
) -> list[Message]:
    """The messages to ``address`` once there are ``count`` of them (or whatever came in time)."""
    deadline = time.monotonic() + timeout
    while len(smtp.to(address)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return smtp.to(address)


def path_of(link: str) -> str:
    assert link.startswith("http://localhost/"), link
    return link.removeprefix("http://localhost")


def registration_of(app: Flask, email: str) -> Registration:
    with app.app_context():
        registration = db.session.scalars(
            select(Registration).join(User).where(User.email == email)
        ).one()
        db.session.expunge(registration)
        return registration


# --- 1. the starting point: two desks, only through the database ------------------------------


def two_energy_desks(app: Flask) -> None:
    """Our desk with a desk admin; another desk with its own staff and a resident who wants roof
    insulation in the same postcode areas (so only the organisation keeps them apart)."""
    with app.app_context():
        ours = factories.organisation("Energieloket Utrecht")
        admin = factories.staff(ours, STAFF)
        admin.is_desk_admin = True
        theirs = factories.organisation("Energiecoöperatie Elders")
        factories.staff(theirs, OTHER_STAFF)
        their_action = factories.action(theirs, slug="elders-isoleren", pc4s="3521,3524")
        register(their_action, RegistrationStatus.CONFIRMED, user=resident(OTHER_RESIDENT))
        db.session.commit()


# --- 2. the staff member sets the action up ----------------------------------------------------


def staff_logs_in(app: Flask) -> FlaskClient:
    staff = english_client(app)
    home = submit(staff, "/staff/login", {"email": STAFF, "password": factories.PASSWORD})
    assert home == "/desk/"
    return staff


def creates_neighbourhood(staff: FlaskClient) -> int:
    listing = submit(
        staff,
        "/desk/actions/neighbourhoods/new",
        {
            "name": "Oog in Al",
            "municipality": "Utrecht",
            "postcode_areas": "3521, 3524",
            "household_count": "1.250",
        },
    )
    match = re.search(
        r'href="/desk/actions/neighbourhoods/(\d+)/edit"[^>]*>[^<]*Oog in Al', page(staff, listing)
    )
    assert match, "the new neighbourhood is not in the list"
    return int(match.group(1))


def creates_action(staff: FlaskClient, neighbourhood_id: int) -> int:
    today = datetime.now(AMSTERDAM).date()
    detail = submit(
        staff,
        "/desk/actions/new",
        {
            "title_nl": "Samen isoleren in Oog in Al",
            "title_en": "Insulating together in Oog in Al",
            "slug": SLUG,
            "summary_nl": "Met de buren tegelijk het dak en de verwarming aanpakken.",
            "summary_en": "Tackle roofs and heating together with the neighbours.",
            "description_nl": "Hoe meer huishoudens meedoen, hoe lager de prijs.",
            "description_en": "The more households take part, the lower the price.",
            "opens_on": (today - timedelta(days=1)).isoformat(),
            "opens_at": "09:00",
            "closes_on": (today + timedelta(days=45)).isoformat(),
            "closes_at": "23:59",
            "contact_email": "isoleren@energieloket-utrecht.example.nl",
            "contact_phone": "030 123 45 67",
            "postcode_areas": "3521, 3524",
            "neighbourhoods": str(neighbourhood_id),
        },
    )
    match = re.fullmatch(r"/desk/actions/(\d+)", detail)
    assert match, detail
    return int(match.group(1))


def catalogue_ids(staff: FlaskClient, action_id: int) -> dict[str, int]:
    """The measures the desk can offer, by their English name, as the add-measure page lists them."""
    options = re.findall(
        r'<option[^>]*value="(\d+)"[^>]*>([^<]+)</option>',
        page(staff, f"/desk/actions/{action_id}/measures/new"),
    )
    return {name.strip(): int(value) for value, name in options}


def adds_measure(
    staff: FlaskClient,
    action_id: int,
    measure_id: int,
    name: str,
    indicative_price: str,
    tiers: list[tuple[int, str]],
) -> int:
    """Offers a measure with its group price tiers; returns the offer's id (action measure)."""
    form: dict[str, Any] = {"measure": measure_id, "indicative_price": indicative_price}
    for row, (homes, price) in enumerate(tiers):
        form[f"tiers-{row}-min_participants"] = str(homes)
        form[f"tiers-{row}-price"] = price
    detail = submit(staff, f"/desk/actions/{action_id}/measures/new", form)
    match = re.search(
        rf'href="/desk/actions/{action_id}/measures/(\d+)/edit">Prices of {name}<',
        page(staff, detail),
    )
    assert match, f"{name} is not on the action's page"
    return int(match.group(1))


def registers_installer(
    staff: FlaskClient,
    company: str,
    kvk: str,
    service_area: str,
    offers: dict[int, tuple[str, int]],
) -> int:
    form: dict[str, Any] = {
        "company_name": company,
        "kvk_number": kvk,
        "certifications": "VCA, InstallQ",
        "contact_name": "Joris Bakker",
        "email": f"info@{company.lower().replace(' ', '-')}.example.nl",
        "phone": "030 765 43 21",
        "city": "Utrecht",
        "service_area": service_area,
    }
    for measure_id, (price, homes_per_week) in offers.items():
        form[f"offer_{measure_id}"] = "y"
        form[f"price_{measure_id}"] = price
        form[f"capacity_{measure_id}"] = str(homes_per_week)
    detail = submit(staff, "/desk/installers/new", form)
    match = re.fullmatch(r"/desk/installers/(\d+)", detail)
    assert match, detail
    return int(match.group(1))


def publishes(staff: FlaskClient, action_id: int) -> None:
    detail = f"/desk/actions/{action_id}"
    assert submit(staff, f"{detail}/publish", {}, token_from=detail) == detail


def public_page_shows_tiers(app: Flask, tiers: list[tuple[str, str]]) -> None:
    """Anyone can now read the action, with each group price tier as a row of its table."""
    text = page(english_client(app), f"/actions/{SLUG}")
    for homes_label, price in tiers:
        assert re.search(
            rf'<th scope="row">{re.escape(homes_label)}</th>\s*<td>{re.escape(price)}</td>', text
        ), f"tier {homes_label} at {price} is not on the public page"


# --- 3. and 4. residents sign up and confirm ---------------------------------------------------


def registers_resident_by_phone(
    staff: FlaskClient, action_id: int, roof_offer: int, heat_pump_offer: int
) -> None:
    detail = submit(
        staff,
        f"/desk/registrations/new/{action_id}",
        {
            "name": "Henk Janssen",
            "email": PHONED_IN,
            "phone": "06 11223344",
            "postcode": "3521 AB",
            "house_number": "7",
            "street": "Kanaalweg",
            "city": "Utrecht",
            "dwelling_type": "semi_detached",
            "build_year": "1962",
            "ownership": "owner",
            f"measure_{roof_offer}": "y",
            f"quantity_{roof_offer}": "55",
            f"quantity_{heat_pump_offer}": "",
            "consent": "y",
            "language": "nl",
        },
    )
    assert re.fullmatch(r"/desk/registrations/\d+", detail), detail


def signs_up_on_public_form(
    app: Flask, email: str, postcode: str, measures: dict[int, str]
) -> None:
    resident_browser = english_client(app)
    form: dict[str, Any] = {
        "name": email.split("@")[0].capitalize(),
        "email": email,
        "postcode": postcode,
        "house_number": "21",
        "street": "Van Humboldtstraat",
        "city": "Utrecht",
        "dwelling_type": "terraced",
        "build_year": "1931",
        "ownership": "owner",
        "consent": "y",
    }
    for offer_id, quantity in measures.items():
        form[f"measure_{offer_id}"] = "y"
        form[f"quantity_{offer_id}"] = quantity
    where = submit(resident_browser, f"/actions/{SLUG}/register", form)
    assert where == f"/actions/{SLUG}/registered"


def confirms_by_emailed_link(app: Flask, smtp: SMTPRecorder, email: str) -> None:
    """In the resident's own browser: open the link (a page with a button), press the button."""
    [confirmation] = mail_to(smtp, email)
    link = path_of(link_in(message_text(confirmation)))
    resident_browser = english_client(app)
    assert 'type="submit"' in page(resident_browser, link)
    registration_id = registration_of(app, email).id
    assert submit(resident_browser, link, {}) == f"/my/registrations/{registration_id}"
    assert registration_of(app, email).status is RegistrationStatus.CONFIRMED


def desk_sees_its_own_residents_only(staff: FlaskClient) -> None:
    listing = page(staff, "/desk/registrations/")
    rows = re.findall(r'<span class="meta">([^<]+@[^<]+)</span>', listing)
    assert sorted(rows) == sorted([PHONED_IN, ROOF_SIGN_UP, HEAT_PUMP_SIGN_UP])


# --- 5. an update to the residents who want roof insulation ------------------------------------


def composes_update_for_roof(staff: FlaskClient, action_id: int, roof_measure: int) -> int:
    detail = submit(
        staff,
        "/desk/updates/new",
        {
            "action": action_id,
            "measure": roof_measure,
            "status": "",
            "pc4": "",
            "subject_nl": UPDATE_SUBJECT_NL,
            "body_nl": "Beste bewoner,\n\nOp 12 maart vertelt de installateur over dakisolatie.",
            "subject_en": UPDATE_SUBJECT_EN,
            "body_en": "Dear resident,\n\nOn 12 March the installer explains roof insulation.",
        },
    )
    match = re.fullmatch(r"/desk/updates/(\d+)", detail)
    assert match, detail
    return int(match.group(1))


def previews_update(staff: FlaskClient, update_id: int) -> None:
    """Two residents will get it; the preview is the first one's, in Dutch, with the way out."""
    text = page(staff, f"/desk/updates/{update_id}")
    assert re.search(r'id="audience">2 residents<', text)
    preview = text.split('id="preview"', 1)[1].split("</div>", 1)[0]
    assert UPDATE_SUBJECT_NL in preview
    assert "Op 12 maart vertelt de installateur over dakisolatie." in preview
    assert "/unsubscribe/" in preview


def sends_update_now(staff: FlaskClient, update_id: int) -> None:
    detail = f"/desk/updates/{update_id}"
    assert submit(staff, f"{detail}/send", {"when": "now"}, token_from=detail) == detail


def update_mail_arrived(
    app: Flask, smtp: SMTPRecorder, before: int, expected: dict[str, str]
) -> None:
    """Exactly the segment got the update (each once, in their language), and nobody else got
    anything at all; each message's unsubscribe link works."""
    deadline = time.monotonic() + 5
    while len(smtp.envelopes) - before < len(expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    sent = list(zip(smtp.envelopes[before:], smtp.messages[before:], strict=True))
    got = sorted(address for envelope, _ in sent for address in envelope.rcpt_tos)
    assert got == sorted(expected), f"the update went to {got}"
    for envelope, message in sent:
        [address] = envelope.rcpt_tos
        assert subject_of(message) == expected[address]
        unsubscribe = re.search(r"https?://\S+/unsubscribe/\S+", message_text(message))
        assert unsubscribe, f"no unsubscribe link in the update to {address}"
        resident_browser = english_client(app)
        link = path_of(unsubscribe.group(0))
        done = factories.post_form(resident_browser, link, {})
        assert done.status_code == 200
        assert 'id="unsubscribed"' in done.get_data(as_text=True)
        with app.app_context():
            user = db.session.scalars(select(User).where(User.email == address)).one()
            assert user.unsubscribed_at is not None, f"{address} is still subscribed"


def delivery_log_shows_sent(staff: FlaskClient, update_id: int, addresses: list[str]) -> None:
    text = page(staff, f"/desk/updates/{update_id}")
    assert re.search(r'id="update-status">\s*Sent', text), "the update is not marked sent"
    counts = dict(re.findall(r'id="count-([a-z]+)">(\d+)<', text))
    assert counts["sent"] == str(len(addresses)), counts
    assert {k: v for k, v in counts.items() if k != "sent"} == dict.fromkeys(
        set(counts) - {"sent"}, "0"
    ), counts
    rows = re.findall(r'<tr data-status="([a-z]+)">.*?<td>([^<]*)</td>', text, re.S)
    assert sorted(rows) == sorted(("sent", address) for address in addresses), rows


# --- 6. the audit log --------------------------------------------------------------------------


def audit_log_lists(
    app: Flask, staff: FlaskClient, wanted: list[tuple[str, str, int]], shows: dict[str, str]
) -> None:
    """Each (verb, object type, object id) has its row on the desk admin's audit page, naming
    the staff member; ``shows`` adds text a verb's row must hold (what changed)."""
    text = page(staff, "/desk/audit")
    with app.app_context():
        entries = list(db.session.scalars(select(AuditEntry)))
    for verb, object_type, object_id in wanted:
        matching = [
            e
            for e in entries
            if (e.verb, e.object_type, e.object_id) == (verb, object_type, object_id)
        ]
        assert len(matching) == 1, f"{len(matching)} audit entries for {verb} of #{object_id}"
        entry = matching[0]
        row = re.search(rf'<tr id="entry-{entry.id}">(.*?)</tr>', text, re.S)
        assert row, f"{verb} of {object_type} #{object_id} is not on the audit page"
        assert STAFF in row.group(1)
        assert f"({object_type} #{object_id})" in row.group(1)
        if verb in shows:
            assert shows[verb] in " ".join(row.group(1).split()), row.group(1)


# --- the story ---------------------------------------------------------------------------------


def test_staff_member_runs_an_action_from_setup_to_an_update_for_one_segment(
    app: Flask, smtp_server: SMTPServer
) -> None:
    smtp, _port = smtp_server
    two_energy_desks(app)

    # 2. Set the action up and publish it.
    staff = staff_logs_in(app)
    neighbourhood_id = creates_neighbourhood(staff)
    action_id = creates_action(staff, neighbourhood_id)
    catalogue = catalogue_ids(staff, action_id)
    roof, heat_pump = catalogue["Roof insulation"], catalogue["Hybrid heat pump"]
    roof_offer = adds_measure(
        staff, action_id, roof, "Roof insulation", "50,00", [(10, "45,00"), (25, "40,00")]
    )
    heat_pump_offer = adds_measure(
        staff,
        action_id,
        heat_pump,
        "Hybrid heat pump",
        "4.500,00",
        [(10, "4.200,00"), (25, "3.950,00")],
    )
    installers = [
        registers_installer(
            staff, "Dakwerk Utrecht", "12345678", "3500-3599", {roof: ("38,50", 20)}
        ),
        registers_installer(
            staff,
            "Warmte Wijs",
            "8765 4321",  # as people copy it; the registry keeps the 8 digits
            "3521, 3524, 3811",
            {roof: ("39,00", 10), heat_pump: ("3.800,00", 5)},
        ),
    ]
    registry = page(staff, "/desk/installers/")
    assert "Dakwerk Utrecht" in registry and "Warmte Wijs" in registry
    assert "87654321" in page(staff, f"/desk/installers/{installers[1]}")
    assert client_gets(app, f"/actions/{SLUG}") == 404  # a draft is not public yet
    publishes(staff, action_id)
    public_page_shows_tiers(
        app,
        [
            ("10 or more", "€45.00"),
            ("25 or more", "€40.00"),
            ("10 or more", "€4,200.00"),
            ("25 or more", "€3,950.00"),
        ],
    )

    # 3. A resident phones in; they confirm from their own mailbox and browser.
    registers_resident_by_phone(staff, action_id, roof_offer, heat_pump_offer)
    confirms_by_emailed_link(app, smtp, PHONED_IN)

    # 4. Two more sign up themselves: one for the roof, one only for a heat pump.
    signs_up_on_public_form(app, ROOF_SIGN_UP, "3524 KB", {roof_offer: "40"})
    signs_up_on_public_form(app, HEAT_PUMP_SIGN_UP, "3521 CD", {heat_pump_offer: "1"})
    confirms_by_emailed_link(app, smtp, ROOF_SIGN_UP)
    confirms_by_emailed_link(app, smtp, HEAT_PUMP_SIGN_UP)
    desk_sees_its_own_residents_only(staff)

    # 5. An update for everyone who wants roof insulation: preview, send now.
    update_id = composes_update_for_roof(staff, action_id, roof)
    previews_update(staff, update_id)
    mail_before = len(smtp.envelopes)
    sends_update_now(staff, update_id)
    update_mail_arrived(
        app,
        smtp,
        mail_before,
        # The phone registration chose Dutch; Fatima signed up on the English pages.
        {PHONED_IN: UPDATE_SUBJECT_NL, ROOF_SIGN_UP: UPDATE_SUBJECT_EN},
    )
    assert smtp.to(HEAT_PUMP_SIGN_UP) and not any(
        subject_of(m) in (UPDATE_SUBJECT_NL, UPDATE_SUBJECT_EN) for m in smtp.to(HEAT_PUMP_SIGN_UP)
    )
    assert smtp.to(OTHER_RESIDENT) == []
    delivery_log_shows_sent(staff, update_id, [PHONED_IN, ROOF_SIGN_UP])

    # 6. The desk admin reads back what was done, by whom.
    audit_log_lists(
        app,
        staff,
        [
            ("action.create", "Action", action_id),
            ("action.publish", "Action", action_id),
            ("installer.create", "Installer", installers[0]),
            ("installer.create", "Installer", installers[1]),
            ("update.send", "SegmentUpdate", update_id),
        ],
        shows={"action.publish": "draft → open", "update.send": "sent an update"},
    )
