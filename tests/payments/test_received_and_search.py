"""Offline deposits as the desk handles them with the bank statement at hand: staff enter the
day the transfer arrived (default today, never in the future), that day starts the cooling-off
period, and a deposit is found by its payment reference however it was copied (with or
without dashes, with spaces), on the action's deposits page and in the registrations list.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from coop.core.audit import AuditEntry
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.payments import services
from coop.payments.models import Payment, PaymentStatus
from coop.payments.search import Found, reference_id, search_deposits
from coop.payments.services import PaymentError
from tests import factories
from tests.payments.conftest import World, accept, log_in, quote_for, world_of


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {}  # no Stripe keys: offline mode


def zeist_staff() -> Any:
    return factories.staff(factories.organisation("Energiecoöperatie Zeist"), "zeist@example.nl")


def today() -> Any:
    return utcnow().astimezone(AMSTERDAM).date()


def field_error(page: str, field_id: str) -> str:
    match = re.search(
        rf'<p class="field-error" id="{field_id}-error"><span class="visually-hidden">[^<]*</span>'
        r"\s*([^<]*)</p>",
        page,
    )
    assert match, f"no error at {field_id}"
    return html.unescape(match.group(1)).strip()


# --- the day the money arrived ---------------------------------------------------------------


def test_staff_enter_the_day_the_transfer_arrived(app: Flask, world: World) -> None:
    payment = accept(quote_for(world, language="en"), now=utcnow() - timedelta(days=5))
    staff = app.test_client()
    log_in(staff, world.staff)
    staff.get("/language/en")
    url = f"/desk/payments/{payment.id}"
    page = staff.get(url).get_data(as_text=True)
    # The date field is there, filled with today.
    assert re.search(rf'id="received_on"[^>]*value="{today().isoformat()}"', page), page

    tomorrow = (today() + timedelta(days=1)).isoformat()
    refused = factories.post_form(
        staff, f"{url}/received", {"amount": "250", "received_on": tomorrow}, token_from=url
    )
    assert refused.status_code == 200
    assert field_error(refused.get_data(as_text=True), "received_on") == (
        "The money cannot have arrived after today."
    )
    too_early = (today() - timedelta(days=9)).isoformat()
    refused = factories.post_form(
        staff, f"{url}/received", {"amount": "250", "received_on": too_early}, token_from=url
    )
    assert field_error(refused.get_data(as_text=True), "received_on") == (
        "Enter a date on or after the day the deposit was asked."
    )
    unreadable = factories.post_form(
        staff, f"{url}/received", {"amount": "250", "received_on": "gisteren"}, token_from=url
    )
    assert field_error(unreadable.get_data(as_text=True), "received_on") == (
        "Enter a date like 2026-12-31."
    )
    db.session.expire_all()
    assert payment.status is PaymentStatus.PENDING and payment.received_on is None

    three_days_ago = today() - timedelta(days=3)
    done = factories.post_form(
        staff,
        f"{url}/received",
        {"amount": "250,00", "received_on": three_days_ago.strftime("%d-%m-%Y")},
        token_from=url,
    )
    assert done.status_code == 302
    db.session.expire_all()
    assert payment.status is PaymentStatus.PAID
    assert payment.received_on == three_days_ago
    # It counts as paid at the end of that day in Amsterdam.
    assert payment.paid_at is not None
    paid_local = payment.paid_at.astimezone(AMSTERDAM)
    assert paid_local.date() == three_days_ago and (paid_local.hour, paid_local.minute) == (23, 59)
    shown = staff.get(url).get_data(as_text=True)
    assert re.search(r'id="received-on">[^<]*\d{4}</span>', shown)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "payment.received"))
    assert entry is not None and entry.after["received_on"] == three_days_ago.isoformat()


def test_without_a_date_it_arrived_today(world: World) -> None:
    payment = accept(quote_for(world))
    before = utcnow()
    services.mark_received(world.staff, payment, 25000)
    assert payment.received_on == today()
    assert payment.paid_at is not None and before <= payment.paid_at <= utcnow()
    with pytest.raises(PaymentError) as raised:
        services.mark_received(
            world.staff,
            accept(quote_for(world, email="b@example.nl")),
            25000,
            received_on=today() + timedelta(days=1),
        )
    assert raised.value.code == "received_in_future"


def test_the_day_the_money_arrived_is_kept_as_the_payment_moment(world: World) -> None:
    # Accepted (and the deposit asked) 20 days ago; one transfer arrived 16 days ago and was
    # marked only today, the other arrived today. The cooling-off period itself counts from
    # the acceptance (coop.registrations.withdrawal), whatever day the money came.
    long_ago = utcnow() - timedelta(days=20)
    early = accept(quote_for(world, email="early@example.nl"), now=long_ago)
    late = accept(quote_for(world, email="late@example.nl"), now=long_ago)
    arrived = today() - timedelta(days=16)
    services.mark_received(world.staff, early, 25000, received_on=arrived)
    services.mark_received(world.staff, late, 25000)
    assert early.received_on == arrived
    assert early.paid_at == services.arrival_moment(arrived, utcnow())
    assert late.received_on == today()
    assert late.paid_at is not None and late.paid_at > utcnow() - timedelta(minutes=1)


def test_arrival_counts_from_the_end_of_the_day_in_amsterdam() -> None:
    now = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    day = datetime(2026, 12, 3).date()
    moment = services.arrival_moment(day, now)
    assert moment == datetime(2026, 12, 3, 22, 59, 59, 999999, tzinfo=UTC)  # 23:59:59 CET
    assert services.arrival_moment(now.astimezone(AMSTERDAM).date(), now) == now


# --- finding a deposit by its reference ------------------------------------------------------


def copies_of(reference: str) -> list[str]:
    """A reference as people copy it off a bank statement."""
    return [
        reference,
        reference.replace("-", ""),
        reference.replace("-", " "),
        reference.lower(),
        f"  {reference.replace('-', ' - ')} ",
        reference.removeprefix("COOP-"),
    ]


def test_a_reference_is_read_however_it_was_copied() -> None:
    reference = services.reference_for(42)
    for copy in copies_of(reference):
        assert reference_id(copy) == 42, copy
    assert reference_id(reference[:-1] + str((int(reference[-1]) + 1) % 10)) is None
    assert reference_id("0612345678") is None
    assert reference_id("Anna") is None


def test_the_deposits_page_finds_a_deposit_by_reference_name_or_address(
    app: Flask, world: World
) -> None:
    anna = accept(quote_for(world, email="anna@example.nl", name="Anna Öztürk"))
    bram = accept(quote_for(world, email="bram@example.nl", name="Bram de Vries"))
    # A deposit of another action of the same desk.
    elsewhere = accept(quote_for(world, email="cees@example.nl", name="Cees Bakker"))
    elsewhere.action_id = factories.action(world.org, slug="warmtepomp").id
    db.session.commit()
    stranger = world_of(staff=zeist_staff(), slug="zeist")
    foreign = accept(quote_for(stranger, email="dirk@example.nl", name="Dirk Zeist"))

    for copy in copies_of(anna.reference or ""):
        found = search_deposits(world.action, copy)
        assert found.found is Found.REFERENCE, copy
        assert [row.payment.id for row in found.rows] == [anna.id]
    assert search_deposits(world.action, "ozturk").rows[0].payment.id == anna.id
    assert [r.payment.id for r in search_deposits(world.action, "de vries").rows] == [bram.id]
    assert search_deposits(world.action, elsewhere.reference or "").found is Found.OTHER_ACTION
    assert search_deposits(world.action, foreign.reference or "").found is (Found.UNKNOWN_REFERENCE)
    wrong = (anna.reference or "")[:-2] + f"{(int((anna.reference or '')[-2:]) + 1) % 100:02d}"
    assert search_deposits(world.action, wrong).found is Found.CHECK_DIGITS

    staff = app.test_client()
    log_in(staff, world.staff)
    staff.get("/language/en")
    url = f"/desk/actions/{world.action.id}/payments"
    page = staff.get(url, query_string={"q": (anna.reference or "").replace("-", "")})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'id="payment-{anna.id}"' in text and f'id="payment-{bram.id}"' not in text
    assert "1 deposit found" in text
    page = staff.get(url, query_string={"q": wrong}).get_data(as_text=True)
    assert "is not a valid reference" in page and 'id="payment-' not in page
    page = staff.get(url, query_string={"q": elsewhere.reference}).get_data(as_text=True)
    assert f'href="/desk/payments/{elsewhere.id}"' in page
    page = staff.get(url, query_string={"q": foreign.reference}).get_data(as_text=True)
    assert "No deposit of your desk has the reference" in page
    assert f"/desk/payments/{foreign.id}" not in page
    staff.get("/language/nl")
    page = staff.get(url, query_string={"q": "öztürk"}).get_data(as_text=True)
    assert f'id="payment-{anna.id}"' in page and "1 aanbetaling gevonden" in page


def test_the_registrations_list_finds_the_registration_of_a_reference(
    app: Flask, world: World
) -> None:
    anna = accept(quote_for(world, email="anna@example.nl", name="Anna Öztürk"))
    accept(quote_for(world, email="bram@example.nl", name="Bram de Vries"))
    foreign = accept(
        quote_for(world_of(staff=zeist_staff(), slug="zeist"), email="dirk@example.nl", name="Dirk")
    )
    staff = app.test_client()
    log_in(staff, world.staff)
    for copy in copies_of(anna.reference or ""):
        page = staff.get("/desk/registrations/", query_string={"q": copy}).get_data(as_text=True)
        ids = [int(i) for i in re.findall(r'data-registration-id="(\d+)"', page)]
        assert ids == [anna.registration_id], copy
    page = staff.get("/desk/registrations/", query_string={"q": foreign.reference})
    assert 'data-registration-id="' not in page.get_data(as_text=True)


def test_payments_keep_their_received_day_in_the_table(world: World) -> None:
    payment = accept(quote_for(world))
    services.mark_received(world.staff, payment, 25000, received_on=today())
    stored = db.session.scalars(select(Payment.received_on).where(Payment.id == payment.id)).one()
    assert stored == today()
