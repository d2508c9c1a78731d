"""A household with three measures, each at its own step, built through the services: the roof
surveyed, quoted, accepted, paid, installed, confirmed and rated; the cavity wall quoted; the
heat pump assigned to its installer. And a neighbour with a roof and a heat pump, both assigned.

Times are in the past, relative to now, so the pages (which use the real time) and the
services (which take ``now``) agree: the roof's quote was accepted ``ACCEPTED_DAYS_AGO`` days
ago, inside the cooling-off period, so only its installation stops its withdrawal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.actions.catalogue import ensure_catalogue
from coop.actions.models import Action, ActionMeasure
from coop.core import jobs
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders import fieldwork
from coop.orders import services as orders
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import Order, OrderLine, Quote, RunTrigger
from coop.payments import services as payments
from coop.payments.models import Payment
from coop.registrations.models import Registration
from tests import factories

START_DAYS_AGO = 12
ACCEPTED_DAYS_AGO = 9
DEPOSIT_CENTS = 25000


@dataclass
class Household:
    action: int
    staff: int
    resident: int
    registration: int
    roof: int  # registration measure ids
    cavity: int
    heat_pump: int
    roof_payment: int
    fitters: dict[str, int]  # measure code -> the installer user doing it
    neighbour: int  # the neighbour's registration
    neighbour_resident: int

    def registration_row(self) -> Registration:
        registration = db.session.get(Registration, self.registration)
        assert registration is not None
        return registration

    def user(self, user_id: int) -> User:
        user = db.session.get(User, user_id)
        assert user is not None
        return user

    def line(self, measure_id: int) -> OrderLine:
        line = db.session.scalar(
            select(OrderLine).where(
                OrderLine.registration_measure_id == measure_id, OrderLine.current.is_(True)
            )
        )
        assert line is not None
        return line

    def payment(self, payment_id: int) -> Payment:
        payment = db.session.get(Payment, payment_id)
        assert payment is not None
        return payment


def days_ago(days: float, hour: int = 10) -> datetime:
    day = (utcnow() - timedelta(days=days)).astimezone(AMSTERDAM).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=AMSTERDAM)


def three_measure_action(org: object, slug: str = "samen-isoleren") -> Action:
    act = factories.action(org, slug=slug)  # type: ignore[arg-type]
    measures = ensure_catalogue()
    act.measures.append(
        ActionMeasure(measure=measures["cavity_wall"], position=2, indicative_price_cents=2500)
    )
    act.deposit_cents = DEPOSIT_CENTS
    act.deposit_iban = "NL91ABNA0417164300"
    act.deposit_account_name = "Energieloket Utrecht"
    db.session.commit()
    return act


def send_quote(fitter: User, line: OrderLine, now: datetime, price: int = 400000) -> Quote:
    return fieldwork.send_quote(
        fitter,
        line,
        [QuoteItemInput("Werk volgens opname", 1, price, 21)],
        valid_until=(now + timedelta(days=30)).date(),
        now=now,
    )


def build(
    *, staff_count: int = 2, slug: str = "samen-isoleren", email_domain: str = "example.nl"
) -> Household:
    """Call inside a request context (offline mode: no Stripe keys). ``slug`` and
    ``email_domain`` keep it apart from other data in the same database."""
    org = factories.organisation(f"Energieloket {slug}")
    staff = factories.staff(org, email=f"staff@{email_domain}")
    for n in range(1, staff_count):
        factories.staff(org, email=f"collega{n}@{email_domain}")
    act = three_measure_action(org, slug)
    companies = {
        "roof": factories.installer(org, "Dakwerk Lunetten", offers={"roof": (4000, 5)}),
        "cavity_wall": factories.installer(
            org, "Spouwmuur Utrecht", offers={"cavity_wall": (2500, 5)}
        ),
        "hybrid_heat_pump": factories.installer(
            org, "Warmte Utrecht", offers={"hybrid_heat_pump": (450000, 5)}
        ),
    }
    fitters = {code: factories.installer_user(c) for code, c in companies.items()}
    registration = factories.confirmed_registration(
        act,
        street="Vondellaan",
        number=17,
        measures={"roof": 40, "cavity_wall": 60, "hybrid_heat_pump": 1},
        email=f"anna@{email_domain}",
        name="Anna de Vries",
    )
    neighbour = factories.confirmed_registration(
        act,
        street="Vondellaan",
        number=19,
        measures={"roof": 35, "hybrid_heat_pump": 1},
        email=f"bert@{email_domain}",
        name="Bert Bakker",
    )
    start = days_ago(START_DAYS_AGO, 9)
    actions.close_action(staff, act, now=start)
    run = orders.start_run(staff, act, RunTrigger.STAFF, use_registry_prices=True, now=start)
    assert orders.compute_run(run.id) == "proposed"
    for order in orders.approve_run(staff, run, now=start):
        installer: Installer = order.installer
        fitter = next(f for f in fitters.values() if f.installer_id == installer.id)
        orders.accept_order(fitter, order, now=start)
    by_code = {rm.action_measure.measure.code: rm for rm in registration.measures}
    resident = registration.user

    def line_of(code: str) -> OrderLine:
        line = db.session.scalar(
            select(OrderLine).where(
                OrderLine.registration_measure_id == by_code[code].id,
                OrderLine.current.is_(True),
            )
        )
        assert line is not None
        return line

    # The roof: surveyed, quoted, accepted, paid, installed, confirmed and rated.
    roof_fitter = fitters["roof"]
    roof = line_of("roof")
    fieldwork.plan_survey(roof_fitter, roof, days_ago(11, 14), now=days_ago(12, 12))
    quote = send_quote(roof_fitter, roof, days_ago(10, 16))
    fieldwork.accept_quote(resident, quote, now=days_ago(ACCEPTED_DAYS_AGO, 8))
    payment = payments.deposit_of_quote(quote)
    assert payment is not None
    payments.mark_received(staff, payment, DEPOSIT_CENTS, now=days_ago(8, 11))
    fieldwork.mark_installed(roof_fitter, roof, days_ago(5).date(), now=days_ago(5, 17))
    fieldwork.confirm_installation(
        resident, roof, 5, "Netjes gewerkt en alles opgeruimd.", now=days_ago(4, 20)
    )
    # The cavity wall: quoted, not decided yet. The heat pump: assigned, nothing planned.
    send_quote(fitters["cavity_wall"], line_of("cavity_wall"), days_ago(3, 16), price=150000)
    jobs.dispatcher().run_pending()
    db.session.commit()
    return Household(
        action=act.id,
        staff=staff.id,
        resident=resident.id,
        registration=registration.id,
        roof=by_code["roof"].id,
        cavity=by_code["cavity_wall"].id,
        heat_pump=by_code["hybrid_heat_pump"].id,
        roof_payment=payment.id,
        fitters={code: f.id for code, f in fitters.items()},
        neighbour=neighbour.id,
        neighbour_resident=neighbour.user_id,
    )


def order_of(line: OrderLine) -> Order:
    return line.order
