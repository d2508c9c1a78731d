"""The world of deposits: an action that asks one, installers with accepted orders, residents
with a quote to accept; and the stand-in for Stripe that the app talks to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from coop.accounts.models import Organisation, User
from coop.actions.models import Action, ActionStatus
from coop.core import jobs
from coop.core.time import utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders import fieldwork
from coop.orders.models import (
    Batch,
    LineStatus,
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    Quote,
    QuoteItem,
    RunStatus,
    RunTrigger,
)
from coop.payments.models import Payment
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories
from tests.login import sign_in
from tests.payments.stripe_standin import SECRET_KEY, WEBHOOK_SECRET, SignedEvent, StripeStandIn


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    server = StripeStandIn().start()
    yield server
    server.stop()


def stripe_config(standin: StripeStandIn) -> dict[str, Any]:
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": standin.url,
        "STRIPE_TIMEOUT": 5,
        # A lost answer is an error at once (the tests retry by hand, as the outbox would).
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }


@pytest.fixture
def app_config(standin: StripeStandIn) -> dict[str, Any]:
    """Stripe mode, talking to the stand-in; offline tests override this with {}."""
    return stripe_config(standin)


@dataclass
class World:
    org: Organisation
    staff: User
    action: Action
    installer: Installer
    installer_user: User
    run: MatchingRun
    order: Order

    def resident(self, registration: Registration) -> User:
        return registration.user


def world_of(
    deposit_cents: int | None = 25000,
    deposit_percent: int | None = None,
    *,
    staff: User | None = None,
    slug: str = "samen-isoleren",
) -> World:
    """A closed action asking a deposit, with an installer whose order was accepted; of
    ``staff``'s desk, or of a new desk with a new staff member."""
    if staff is None:
        org = factories.organisation()
        staff = factories.staff(org)
    else:
        org = staff.organisation
        assert org is not None
    act = factories.action(org, slug=slug, status=ActionStatus.CLOSED)
    act.deposit_cents = deposit_cents
    act.deposit_percent = deposit_percent
    act.deposit_iban = "NL91ABNA0417164300"
    act.deposit_account_name = "Energieloket Utrecht"
    installer = factories.installer(
        org, f"Dakwerk {slug}", offers={"roof": (4200, 5)}, kvk="71234567"
    )
    installer_user = factories.installer_user(installer)
    now = utcnow()
    roof = next(m for m in act.measures if m.measure.code == "roof")
    batch = Batch(action_id=act.id, action_measure_id=roof.id, pc4="3521")
    run = MatchingRun(
        action_id=act.id,
        trigger=RunTrigger.STAFF,
        status=RunStatus.APPROVED,
        use_registry_prices=True,
        approved_at=now,
    )
    db.session.add_all([batch, run])
    db.session.flush()
    order = Order(
        action_id=act.id,
        batch_id=batch.id,
        installer_id=installer.id,
        run_id=run.id,
        status=OrderStatus.ACCEPTED,
        unit_price_cents=4200,
        sent_at=now,
        respond_by=now + timedelta(days=5),
        answered_at=now,
    )
    db.session.add(order)
    db.session.commit()
    return World(org, staff, act, installer, installer_user, run, order)


def quote_for(
    world: World,
    *,
    total_excl_vat: int = 200000,
    email: str | None = None,
    name: str = "Anna de Vries",
    language: str = "nl",
) -> Quote:
    """A confirmed household in the world's order with a quote sent to it (VAT 21%)."""
    registration = factories.confirmed_registration(
        world.action, postcode="3521 AB", email=email, name=name
    )
    registration.user.language = language
    wish = registration.measures[0]
    now = utcnow()
    vat = (total_excl_vat * 21 + 50) // 100
    line = OrderLine(
        order_id=world.order.id,
        registration_id=registration.id,
        registration_measure_id=wish.id,
        quantity=wish.quantity,
        status=LineStatus.QUOTED,
        created_at=now,
    )
    line.quotes.append(
        Quote(
            valid_until=local_today(now) + timedelta(days=30),
            total_excl_vat_cents=total_excl_vat,
            vat_cents=vat,
            total_cents=total_excl_vat + vat,
            sent_at=now,
            sent_by_id=world.installer_user.id,
            items=[
                QuoteItem(
                    position=1,
                    description="Dakisolatie",
                    quantity=1,
                    unit_price_cents=total_excl_vat,
                    vat_rate=21,
                )
            ],
        )
    )
    db.session.add(line)
    registration.status = RegistrationStatus.QUOTED
    db.session.commit()
    return line.quotes[0]


def accept(quote: Quote, **kwargs: Any) -> Payment:
    """The resident accepts: the deposit is asked in the same transaction."""
    fieldwork.accept_quote(quote.line.registration.user, quote, **kwargs)
    payment = db.session.scalars(db.select(Payment).where(Payment.quote_id == quote.id)).one()
    return payment


def run_jobs() -> int:
    return jobs.dispatcher().run_pending()


def log_in(client: FlaskClient, user: User) -> None:
    sign_in(client, user.id)


def post_event(client: FlaskClient, event: SignedEvent) -> Any:
    return client.post("/payments/stripe/webhook", data=event.body, headers=event.headers)


@pytest.fixture
def world(ctx: Flask) -> World:
    # The test client's requests run inside this test's app context (Flask reuses it), so they
    # share its ``g``: forget what a request kept there (who was logged in, the CSRF token of
    # that client's session), as a fresh context would.
    @ctx.teardown_request
    def _forget_request(_error: BaseException | None) -> None:
        for name in list(vars(g)):
            g.pop(name, None)

    return world_of()
