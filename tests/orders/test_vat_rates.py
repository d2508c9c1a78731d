"""VAT rates are data, each desk's own: which rates apply on a day (the first and the last day
both included), a quote uses only the rates its action's desk has for the day it is sent, the
quote form offers only today's rates, and a desk's admins add rates and set their last day on
the desk, with their source, in the audit log; no other desk can change them; bad input is
refused at its field and changes nothing; the past is never rewritten."""

from __future__ import annotations

import importlib.util
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import Organisation, User
from coop.core.audit import AuditEntry
from coop.core.time import AMSTERDAM, utcnow
from coop.core.workdays import local_today
from coop.extensions import db
from coop.orders import fieldwork, services, vat_rates
from coop.orders.fieldwork import QuoteItemInput
from coop.orders.models import Quote, QuoteItem, VatRate
from coop.orders.services import OrderError
from coop.orders.vat_rates import VatRateDetails
from tests import factories
from tests.login import sign_in
from tests.orders.world import World, build, local, quote_sent


def today() -> date:
    return local_today(utcnow())


def desk(org_id: int) -> Organisation:
    found = db.session.get(Organisation, org_id)
    assert found is not None
    return found


def percent_of(rate_percent: int, org_id: int) -> VatRate:
    return next(rate for rate in factories.vat_rates(desk(org_id)) if rate.percent == rate_percent)


def count_rates(org_id: int) -> int:
    return len(factories.vat_rates(desk(org_id)))


def count_audit() -> int:
    return int(db.session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


@pytest.fixture
def people(app: Flask) -> dict[str, int]:
    """A desk admin and a colleague of one desk, an admin of another, a resident, an installer
    user."""
    with app.app_context():
        org = factories.organisation()
        other = factories.organisation("Energiecoöperatie Zeist")
        admin = factories.staff(org, "admin@example.nl")
        admin.is_desk_admin = True
        admin.name = "Dirk Beheer"
        colleague = factories.staff(org, "colleague@example.nl")
        other_admin = factories.staff(other, "admin@zeist.example")
        other_admin.is_desk_admin = True
        resident = User(email="resident@example.nl", name="Rita Resident")
        db.session.add(resident)
        company = factories.installer(org)
        fitter = factories.installer_user(company)
        db.session.commit()
        return {
            "desk": org.id,
            "other_desk": other.id,
            "admin": admin.id,
            "colleague": colleague.id,
            "other_admin": other_admin.id,
            "resident": resident.id,
            "installer": fitter.id,
        }


def user(user_id: int) -> User:
    found = db.session.get(User, user_id)
    assert found is not None
    return found


def details(**overrides: Any) -> VatRateDetails:
    values: dict[str, Any] = {
        "percent": 12,
        "name_nl": "Nieuw verlaagd tarief",
        "name_en": "New reduced rate",
        "source": "https://www.belastingdienst.nl/btw-tarieven",
        "valid_from": today() + timedelta(days=30),
        "valid_until": None,
    }
    values.update(overrides)
    return VatRateDetails(**values)


# --- which rates apply on a day ----------------------------------------------------------------


def test_a_new_desk_starts_with_the_three_dutch_rates_with_their_source(ctx: Flask) -> None:
    org = factories.organisation()
    rates = vat_rates.rates_on(org.id, today())
    assert [rate.percent for rate in rates] == [21, 9, 0]
    assert all(rate.source.startswith("https://www.belastingdienst.nl/") for rate in rates)
    assert all(rate.valid_until is None for rate in rates)
    assert percent_of(9, org.id).valid_from == date(2019, 1, 1)
    nine = percent_of(9, org.id)
    assert "isoleren" in nine.name_nl and "insulating" in nine.name_en


def test_the_migration_seeded_the_desks_there_were_with_what_a_new_desk_starts_with() -> None:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0018_vat_rates.py"
    spec = importlib.util.spec_from_file_location("migration_0018_vat_rates", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.SOURCE == vat_rates.STARTING_SOURCE
    assert [tuple(rate) for rate in vat_rates.STARTING_RATES] == migration.RATES


def test_a_rate_applies_from_its_first_day_through_its_last_day(ctx: Flask) -> None:
    org = factories.organisation()
    first, last = date(2031, 1, 1), date(2031, 12, 31)
    factories.vat_rate(org, 15, first, last)
    assert 15 not in vat_rates.percents_on(org.id, first - timedelta(days=1))
    assert 15 in vat_rates.percents_on(org.id, first)
    assert 15 in vat_rates.percents_on(org.id, last)
    assert 15 not in vat_rates.percents_on(org.id, last + timedelta(days=1))
    # Without a last day: until further notice.
    factories.vat_rate(org, 7, first)
    assert 7 in vat_rates.percents_on(org.id, date(2099, 1, 1))


def test_rates_are_offered_highest_first_and_each_percentage_once(ctx: Flask) -> None:
    org = factories.organisation()
    assert vat_rates.percents_on(org.id, today()) == [21, 9, 0]
    with pytest.raises(OrderError) as refused:
        vat_rates.check_quote_rates([21, 6], org.id, today())
    assert refused.value.code == "vat_rate"
    vat_rates.check_quote_rates([21, 9, 0, 9], org.id, today())


def test_a_desk_has_its_own_rates_and_another_desk_keeps_its_own(
    ctx: Flask, people: dict[str, int]
) -> None:
    mine, theirs = people["desk"], people["other_desk"]
    vat_rates.end_rate(user(people["admin"]), percent_of(9, mine), today())
    vat_rates.add_rate(user(people["admin"]), details(percent=12))
    later = today() + timedelta(days=30)
    assert vat_rates.percents_on(mine, later) == [21, 12, 0]
    assert vat_rates.percents_on(theirs, later) == [21, 9, 0]
    with pytest.raises(OrderError):
        vat_rates.check_quote_rates([12], theirs, later)


# --- the quote uses the rates of the day it is sent -------------------------------------------


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    with app.test_request_context():
        built = build()
    client.get("/language/en")
    return built


def test_a_quote_is_refused_a_rate_that_has_ended_and_takes_a_new_one_once_added(
    app: Flask, world: World, people: dict[str, int]
) -> None:
    tomorrow = local(today() + timedelta(days=1))
    with app.test_request_context():
        staff = world.user(world.staff)  # of the action's desk (the service asks no role)
        assert staff.organisation_id is not None
        # The law changes: 9% applies through today, 10% from tomorrow.
        vat_rates.end_rate(staff, percent_of(9, staff.organisation_id), today())
        vat_rates.add_rate(staff, details(percent=10, valid_from=today() + timedelta(days=1)))
        line = world.line_of(world.registrations_x[0])
        fitter = world.user(world.user_x)
        services.accept_order(fitter, line.order, now=utcnow())

        def send(rate: int, now: Any) -> Quote:
            return fieldwork.send_quote(
                fitter,
                world.line_of(world.registrations_x[0]),
                [QuoteItemInput("Arbeid dakisolatie", 40, 2000, rate)],
                valid_until=(now + timedelta(days=14)).astimezone(AMSTERDAM).date(),
                now=now,
            )

        with pytest.raises(OrderError) as refused:
            send(9, tomorrow)
        assert refused.value.code == "vat_rate"
        db.session.rollback()
        with pytest.raises(OrderError):
            send(10, utcnow())  # not yet
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0
        quote = send(10, tomorrow)
        assert [item.vat_rate for item in quote.items] == [10]
        assert quote.vat_cents == 8000
        # Today 9% still applies.
        assert send(9, utcnow()).items[0].vat_rate == 9


def quote_page(client: FlaskClient, world: World) -> tuple[str, str]:
    with client.application.app_context():
        line = world.line_of(world.registrations_x[0])
        if line.order.status.value == "sent":
            services.accept_order(world.user(world.user_x), line.order, now=utcnow())
        url = f"/installer/lines/{line.id}/quote"
    sign_in(client, world.user_x)
    return url, client.get(url).get_data(as_text=True)


def vat_options(page: str) -> list[str]:
    select_html = re.search(r'<select[^>]*name="vat_0".*?</select>', page, re.DOTALL)
    assert select_html, "no VAT choice on the quote form"
    return re.findall(r'<option[^>]*value="(\d+)"', select_html.group(0))


def test_the_quote_form_offers_only_the_rates_that_apply_today(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        org = desk(world.user(world.staff).organisation_id or 0)
        factories.vat_rate(org, 6, date(2001, 1, 1), date(2018, 12, 31))  # ended
        factories.vat_rate(org, 12, today() + timedelta(days=1))  # not yet
        factories.vat_rate(org, 5, date(2020, 1, 1), today(), name_en="Last day today")
        # Another desk's rate is not this action's.
        factories.vat_rate(factories.organisation("Elders"), 13, date(2020, 1, 1))
    url, page = quote_page(client, world)
    assert vat_options(page) == ["21", "9", "5", "0"]
    assert "21% – Standard rate" in page and "5% – Last day today" in page
    assert re.search(r'<option selected value="21">|<option value="21" selected', page)

    # A rate that is not in the list (ended) is refused at its row; nothing is sent.
    response = factories.post_form(
        client,
        url,
        {
            "description_0": "Dakisolatie",
            "quantity_0": "40",
            "price_0": "40",
            "vat_0": "6",
            "valid_until": (today() + timedelta(days=14)).isoformat(),
            "send": "1",
        },
    )
    page = response.get_data(as_text=True)
    assert "Choose one of the VAT rates in the list." in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0


def test_the_refusal_names_no_rates_of_its_own(app: Flask) -> None:
    from coop.orders.portal_views import MESSAGES

    for language, words in (("en", "in the list"), ("nl", "uit de lijst")):
        with app.test_request_context(headers={"Accept-Language": language}):
            message = str(MESSAGES["vat_rate"])
        assert words in message
        assert not re.search(r"\d", message), message


def test_a_quote_row_keeps_any_percentage_but_never_more_than_100(app: Flask, world: World) -> None:
    # The table no longer knows the Dutch rates (migration 0018): only that it is a percentage.
    with app.test_request_context():
        quote = quote_sent(world, world.registrations_x[0])
        item_id = quote.items[0].id
        db.session.execute(
            text("UPDATE quote_items SET vat_rate = 15 WHERE id = :id"), {"id": item_id}
        )
        db.session.commit()
        assert db.session.get(QuoteItem, item_id).vat_rate == 15  # type: ignore[union-attr]
        with pytest.raises(IntegrityError):
            db.session.execute(
                text("UPDATE quote_items SET vat_rate = 150 WHERE id = :id"), {"id": item_id}
            )
            db.session.commit()
        db.session.rollback()


def test_the_table_refuses_a_rate_out_of_range_or_ending_before_it_starts(ctx: Flask) -> None:
    for bad in (
        {"percent": 150, "valid_from": date(2030, 1, 1)},
        {"percent": -1, "valid_from": date(2030, 1, 1)},
        {"percent": 9, "valid_from": date(2030, 1, 1), "valid_until": date(2029, 12, 31)},
    ):
        org_id = factories.organisation().id
        db.session.add(VatRate(organisation_id=org_id, name_nl="x", name_en="x", source="x", **bad))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


# --- the desk's page --------------------------------------------------------------------------


PAGE = "/desk/vat-rates"


def test_staff_see_the_rates_with_their_source_and_days(
    app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    client.get("/language/en")
    sign_in(client, people["colleague"])
    page = client.get(PAGE).get_data(as_text=True)
    assert "Standard rate" in page and "from 1 October 2012, until further notice" in page
    assert 'href="https://www.belastingdienst.nl/' in page
    # A colleague who is no desk admin reads them; changing them is for admins.
    assert "/desk/vat-rates/new" not in page
    assert client.get(f"{PAGE}/new").status_code == 404
    sign_in(client, people["admin"])
    page = client.get(PAGE).get_data(as_text=True)
    assert "/desk/vat-rates/new" in page
    assert f"{PAGE}/{percent_of_id(app, 21, people['desk'])}/end" in page
    # The desk's start page links to it.
    assert f'href="{PAGE}"' in client.get("/desk/").get_data(as_text=True)


def percent_of_id(app: Flask, percent: int, org_id: int) -> int:
    with app.app_context():
        return percent_of(percent, org_id).id


@pytest.mark.parametrize("role", ["resident", "installer", "anonymous"])
def test_the_page_is_not_for_residents_installers_or_visitors(
    app: Flask, client: FlaskClient, people: dict[str, int], role: str
) -> None:
    sign_in(client, people.get(role))
    rate_id = percent_of_id(app, 21, people["desk"])
    for url in (PAGE, f"{PAGE}/new", f"{PAGE}/{rate_id}/end"):
        response = client.get(url)
        if role == "anonymous":
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        else:
            assert response.status_code == 404, url
    token = factories.csrf_token(client, "/login")
    response = client.post(
        f"{PAGE}/{rate_id}/end", data={"csrf_token": token, "last_day": today().isoformat()}
    )
    assert response.status_code in (302, 404)
    with app.app_context():
        assert percent_of(21, people["desk"]).valid_until is None


def add_form(**overrides: str) -> dict[str, str]:
    data = {
        "percent": "12",
        "name_nl": "Nieuw verlaagd tarief",
        "name_en": "New reduced rate",
        "source": "https://www.belastingdienst.nl/btw-tarieven",
        "valid_from": (today() + timedelta(days=30)).isoformat(),
        "valid_until": "",
    }
    data.update(overrides)
    return data


def test_a_desk_admin_adds_a_rate_and_sets_the_last_day_of_another_audited(
    app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    response = factories.post_form(client, f"{PAGE}/new", add_form(percent="12 %"))
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    rate_9 = percent_of_id(app, 9, people["desk"])
    last_day = (today() + timedelta(days=29)).isoformat()
    response = factories.post_form(client, f"{PAGE}/{rate_9}/end", {"last_day": last_day})
    assert response.status_code == 302
    with app.app_context():
        added = db.session.scalars(select(VatRate).where(VatRate.percent == 12)).one()
        assert added.valid_from == today() + timedelta(days=30) and added.valid_until is None
        assert added.created_by_id == people["admin"] and added.organisation_id == people["desk"]
        ended = db.session.get(VatRate, rate_9)
        assert ended is not None and ended.valid_until == today() + timedelta(days=29)
        assert ended.ended_by_id == people["admin"] and ended.ended_at is not None
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.verb, e.object_id) for e in entries] == [
            ("vat_rate.add", added.id),
            ("vat_rate.end", rate_9),
        ]
        assert {e.organisation_id for e in entries} == {people["desk"]}
        assert entries[0].after and entries[0].after["percent"] == 12
        assert entries[1].before == {"valid_until": None}
        assert entries[1].after == {"valid_until": last_day}
    page = client.get(PAGE).get_data(as_text=True)
    assert "New reduced rate" in page and "not yet" in page
    assert "last day set on" in page and "Dirk Beheer" in page

    # Another desk's admin sees their own desk's rates and cannot reach these.
    sign_in(client, people["other_admin"])
    assert "New reduced rate" not in client.get(PAGE).get_data(as_text=True)
    for url in (f"{PAGE}/{rate_9}/end", f"{PAGE}/{added.id}/end"):
        assert client.get(url).status_code == 404
    token = factories.csrf_token(client, f"{PAGE}/new")
    for url, data in (
        (f"{PAGE}/{rate_9}/end", {"last_day": today().isoformat()}),
        (f"{PAGE}/{added.id}/withdraw", {}),
    ):
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 404
    with app.app_context():
        assert percent_of(9, people["desk"]).valid_until == today() + timedelta(days=29)
        assert db.session.get(VatRate, added.id) is not None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"percent": "150"}, "percent", "Enter a whole number from 0 to 100, like 21."),
        ({"percent": "twaalf"}, "percent", "Enter a whole number from 0 to 100, like 21."),
        ({"percent": ""}, "percent", "Enter the percentage."),
        ({"source": ""}, "source", "Enter the source of the rate."),
        ({"name_en": ""}, "name_en", "Enter the name in English."),
        ({"valid_from": ""}, "valid_from", "Enter the first day the rate applies."),
        (
            {"valid_until": "2020-01-01"},
            "valid_until",
            "The last day cannot be before the first day.",
        ),
        ({"valid_from": "2020-01-01"}, "valid_from", "Choose today or a later day"),
        # 21% applies until further notice: a second 21% would be the same choice twice.
        ({"percent": "21"}, "valid_from", "A rate of 21% already applies in that period."),
    ],
)
def test_bad_input_gets_a_message_at_its_field_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    people: dict[str, int],
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    with app.app_context():
        before = (count_rates(people["desk"]), count_audit())
    response = factories.post_form(client, f"{PAGE}/new", add_form(**overrides))
    assert response.status_code in (200, 409)
    page = response.get_data(as_text=True)
    assert re.search(rf'id="{field}-error">.*?{re.escape(message)}', page, re.DOTALL), (
        f"no message at {field}"
    )
    with app.app_context():
        assert (count_rates(people["desk"]), count_audit()) == before


@pytest.mark.parametrize(
    ("last_day", "message"),
    [
        (-1, "Choose today or a later day: quotes may have used the rate"),
        (None, "Enter the last day the rate applies."),
    ],
)
def test_a_last_day_in_the_past_is_refused(
    app: Flask, client: FlaskClient, people: dict[str, int], last_day: int | None, message: str
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    rate_id = percent_of_id(app, 21, people["desk"])
    value = "" if last_day is None else (today() + timedelta(days=last_day)).isoformat()
    response = factories.post_form(client, f"{PAGE}/{rate_id}/end", {"last_day": value})
    page = response.get_data(as_text=True)
    assert re.search(rf'id="last_day-error">.*?{re.escape(message)}', page, re.DOTALL)
    with app.app_context():
        assert percent_of(21, people["desk"]).valid_until is None and count_audit() == 0


def test_the_past_is_never_rewritten(ctx: Flask, people: dict[str, int]) -> None:
    admin = user(people["admin"])
    ended = factories.vat_rate(desk(people["desk"]), 6, date(2001, 1, 1), date(2018, 12, 31))
    for rate, last_day, code in (
        (ended, today() + timedelta(days=5), "rate_ended"),  # history stays
        (percent_of(21, people["desk"]), today() - timedelta(days=1), "end_in_past"),
    ):
        with pytest.raises(OrderError) as refused:
            vat_rates.end_rate(admin, rate, last_day)
        assert refused.value.code == code
    with pytest.raises(OrderError) as refused:
        vat_rates.add_rate(admin, details(valid_from=today() - timedelta(days=1)))
    assert refused.value.code == "start_in_past"
    assert (
        ended.valid_until == date(2018, 12, 31)
        and percent_of(21, people["desk"]).valid_until is None
    )


def test_a_last_day_still_to_come_moves_but_not_into_the_rate_that_follows(
    ctx: Flask, people: dict[str, int]
) -> None:
    admin = user(people["admin"])
    nine = percent_of(9, people["desk"])
    vat_rates.end_rate(admin, nine, today() + timedelta(days=10))
    vat_rates.add_rate(admin, details(percent=9, valid_from=today() + timedelta(days=11)))
    vat_rates.end_rate(admin, nine, today() + timedelta(days=5))  # earlier: fine
    with pytest.raises(OrderError) as refused:
        vat_rates.end_rate(admin, nine, today() + timedelta(days=11))
    assert refused.value.code == "rate_overlaps"
    assert nine.valid_until == today() + timedelta(days=5)


def test_posting_without_a_csrf_token_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    rate_id = percent_of_id(app, 21, people["desk"])
    for url, data in (
        (f"{PAGE}/new", add_form()),
        (f"{PAGE}/{rate_id}/end", {"last_day": today().isoformat()}),
    ):
        for token in ({}, {"csrf_token": "forged"}):
            response = client.post(url, data={**data, **token})
            assert response.status_code == 400
            assert "This form has expired" in response.get_data(as_text=True)
    with app.app_context():
        assert (
            count_rates(people["desk"]) == 3 and percent_of(21, people["desk"]).valid_until is None
        )


def test_the_page_is_in_dutch_by_default(client: FlaskClient, people: dict[str, int]) -> None:
    sign_in(client, people["admin"])
    page = client.get(PAGE).get_data(as_text=True)
    assert "Btw-tarieven" in page and "Algemeen tarief" in page


# --- withdrawing a rate that does not apply yet ---------------------------------------------------


def test_a_rate_not_yet_in_force_is_withdrawn_whole_and_the_audit_log_keeps_it(
    app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    factories.post_form(client, f"{PAGE}/new", add_form(percent="92"))  # meant 9, typed 92
    with app.app_context():
        typo = db.session.scalars(select(VatRate).where(VatRate.percent == 92)).one().id
    page = client.get(f"{PAGE}/{typo}/end").get_data(as_text=True)
    assert "Withdraw the rate" in page
    response = factories.post_form(
        client, f"{PAGE}/{typo}/withdraw", {}, token_from=f"{PAGE}/{typo}/end"
    )
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    with app.app_context():
        assert db.session.get(VatRate, typo) is None and count_rates(people["desk"]) == 3
        entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None and entry.verb == "vat_rate.withdraw"
        assert entry.object_id == typo and entry.before and entry.before["percent"] == 92
    assert "withdrew a VAT rate" in client.get("/desk/audit").get_data(as_text=True)


def test_a_rate_in_force_is_never_withdrawn(
    app: Flask, client: FlaskClient, people: dict[str, int]
) -> None:
    client.get("/language/en")
    sign_in(client, people["admin"])
    rate_21 = percent_of_id(app, 21, people["desk"])
    page = client.get(f"{PAGE}/{rate_21}/end").get_data(as_text=True)
    assert "Withdraw the rate" not in page  # only offered before its first day
    response = factories.post_form(
        client, f"{PAGE}/{rate_21}/withdraw", {}, token_from=f"{PAGE}/{rate_21}/end"
    )
    assert response.status_code == 409
    assert "set its last day instead" in response.get_data(as_text=True)
    with app.app_context():
        assert count_rates(people["desk"]) == 3 and count_audit() == 0
    with app.app_context():  # and the service refuses it too, on the first day itself
        starts_today = vat_rates.add_rate(
            user(people["admin"]), details(percent=13, valid_from=today())
        )
        with pytest.raises(OrderError) as refused:
            vat_rates.withdraw_rate(user(people["admin"]), starts_today)
        assert refused.value.code == "rate_in_force"
        assert db.session.get(VatRate, starts_today.id) is not None
