"""Each measure of a household carries its own lifecycle (issue #12, defects 2 and 4, and the
cooling-off moment of defect 14): an installed measure is never withdrawn and its deposit never
refunded; the others can be, one by one; the cooling-off period counts from the acceptance of
the quote; offline refunds become a task for staff; an erasure in the middle of the work ends
it through the same withdrawal first. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from coop.core import jobs
from coop.core.models import EmailLog, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders import fieldwork
from coop.orders import services as orders
from coop.orders.models import LineStatus, OrderLine, QuoteStatus, Review
from coop.payments import services as payments
from coop.payments.models import Payment, PaymentChange, PaymentStatus, RefundReason
from coop.registrations import services
from coop.registrations.models import Registration, RegistrationMeasure, RegistrationStatus
from coop.residents import services as residents
from tests import factories
from tests.login import sign_in
from tests.registrations.household_world import (
    DEPOSIT_CENTS,
    Household,
    build,
    days_ago,
    send_quote,
)


@pytest.fixture
def house(app: Flask, client: FlaskClient) -> Household:
    with app.test_request_context():
        built = build()
    client.get("/language/en")
    return built


def log_in(client: FlaskClient, user_id: int) -> None:
    sign_in(client, user_id)


def page(response: Any) -> str:
    body: str = response.get_data(as_text=True)
    return body


def count(model: type[Any], *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def refund_asked(payment_id: int) -> bool:
    """Any sign that a refund was asked for this deposit, now or ever."""
    return bool(
        count(
            PaymentChange,
            PaymentChange.payment_id == payment_id,
            PaymentChange.to_status.in_((PaymentStatus.REFUNDING, PaymentStatus.REFUNDED)),
        )
    )


def run_jobs() -> None:
    jobs.dispatcher().run_pending()


# --- an installed measure is never withdrawn, and its deposit never refunded -------------------


def test_the_installed_roof_cannot_be_withdrawn_and_its_deposit_is_not_refunded(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    log_in(client, house.resident)
    url = f"/my/registrations/{house.registration}/withdraw"
    withdraw_page = page(client.get(url))
    with app.app_context():
        payment = house.payment(house.roof_payment)
        assert payment.status is PaymentStatus.PAID
    # The page offers the two measures still going, never the roof, and promises no refund.
    assert f'id="refund-{house.roof_payment}"' not in withdraw_page
    assert f'id="plan-{house.roof}"' in withdraw_page
    roof_plan = withdraw_page.split(f'id="plan-{house.roof}"', 1)[1].split("</li>", 1)[0]
    assert f'value="{house.roof}"' not in withdraw_page
    assert f'value="{house.cavity}"' in withdraw_page
    assert f'value="{house.heat_pump}"' in withdraw_page
    assert "can no longer be withdrawn" in roof_plan
    assert f'id="kept-{house.roof_payment}"' in roof_plan
    assert f'id="refund-{house.roof_payment}"' not in withdraw_page
    assert "back" not in withdraw_page.split('id="measure-plans"', 1)[1].split("</ul>", 1)[0]

    # Posting the roof anyway (an old tab, a crafted form) is refused and changes nothing.
    refused = factories.post_form(
        client, url, {"reason": "Te duur", "measures": [house.roof]}, token_from=url
    )
    assert refused.status_code == 200
    assert "Choose among the measures that can be withdrawn." in page(refused)
    # The old form without a choice: with several measures, nothing is withdrawn either.
    unchosen = factories.post_form(client, url, {"reason": "Te duur"})
    assert unchosen.status_code == 200
    with app.app_context():
        registration = house.registration_row()
        assert registration.status is not RegistrationStatus.WITHDRAWN
        assert all(rm.withdrawn_at is None for rm in registration.measures)
        assert house.line(house.roof).status is LineStatus.COMPLETED
        assert house.payment(house.roof_payment).status is PaymentStatus.PAID
        assert not refund_asked(house.roof_payment)

    # The service refuses it too, whoever asks.
    with app.test_request_context():
        registration = house.registration_row()
        with pytest.raises(services.RegistrationError) as refusal:
            residents.withdraw(
                registration,
                "Te duur",
                actor=house.user(house.resident),
                measure_ids=[house.roof],
            )
        assert refusal.value.code == "not_withdrawable"
        db.session.rollback()
        staff = house.user(house.staff)
        with pytest.raises(services.RegistrationError):
            residents.withdraw(registration, "Belde", actor=staff, measure_ids=[house.roof])
        db.session.rollback()
        # And a refund for installed work is refused at the last line as well.
        with pytest.raises(payments.PaymentError):
            payments.request_refund(
                None, house.payment(house.roof_payment), RefundReason.WITHDRAWN, now=utcnow()
            )
        db.session.rollback()

    # The other two can be withdrawn: the roof stays completed, its deposit paid.
    done = factories.post_form(
        client, url, {"reason": "Toch niet", "measures": [house.cavity, house.heat_pump]}
    )
    assert done.status_code == 302
    with app.test_request_context():
        run_jobs()
        registration = house.registration_row()
        assert registration.status is RegistrationStatus.COMPLETED  # a summary: the roof
        withdrawn = {rm.id for rm in registration.measures if rm.withdrawn_at is not None}
        assert withdrawn == {house.cavity, house.heat_pump}
        assert house.line(house.roof).status is LineStatus.COMPLETED
        assert house.line(house.cavity).status is LineStatus.WITHDRAWN
        assert house.line(house.heat_pump).status is LineStatus.WITHDRAWN
        # The cavity wall's open quote is answered: no reminder or expiry follows.
        assert house.line(house.cavity).quotes[-1].status is QuoteStatus.DECLINED
        payment = house.payment(house.roof_payment)
        assert payment.status is PaymentStatus.PAID and payment.refund_requested_at is None
        assert not refund_asked(house.roof_payment)
        assert count(OutboxJob, OutboxJob.key.like("payment-refund:%")) == 0
        assert count(OutboxJob, OutboxJob.key.like("refund-to-transfer:%")) == 0
        # The installers of the two measures are told, the roofer is not.
        told = {
            e.key.rsplit(":", 1)[0]
            for e in db.session.scalars(
                select(EmailLog).where(EmailLog.key.like("household-withdrawn:%"))
            )
        }
        assert told == {
            f"household-withdrawn:{house.line(house.cavity).id}",
            f"household-withdrawn:{house.line(house.heat_pump).id}",
        }
        # The resident hears what was withdrawn and that the rest goes on; the desk hears.
        [mail] = db.session.scalars(
            select(EmailLog).where(EmailLog.template == "measures_withdrawn")
        ).all()
        assert mail.recipient == "anna@example.nl"
        assert "Cavity wall insulation" in (mail.body_text or "") or "Spouwmuur" in (
            mail.body_text or ""
        )
        desk = db.session.scalars(
            select(EmailLog).where(EmailLog.template == "withdrawal_desk")
        ).all()
        assert len(desk) == 2  # both staff members of the desk
        # The history says which measure went when.
        measure_changes = [c for c in registration.history if c.registration_measure_id]
        assert {c.registration_measure_id for c in measure_changes} == withdrawn
    # Nothing is left to withdraw: the page is no longer offered.
    again = client.get(url)
    assert again.status_code == 302
    detail = page(client.get(f"/my/registrations/{house.registration}"))
    assert f'href="{url}"' not in detail


def test_withdrawing_every_measure_still_going_withdraws_the_registration(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    """The neighbour: roof and heat pump both assigned. One alone leaves the other going (and
    out of the next matching only that one); both withdraw the registration."""
    log_in(client, house.neighbour_resident)
    url = f"/my/registrations/{house.neighbour}/withdraw"
    with app.app_context():
        measures = {
            rm.action_measure.measure.code: rm.id
            for rm in db.session.get(Registration, house.neighbour).measures  # type: ignore[union-attr]
        }
    first = factories.post_form(
        client, url, {"reason": "Geen warmtepomp", "measures": [measures["hybrid_heat_pump"]]}
    )
    assert first.status_code == 302
    with app.app_context():
        registration = db.session.get(Registration, house.neighbour)
        assert registration is not None
        assert registration.status is RegistrationStatus.ASSIGNED
        lines = {line.registration_measure_id: line for line in orders.current_lines(registration)}
        assert lines[measures["hybrid_heat_pump"]].status is LineStatus.WITHDRAWN
        assert lines[measures["roof"]].status is LineStatus.ASSIGNED
    second = factories.post_form(client, url, {"reason": "Verhuizen"})  # one left: no choice
    assert second.status_code == 302
    with app.app_context():
        registration = db.session.get(Registration, house.neighbour)
        assert registration is not None
        assert registration.status is RegistrationStatus.WITHDRAWN
        assert registration.withdrawal_reason == "Verhuizen"
        assert all(rm.withdrawn_at is not None for rm in registration.measures)


# --- the cooling-off period counts from the acceptance of the quote ----------------------------


def accepted_and_paid(
    house: Household, *, accepted_days_ago: float, paid_days_ago: float
) -> tuple[Registration, Payment]:
    """The neighbour's roof: quoted, accepted then, its deposit transferred later."""
    registration = db.session.get(Registration, house.neighbour)
    assert registration is not None
    roof = next(rm for rm in registration.measures if rm.action_measure.measure.code == "roof")
    line = house.line(roof.id)
    quote = send_quote(house.user(house.fitters["roof"]), line, days_ago(accepted_days_ago + 1, 16))
    fieldwork.accept_quote(
        house.user(house.neighbour_resident), quote, now=days_ago(accepted_days_ago, 9)
    )
    payment = payments.deposit_of_quote(quote)
    assert payment is not None
    payments.mark_received(
        house.user(house.staff), payment, DEPOSIT_CENTS, now=days_ago(paid_days_ago, 11)
    )
    return registration, payment


def test_the_cooling_off_period_counts_from_accepting_not_from_paying(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    """Accepted 20 days ago and paid 10 days ago. Counted from the acceptance, as the rule says,
    the period ended 6 days ago; counted from the payment (or from the later of both) the
    resident could still withdraw and get the deposit back."""
    with app.test_request_context():
        registration, payment = accepted_and_paid(house, accepted_days_ago=20, paid_days_ago=10)
        payment_id = payment.id
        roof = next(
            rm.id for rm in registration.measures if rm.action_measure.measure.code == "roof"
        )
        assert payment.paid_at == days_ago(10, 11)

    # On the page: the roof is not offered and no refund is promised; withdrawing what is
    # offered (the heat pump) leaves the roof and its deposit alone.
    log_in(client, house.neighbour_resident)
    url = f"/my/registrations/{house.neighbour}/withdraw"
    offer = page(client.get(url))
    assert f'id="refund-{payment_id}"' not in offer and f'value="{roof}"' not in offer
    assert f'id="cooling-off-ended-{roof}"' in offer
    assert factories.post_form(client, url, {"reason": "Te laat"}).status_code == 302
    with app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment is not None and payment.status is PaymentStatus.PAID
        assert not refund_asked(payment_id)
        assert house.line(roof).status is LineStatus.ACCEPTED
        registration = db.session.get(Registration, house.neighbour)
        assert registration is not None
        assert registration.status is RegistrationStatus.ACCEPTED
        assert not residents.can_withdraw(registration)
    assert client.get(url).status_code == 302  # nothing left to offer

    # The rule at the edges. Imported here, so that this module also runs (and fails by its
    # assertions) on code without it.
    from coop.residents import withdrawal

    with app.test_request_context():
        registration = db.session.get(Registration, house.neighbour)
        assert registration is not None
        accepted = days_ago(20, 9)

        def roof_plan(now: Any) -> Any:
            return next(
                p for p in withdrawal.measure_plans(registration, now) if p.measure.id == roof
            )

        inside = roof_plan(accepted + timedelta(days=13))
        assert inside.withdrawable
        assert inside.deposit_effect is payments.WithdrawalEffect.REFUNDED
        assert inside.cooling_off_until == accepted + timedelta(days=14)
        # A day after the period: refused, though the deposit was paid only five days before.
        after = roof_plan(accepted + timedelta(days=15))
        assert after.refusal is withdrawal.Refusal.COOLING_OFF_ENDED
        assert after.deposit_effect is payments.WithdrawalEffect.KEPT


def test_within_the_cooling_off_period_the_deposit_comes_back_and_staff_get_one_task(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    """Accepted 13 days ago, paid 3 days ago: still within the period. Offline mode: the refund
    is a bank transfer staff make, so each of the desk's staff gets one email for it and it
    shows on the desk's start page and the action's deposits page until it is marked done."""
    with app.test_request_context():
        registration, payment = accepted_and_paid(house, accepted_days_ago=13, paid_days_ago=3)
        payment_id = payment.id
        roof = next(
            rm.id for rm in registration.measures if rm.action_measure.measure.code == "roof"
        )
    log_in(client, house.neighbour_resident)
    url = f"/my/registrations/{house.neighbour}/withdraw"
    offer = page(client.get(url))
    assert f'id="refund-{payment_id}"' in offer
    response = factories.post_form(client, url, {"reason": "Toch niet", "measures": [roof]})
    assert response.status_code == 302
    with app.test_request_context():
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        assert payment.status is PaymentStatus.REFUNDING
        assert payment.refund_reason is RefundReason.WITHDRAWN
        run_jobs()
        run_jobs()  # a second round sends nothing again
        keys = [
            e.key
            for e in db.session.scalars(
                select(EmailLog).where(EmailLog.template == "refund_to_transfer")
            )
        ]
        assert len(keys) == 2 == len(set(keys))  # once per staff member
        assert all(k.startswith(f"refund-to-transfer:{payment_id}:1:") for k in keys)
        assert [
            r.payment.id for r in payments.refunds_to_transfer(payment.action.organisation_id)
        ] == [payment_id]
    log_in(client, house.staff)
    home = page(client.get("/desk/"))
    assert f'id="to-transfer-{payment_id}"' in home
    overview = page(client.get(f"/desk/actions/{house.action}/payments"))
    assert f'id="to-transfer-{payment_id}"' in overview
    with app.test_request_context():
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        payments.mark_refunded(house.user(house.staff), payment)
    assert f'id="to-transfer-{payment_id}"' not in page(client.get("/desk/"))


def test_staff_withdraw_a_measure_on_the_residents_behalf_with_the_same_rules(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    log_in(client, house.staff)
    detail_url = f"/desk/registrations/{house.registration}"
    detail = page(client.get(detail_url))
    assert 'id="withdraw-form"' in detail
    form = detail.split('id="withdraw-form"', 1)[1].split("</form>", 1)[0]
    assert f'value="{house.roof}"' not in form and f'value="{house.heat_pump}"' in form
    url = f"/desk/registrations/{house.registration}/withdraw"
    refused = factories.post_form(
        client, url, {"reason": "Belde", "measures": [house.roof]}, token_from=detail_url
    )
    assert refused.status_code == 200
    assert "Choose among the measures that can be withdrawn." in page(refused)
    done = factories.post_form(
        client, url, {"reason": "Belde af", "measures": [house.heat_pump]}, token_from=detail_url
    )
    assert done.status_code == 302
    with app.app_context():
        assert house.line(house.heat_pump).status is LineStatus.WITHDRAWN
        assert house.line(house.roof).status is LineStatus.COMPLETED
        assert house.payment(house.roof_payment).status is PaymentStatus.PAID


# --- erasing the account in the middle of the work ---------------------------------------------


def test_erasing_mid_work_ends_the_work_first_and_keeps_the_installed_work_detached(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    """The cavity wall's quote accepted, its deposit not paid; the roof installed and paid; the
    heat pump assigned. The erase page says what ends; erasing ends it (deposit cancelled,
    installers and desk told, lines ended) and keeps the roof's work and money without her."""
    with app.test_request_context():
        cavity_line = house.line(house.cavity)
        quote = cavity_line.quotes[-1]
        fieldwork.accept_quote(house.user(house.resident), quote, now=days_ago(1, 9))
        cavity_payment = payments.deposit_of_quote(quote)
        assert cavity_payment is not None and cavity_payment.status is PaymentStatus.PENDING
        ids = {
            "cavity_payment": cavity_payment.id,
            "cavity_line": cavity_line.id,
            "roof_line": house.line(house.roof).id,
            "heat_pump_line": house.line(house.heat_pump).id,
            "cavity_order": cavity_line.order_id,
        }
        run_jobs()
    log_in(client, house.resident)
    erase_page = page(client.get("/my/erase"))
    # Before confirming, the page says which deposit is no longer due and what stays.
    assert f'id="cancel-{ids["cavity_payment"]}"' in erase_page
    ends = erase_page.split('id="what-erasing-ends"', 1)[1].split("</section>", 1)[0]
    assert f'id="cancel-{ids["cavity_payment"]}"' in ends
    assert "Spouwmuur Utrecht" in ends and "Warmte Utrecht" in ends  # installers told
    assert f'id="installed-{house.roof}"' in ends
    assert f'id="refund-{house.roof_payment}"' not in ends

    erased = factories.post_form(client, "/my/erase", {"confirm": "y"})
    assert erased.status_code == 302
    with app.test_request_context():
        run_jobs()
        assert db.session.get(Registration, house.registration) is None
        cavity = db.session.get(Payment, ids["cavity_payment"])
        assert cavity is not None and cavity.status is PaymentStatus.CANCELLED
        assert cavity.registration_id is None
        roof_payment = house.payment(house.roof_payment)
        assert roof_payment.status is PaymentStatus.PAID and roof_payment.registration_id is None
        assert not refund_asked(house.roof_payment)
        lines = {
            i: db.session.get(OrderLine, ids[i])
            for i in ("cavity_line", "roof_line", "heat_pump_line")
        }
        assert all(line is not None and line.registration_id is None for line in lines.values())
        assert lines["cavity_line"].status is LineStatus.WITHDRAWN  # type: ignore[union-attr]
        assert lines["heat_pump_line"].status is LineStatus.WITHDRAWN  # type: ignore[union-attr]
        assert lines["roof_line"].status is LineStatus.COMPLETED  # type: ignore[union-attr]
        review = db.session.scalar(select(Review).where(Review.line_id == ids["roof_line"]))
        assert review is not None and review.rating == 5 and review.comment == ""
        told = {
            e.key.rsplit(":", 1)[0]
            for e in db.session.scalars(
                select(EmailLog).where(EmailLog.key.like("household-withdrawn:%"))
            )
        }
        assert told == {
            f"household-withdrawn:{ids['cavity_line']}",
            f"household-withdrawn:{ids['heat_pump_line']}",
        }
        installer_mail = db.session.scalars(
            select(EmailLog).where(EmailLog.key.like(f"household-withdrawn:{ids['cavity_line']}:%"))
        ).first()
        assert installer_mail is not None and "Vondellaan" not in (installer_mail.body_text or "")
        desk = db.session.scalars(
            select(EmailLog).where(EmailLog.template == "withdrawal_desk")
        ).all()
        assert len(desk) == 2
        assert all("Vondellaan" not in (e.body_text or "") for e in desk)
        assert (
            count(RegistrationMeasure, RegistrationMeasure.registration_id == house.registration)
            == 0
        )
    # The installer's order still shows the line, without the person.
    with app.app_context():
        fitter = house.fitters["cavity_wall"]
    log_in(client, fitter)
    order_page = page(client.get(f"/installer/orders/{ids['cavity_order']}"))
    card = order_page.split(f'id="line-{ids["cavity_line"]}"', 1)[1].split("</li>", 1)[0]
    assert 'data-detached="yes"' in card and "Vondellaan" not in card


def test_sqlite_enforces_foreign_keys(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL always enforces them")
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_erasing_within_the_cooling_off_period_refunds_a_paid_deposit(
    app: Flask, house: Household
) -> None:
    with app.test_request_context():
        registration, payment = accepted_and_paid(house, accepted_days_ago=5, paid_days_ago=4)
        payment_id = payment.id
        residents.erase_resident(registration.user)
        run_jobs()
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        assert payment.status is PaymentStatus.REFUNDING and payment.registration_id is None
        assert [
            r.payment.id for r in payments.refunds_to_transfer(payment.action.organisation_id)
        ] == [payment_id]
        transfer = db.session.scalars(
            select(EmailLog).where(EmailLog.template == "refund_to_transfer")
        ).all()
        assert len(transfer) == 2
        assert all(re.search(r"erased|verwijderd", e.body_text or "") for e in transfer)
        assert all("Vondellaan" not in (e.body_text or "") for e in transfer)


def test_the_timeline_shows_each_measures_own_progress(
    app: Flask, client: FlaskClient, house: Household
) -> None:
    log_in(client, house.resident)
    detail = page(client.get(f"/my/registrations/{house.registration}"))
    for measure in (house.roof, house.cavity, house.heat_pump):
        assert f'id="progress-{house.registration}-{measure}"' in detail

    def section(measure_id: int) -> str:
        return detail.split(f'id="progress-{house.registration}-{measure_id}"', 1)[1].split(
            "</ol>", 1
        )[0]

    roof = section(house.roof)
    assert "still to come" not in roof
    assert roof.count("step-done") + roof.count("step-current") == 6  # all six steps done
    assert "step-current" in roof.split("Completed", 1)[0].rsplit("<li", 1)[1]
    cavity = section(house.cavity)
    assert "Quote received" in cavity and "still to come" in cavity
    heat_pump = section(house.heat_pump)
    todo = re.findall(r'class="step-todo">.*?step-label">([^<]+)<', heat_pump, re.S)
    assert "Installed" in todo and "Installer assigned" not in todo
    mine = page(client.get("/my"))
    assert f'id="progress-{house.registration}-{house.roof}"' in mine


def test_a_measure_withdrawn_before_matching_stays_withdrawn_when_details_change(
    app: Flask, client: FlaskClient
) -> None:
    """Still open for registration: the heat pump withdrawn alone is not ticked on the edit
    form, saving the details keeps it withdrawn, and it is left out of the group price."""
    with app.test_request_context():
        act = factories.action()
        registration = factories.confirmed_registration(
            act, measures={"roof": 40, "hybrid_heat_pump": 1}, email="carla@example.nl"
        )
        ids = {rm.action_measure.measure.code: rm for rm in registration.measures}
        heat_pump, roof_offer = ids["hybrid_heat_pump"].id, ids["roof"].action_measure_id
        heat_pump_offer = ids["hybrid_heat_pump"].action_measure_id
        registration_id, user_id = registration.id, registration.user_id
        residents.withdraw(
            registration, "Alleen het dak", actor=registration.user, measure_ids=[heat_pump]
        )
        assert services.participants_by_measure(act) == {roof_offer: 1}
    log_in(client, user_id)
    url = f"/my/registrations/{registration_id}/edit"
    form = page(client.get(url))

    def ticked(offer: int) -> bool:
        [box] = re.findall(rf'<input[^>]*id="measure_{offer}"[^>]*>', form)
        return " checked" in box

    assert ticked(roof_offer) and not ticked(heat_pump_offer)
    saved = factories.post_form(
        client,
        url,
        {
            "name": "Carla",
            "dwelling_type": "terraced",
            "build_year": "1978",
            "ownership": "owner",
            f"measure_{roof_offer}": "y",
            f"quantity_{roof_offer}": "45",
        },
    )
    assert saved.status_code == 302, page(saved)
    with app.app_context():
        registration = db.session.get(Registration, registration_id)
        assert registration is not None
        by_id = {rm.id: rm for rm in registration.measures}
        assert by_id[heat_pump].withdrawn_at is not None
        assert registration.status is RegistrationStatus.CONFIRMED
