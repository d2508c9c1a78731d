"""Deposits without Stripe (the embedded default): the bank transfer with a reference, staff
marking what arrived and what they transferred back; and the desk's side: what an action asks,
the overview and the reconciliation export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string
from sqlalchemy import func, select

from coop.actions import services as actions
from coop.actions.models import Action
from coop.core.audit import AuditEntry
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import fieldwork
from coop.orders.models import LineStatus, OrderStatus, QuoteStatus
from coop.payments import services
from coop.payments.models import (
    FlagReason,
    Payment,
    PaymentMode,
    PaymentStatus,
    RefundReason,
    RefundRun,
)
from coop.payments.services import DepositPolicy, PaymentError
from coop.registrations.models import RegistrationStatus
from tests import factories
from tests.payments.conftest import World, accept, log_in, quote_for, run_jobs, world_of


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {}  # no Stripe keys: offline mode


def test_deposit_amounts_fixed_percentage_and_never_more_than_half() -> None:
    act = Action(deposit_cents=25000)
    assert services.deposit_amount(act, 242000) == 25000
    assert services.deposit_amount(act, 30000) == 15000  # at most half the quote
    act.deposit_cents, act.deposit_percent = None, 10
    assert services.deposit_amount(act, 242005) == 24201  # 10%, half a cent rounded up
    act.deposit_percent = None
    assert services.deposit_amount(act, 242000) is None
    assert services.parse_reference(services.reference_for(42)) == 42
    assert services.parse_reference("COOP-000042-00") is None  # a typo in the check digits
    assert services.normalise_iban("nl91 abna 0417 1643 00") == "NL91ABNA0417164300"
    assert services.normalise_iban("NL91ABNA0417164301") is None
    assert services.format_iban("NL91ABNA0417164300") == "NL91 ABNA 0417 1643 00"


def test_offline_the_resident_transfers_with_a_reference_and_staff_mark_it(
    app: Flask, world: World
) -> None:
    payment = accept(quote_for(world, language="en"))
    assert payment.mode is PaymentMode.OFFLINE
    run_jobs()
    request_mail = db.session.scalar(
        select(EmailLog).where(EmailLog.key == f"deposit-requested:{payment.id}")
    )
    assert request_mail is not None and payment.reference in (request_mail.body_text or "")
    assert "NL91 ABNA 0417 1643 00" in (request_mail.body_text or "")

    resident = app.test_client()
    log_in(resident, payment.registration.user)
    page = resident.get(f"/my/payments/{payment.id}").get_data(as_text=True)
    assert payment.reference in page and "NL91 ABNA 0417 1643 00" in page
    # There is no Stripe to go to: the button's address says so instead of failing.
    token = factories.csrf_token(resident, f"/my/payments/{payment.id}")
    refused = resident.post(f"/my/payments/{payment.id}/pay", data={"csrf_token": token})
    assert refused.status_code == 302

    staff = app.test_client()
    log_in(staff, world.staff)
    url = f"/desk/payments/{payment.id}"
    bad = factories.post_form(staff, f"{url}/received", {"amount": "twee"}, token_from=url)
    assert bad.status_code == 200 and 'id="amount-error"' in bad.get_data(as_text=True)
    done = factories.post_form(staff, f"{url}/received", {"amount": "250,00"}, token_from=url)
    assert done.status_code == 302
    db.session.expire_all()
    assert payment.status is PaymentStatus.PAID and payment.received_cents == 25000
    again = factories.post_form(staff, f"{url}/received", {"amount": "250"}, token_from=url)
    assert again.status_code == 409  # received once
    run_jobs()
    assert db.session.scalar(select(EmailLog).where(EmailLog.key == f"deposit-paid:{payment.id}"))
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "payment.received"))

    # Withdrawn within the cooling-off period: the refund waits for staff's transfer.
    registration = payment.registration
    withdrawn = factories.post_form(
        resident, f"/my/registrations/{registration.id}/withdraw", {"reason": "Verhuizing"}
    )
    assert withdrawn.status_code == 302
    db.session.expire_all()
    assert registration.status is RegistrationStatus.WITHDRAWN
    assert payment.status is PaymentStatus.REFUNDING
    assert factories.post_form(staff, f"{url}/refunded", {}, token_from=url).status_code == 302
    db.session.expire_all()
    assert payment.status is PaymentStatus.REFUNDED and payment.refunded_cents == 25000
    run_jobs()
    refunded = db.session.scalar(
        select(EmailLog).where(EmailLog.key == f"deposit-refunded:{payment.id}")
    )
    assert refunded is not None and refunded.language == "en"


def test_another_amount_by_bank_is_flagged_and_sent_back_and_an_unpaid_one_cancelled(
    app: Flask, world: World
) -> None:
    payment = accept(quote_for(world))
    assert services.mark_received(world.staff, payment, 20000) == "flagged: amount"
    assert payment.status is PaymentStatus.FLAGGED
    assert payment.flag_reason is FlagReason.AMOUNT_MISMATCH
    staff = app.test_client()
    log_in(staff, world.staff)
    url = f"/desk/payments/{payment.id}"
    assert factories.post_form(staff, f"{url}/refund", {}, token_from=url).status_code == 302
    assert factories.post_form(staff, f"{url}/refunded", {}, token_from=url).status_code == 302
    db.session.expire_all()
    assert payment.status is PaymentStatus.REFUNDED and payment.refunded_cents == 20000
    # Someone else's staff cannot touch it, whatever they try.
    other = factories.staff(factories.organisation("Energiecoöperatie Zeist"), "zeist@example.nl")
    with pytest.raises(PaymentError):
        services.refund_by_staff(other, payment)

    # Withdrawn before paying: the deposit is no longer due.
    payment = accept(quote_for(world))
    registration = payment.registration
    client = app.test_client()
    log_in(client, registration.user)
    page = client.get(f"/my/registrations/{registration.id}/withdraw").get_data(as_text=True)
    assert f'id="cancel-{payment.id}"' in page
    factories.post_form(client, f"/my/registrations/{registration.id}/withdraw", {"reason": "Nee"})
    db.session.expire_all()
    assert payment.status is PaymentStatus.CANCELLED
    # Money that still arrives is not kept: it goes straight back.
    services.mark_received(world.staff, payment, 25000)
    assert payment.status is PaymentStatus.REFUNDING
    assert payment.refund_reason is RefundReason.NOT_DUE


def test_staff_set_the_deposit_with_messages_at_the_fields(app: Flask, world: World) -> None:
    client = app.test_client()
    log_in(client, world.staff)
    url = f"/desk/actions/{world.action.id}/payments/settings"
    form = {"kind": "percent", "percent": "60", "iban": "NL00 XXXX 1234", "account_name": "Loket"}
    page = factories.post_form(client, url, form).get_data(as_text=True)
    assert 'id="percent-error"' in page and 'id="iban-error"' in page
    assert factories.post_form(client, url, {"kind": "fixed", "amount": ""}).status_code == 200
    ok = factories.post_form(
        client,
        url,
        {
            "kind": "percent",
            "percent": "10%",
            "iban": "nl91abna0417164300",
            "account_name": "Loket",
        },
    )
    assert ok.status_code == 302
    db.session.expire_all()
    act = world.action
    assert (act.deposit_percent, act.deposit_cents, act.deposit_iban) == (
        10,
        None,
        "NL91ABNA0417164300",
    )
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "action.deposit_update"))
    assert entry is not None and entry.after is not None
    assert (entry.after["deposit_percent"], entry.after["deposit_cents"]) == (10, None)
    # Offline, a deposit without an account to transfer to is refused.
    with pytest.raises(PaymentError) as refused:
        services.set_deposit_policy(world.staff, act, DepositPolicy("fixed", amount_cents=100))
    assert refused.value.code == "iban_required"


def test_overview_and_reconciliation_export(app: Flask, world: World) -> None:
    paid = accept(quote_for(world, name="Anna de Vries"))
    services.mark_received(world.staff, paid, 25000)
    flagged = accept(quote_for(world, name="=HYPERLINK(1)"))
    services.mark_received(world.staff, flagged, 100)
    accept(quote_for(world, name="Bram Bakker"))
    figures = services.overview(world.action)
    assert figures.asked.count == 3 and figures.asked.cents == 75000
    assert figures.of(PaymentStatus.PAID).count == 1
    assert figures.of(PaymentStatus.FLAGGED).count == 1
    assert figures.of(PaymentStatus.PENDING).count == 1
    assert figures.received_cents == 25100

    client = app.test_client()
    log_in(client, world.staff)
    page = client.get(f"/desk/actions/{world.action.id}/payments?status=flagged").get_data(
        as_text=True
    )
    assert f'id="payment-{flagged.id}"' in page and f'id="payment-{paid.id}"' not in page
    export = client.get(f"/desk/actions/{world.action.id}/payments/export.csv")
    assert export.status_code == 200
    rows = list(
        csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")), delimiter=";")
    )
    by_reference = {row[1]: row for row in rows[1:]}
    assert by_reference[paid.reference][2] == "paid"
    assert by_reference[paid.reference][7] == "250,00"
    assert by_reference[flagged.reference][4] == "'=HYPERLINK(1)"  # never a formula
    assert by_reference[flagged.reference][11] == "amount_mismatch"
    assert client.get(f"/desk/actions/{world.action.id}/payments/export.xlsx").status_code == 200
    assert client.get(f"/desk/actions/{world.action.id}/payments/export.pdf").status_code == 404


def test_a_percentage_deposit_is_asked_on_the_quote_total(app: Flask, world: World) -> None:
    world.action.deposit_cents, world.action.deposit_percent = None, 10
    db.session.commit()
    quote = quote_for(world, total_excl_vat=200000)  # 2.420,00 incl. VAT
    client = app.test_client()
    log_in(client, quote.line.registration.user)
    page = client.get(f"/my/quotes/{quote.id}").get_data(as_text=True)
    assert 'id="deposit-asked"' in page and "€ 242,00" in page  # said before accepting
    response = factories.post_form(
        client, f"/my/quotes/{quote.id}/accept", {}, token_from=f"/my/quotes/{quote.id}"
    )
    payment = services.deposit_of_quote(quote)
    assert payment is not None and payment.amount_cents == 24200
    # Accepting leads to the deposit page while it is to be paid.
    assert response.headers["Location"] == f"/my/payments/{payment.id}"
    assert services.due_deposit(quote) == payment
    page = client.get(f"/my/quotes/{quote.id}").get_data(as_text=True)
    assert 'id="quote-deposit" data-status="pending"' in page
    # The part the resident's quote page includes.
    shown = render_template_string('{% include "payments/_quote_deposit.html" %}', quote=quote)
    assert f'href="/my/payments/{payment.id}"' in shown and 'data-status="pending"' in shown
    world.action.deposit_percent = None
    db.session.commit()
    quote = quote_for(world)
    fieldwork.accept_quote(quote.line.registration.user, quote)
    assert services.deposit_of_quote(quote) is None
    assert quote.line.registration.status is RegistrationStatus.ACCEPTED


def test_cancelling_the_action_ends_the_work_not_done_and_leaves_installed_work_alone(
    app: Flask, world: World
) -> None:
    """Installed (or confirmed) work is never cancelled and its deposit never refunded: paid
    stays paid, due stays due. The rest ends: unpaid deposits are no longer due, paid ones go
    back by the refund run, open quotes and surveys end with their lines (no reminder later)."""
    today = local_today(utcnow())

    def installed(quote_total: int, *, pay: bool, confirm: bool = False) -> Payment:
        payment = accept(quote_for(world, total_excl_vat=quote_total))
        if pay:
            services.mark_received(world.staff, payment, payment.amount_cents)
        line = payment.quote.line
        fieldwork.mark_installed(world.installer_user, line, today)
        if confirm:
            fieldwork.confirm_installation(line.registration.user, line, 5)
        return payment

    paid_installed = installed(200000, pay=True)
    due_installed = installed(210000, pay=False)
    paid_completed = installed(220000, pay=True, confirm=True)
    paid_open = accept(quote_for(world, total_excl_vat=230000))
    services.mark_received(world.staff, paid_open, paid_open.amount_cents)
    unpaid_open = accept(quote_for(world, total_excl_vat=240000))
    open_quote = quote_for(world, total_excl_vat=250000)
    run_jobs()
    before = db.session.scalar(select(func.count()).select_from(EmailLog))

    actions.cancel_action(world.staff, world.action, "De gemeente stopt de actie")
    run_jobs()
    db.session.expire_all()
    # Installed work: its line, and its deposit, as they were.
    assert paid_installed.status is PaymentStatus.PAID
    assert paid_completed.status is PaymentStatus.PAID
    assert due_installed.status is PaymentStatus.PENDING
    assert paid_installed.quote.line.status is LineStatus.INSTALLED
    assert paid_installed.quote.line.current
    assert paid_completed.quote.line.status is LineStatus.COMPLETED
    # The rest ends.
    assert paid_open.status is PaymentStatus.REFUNDING
    assert paid_open.refund_reason is RefundReason.ACTION_CANCELLED
    assert unpaid_open.status is PaymentStatus.CANCELLED
    assert open_quote.line.status is LineStatus.CANCELLED
    assert open_quote.status is QuoteStatus.EXPIRED  # lapsed: not the resident's no
    [run] = db.session.scalars(select(RefundRun)).all()
    assert {
        p.id for p in db.session.scalars(select(Payment).where(Payment.refund_run_id == run.id))
    } == {paid_open.id}
    # No email about refunding installed work; the resident who still owes it is not told
    # that it is no longer due.
    sent = db.session.scalars(select(EmailLog).order_by(EmailLog.id).offset(before)).all()
    keys = [entry.key for entry in sent]
    for payment in (paid_installed, paid_completed, due_installed):
        assert not [k for k in keys if f":{payment.id}" in k and k.startswith("deposit-")], keys
    # The order holds work done: it stays accepted, and the installer keeps seeing that work
    # (its email says what ends and what stays).
    assert world.order.status is OrderStatus.ACCEPTED
    installer = app.test_client()
    log_in(installer, world.installer_user)
    page = installer.get(f"/installer/orders/{world.order.id}").get_data(as_text=True)
    assert f'id="line-{paid_installed.quote.line.id}" data-status="installed"' in page
    assert f'id="line-{open_quote.line.id}" data-status="cancelled"' in page
    [cancelled] = [e for e in sent if e.key.startswith(f"order-cancelled:{world.order.id}:")][:1]
    assert cancelled.template == "order_cancelled"
    assert "De 3 woningen waar je het werk hebt uitgevoerd blijven" in (cancelled.body_text or "")
    # The installer can still be confirmed for the installed work; "refund all" again finds
    # nothing to refund (the installed work's deposits are not part of it).
    fieldwork.confirm_installation(
        paid_installed.quote.line.registration.user, paid_installed.quote.line, 4
    )
    services.mark_refunded(world.staff, paid_open)
    with pytest.raises(PaymentError):
        services.refund_all_again(world.staff, world.action)
    # Later scheduler rounds remind nobody of the quote that ended with its line.
    assert fieldwork.remind_open_quotes(utcnow() + timedelta(days=29)) == 0
    assert fieldwork.expire_quotes(utcnow() + timedelta(days=40)) == 0
    # An order with no work done is cancelled as a whole.
    zeist = factories.staff(factories.organisation("Energiecoöperatie Zeist"), "zeist@example.nl")
    other = world_of(staff=zeist, slug="ander-dak")
    quote_for(other)
    actions.cancel_action(other.staff, other.action, "Geen installateur meer")
    db.session.expire_all()
    assert other.order.status is OrderStatus.CANCELLED


def test_an_erased_residents_installed_work_keeps_its_deposit_when_the_action_is_cancelled(
    world: World,
) -> None:
    """Erasure detaches the person, not the work: the deposit still knows its quote (and so
    that the work was installed), and cancelling the action later refunds nothing for it."""
    from coop.residents import services as residents

    today = local_today(utcnow())
    payment = accept(quote_for(world, total_excl_vat=200000))
    services.mark_received(world.staff, payment, payment.amount_cents)
    line = payment.quote.line
    fieldwork.mark_installed(world.installer_user, line, today)
    resident = line.registration.user
    run_jobs()

    residents.erase_resident(resident)
    run_jobs()
    db.session.expire_all()
    assert payment.registration_id is None
    assert payment.quote is not None and payment.quote.line.status is LineStatus.INSTALLED

    actions.cancel_action(world.staff, world.action, "De gemeente stopt de actie")
    run_jobs()
    db.session.expire_all()
    assert payment.status is PaymentStatus.PAID
    assert payment.refund_run_id is None
