"""The desk's management of actions over HTTP: create and edit, measures with group price tiers,
neighbourhoods, publish/close/reopen/cancel, the closing at the end of the window, and that staff
of another organisation get a 404 on every one of these pages."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import Organisation, User
from coop.actions.catalogue import ensure_catalogue
from coop.actions.models import (
    Action,
    ActionEmailTemplate,
    ActionMeasure,
    ActionStatus,
    Neighbourhood,
    PriceTier,
)
from coop.actions.services import close_ended_actions
from coop.core import jobs
from coop.core.audit import AuditEntry
from coop.core.models import OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations.models import Registration
from tests import factories
from tests.conftest import SMTPRecorder, message_text, smtp_config
from tests.login import sign_in


@pytest.fixture
def app_config(smtp_server: tuple[SMTPRecorder, int]) -> dict[str, Any]:
    return smtp_config(smtp_server[1])


def login(client: FlaskClient, email: str) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    client.get("/language/en")


def count(model: type[Any], *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audit_verbs(action_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.verb)
            .where(AuditEntry.object_type == "Action", AuditEntry.object_id == action_id)
            .order_by(AuditEntry.id)
        )
    )


def action_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "title_nl": "Samen warm in Oost!",
        "title_en": "Warm together in East",
        "slug": "",
        "summary_nl": "Isoleer je huis samen met je buren.",
        "summary_en": "Insulate your home with your neighbours.",
        "description_nl": "Lange uitleg <met> tekens & meer.",
        "description_en": "",
        "opens_on": "2030-01-15",
        "opens_at": "09:00",
        "closes_on": "2030-07-01",
        "closes_at": "17:30",
        "contact_email": "oost@example.nl",
        "contact_phone": "030 123 45 67",
        "postcode_areas": "3522, 3521 3522;3584",
    }
    data.update(overrides)
    return data


@pytest.fixture
def desk(app: Flask) -> dict[str, Any]:
    """Desk A with staff and a neighbourhood, desk B with its own staff."""
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Zeist")
        staff_a = factories.staff(org_a, "staff-a@example.nl")
        staff_b = factories.staff(org_b, "staff-b@example.nl")
        oost = Neighbourhood(
            organisation_id=org_a.id, name="Oost", municipality="Utrecht", postcode_areas="3521"
        )
        zeist = Neighbourhood(
            organisation_id=org_b.id,
            name="Zeist Noord",
            municipality="Zeist",
            postcode_areas="3701",
        )
        db.session.add_all([oost, zeist])
        db.session.commit()
        return {
            "org_a": org_a.id,
            "org_b": org_b.id,
            "staff_a": staff_a.email,
            "staff_b": staff_b.email,
            "oost": oost.id,
            "zeist": zeist.id,
        }


# --- create and edit --------------------------------------------------------------------------


def test_staff_create_a_draft_action_with_window_and_areas(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, desk["staff_a"])
    response = factories.post_form(
        client, "/desk/actions/new", action_form(neighbourhoods=[str(desk["oost"])])
    )
    assert response.status_code == 302
    with app.app_context():
        action = db.session.scalar(select(Action))
        assert action is not None
        assert response.headers["Location"] == f"/desk/actions/{action.id}"
        assert action.organisation_id == desk["org_a"]
        assert action.status is ActionStatus.DRAFT
        assert action.slug == "samen-warm-in-oost"
        # 09:00 in Amsterdam in winter is 08:00 UTC; 17:30 in summer is 15:30 UTC.
        assert action.registration_opens_at == datetime(2030, 1, 15, 8, 0, tzinfo=UTC)
        assert action.registration_closes_at == datetime(2030, 7, 1, 15, 30, tzinfo=UTC)
        assert action.postcode_areas == "3521,3522,3584"
        assert action.deposit_cents is None  # asked on the deposit page (payments)
        assert [n.id for n in action.neighbourhoods] == [desk["oost"]]
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "action.create"))
        assert entry is not None and entry.organisation_id == desk["org_a"]
        assert entry.after is not None and entry.after["slug"] == "samen-warm-in-oost"
        action_id = action.id

    page = client.get(f"/desk/actions/{action_id}").get_data(as_text=True)
    assert 'data-status="draft"' in page
    listing = client.get("/desk/actions/").get_data(as_text=True)
    assert f'href="/desk/actions/{action_id}"' in listing


def test_bad_action_input_is_refused_at_each_field_and_nothing_is_stored(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, desk["staff_a"])
    bad = action_form(
        title_nl="",
        slug="Niet Goed!",
        postcode_areas="3521, 123, abcd, 0999",
        contact_email="geen-adres",
        opens_on="31-02-2030",
        closes_at="25:00",
        neighbourhoods=[str(desk["zeist"])],  # another desk's neighbourhood
    )
    response = factories.post_form(client, "/desk/actions/new", bad)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Enter a title." in page
    assert "Use lower-case letters, digits and single hyphens" in page
    assert "Not a postcode area (four digits from 1000 to 9999): 123, abcd, 0999." in page
    assert "Enter an email address like name@example.nl." in page
    assert "Enter a date like 2026-12-31." in page
    assert "Enter a time like 09:00 or 17:30." in page
    assert 'aria-invalid="true"' in page
    # Closing before opening.
    page = factories.post_form(
        client, "/desk/actions/new", action_form(closes_on="2030-01-15", closes_at="08:59")
    ).get_data(as_text=True)
    assert "Registration must close after it opens." in page
    with app.app_context():
        assert count(Action) == 0
        assert count(AuditEntry) == 0


def test_slugs_are_unique_made_from_the_title_or_refused_when_chosen_and_taken(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        factories.action(db.session.get(Organisation, desk["org_b"]), slug="samen-warm-in-oost")
    login(client, desk["staff_a"])
    assert factories.post_form(client, "/desk/actions/new", action_form()).status_code == 302
    page = factories.post_form(
        client, "/desk/actions/new", action_form(slug="samen-warm-in-oost")
    ).get_data(as_text=True)
    assert "This web address is already used by another action." in page
    with app.app_context():
        slugs = set(db.session.scalars(select(Action.slug)))
        assert slugs == {"samen-warm-in-oost", "samen-warm-in-oost-2"}


def test_editing_an_action_records_what_changed(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        action = factories.action(db.session.get(Organisation, desk["org_a"]))
        action.deposit_cents = 25000
        db.session.commit()
        action_id = action.id
    login(client, desk["staff_a"])
    form = client.get(f"/desk/actions/{action_id}/edit").get_data(as_text=True)
    assert 'value="samen-isoleren"' in form
    response = factories.post_form(
        client,
        f"/desk/actions/{action_id}/edit",
        action_form(slug="samen-isoleren", title_nl="Samen isoleren 2030"),
    )
    assert response.status_code == 302
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action is not None
        assert action.title_nl == "Samen isoleren 2030"
        assert action.slug == "samen-isoleren"
        assert action.deposit_cents == 25000  # the deposit is not this form's to change
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "action.update"))
        assert entry is not None and entry.before is not None and entry.after is not None
        assert entry.before["title_nl"] == "Samen isoleren"
        assert entry.after["title_nl"] == "Samen isoleren 2030"
        assert "slug" not in entry.after  # unchanged fields are left out


# --- measures and tiers -----------------------------------------------------------------------


def draft_without_measures(org_id: int) -> int:
    action = factories.action(db.session.get(Organisation, org_id), status=ActionStatus.DRAFT)
    action.measures.clear()
    db.session.commit()
    return action.id


def tier_rows(*rows: tuple[str, str]) -> dict[str, str]:
    data = {}
    for i in range(5):
        homes, price = rows[i] if i < len(rows) else ("", "")
        data[f"tiers-{i}-min_participants"] = homes
        data[f"tiers-{i}-price"] = price
    return data


def test_measures_with_group_price_tiers_are_added_checked_and_removed(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        action_id = draft_without_measures(desk["org_a"])
        measures = ensure_catalogue()
        roof, floor = measures["roof"].id, measures["floor"].id
    login(client, desk["staff_a"])
    url = f"/desk/actions/{action_id}/measures/new"

    refused = {
        "Tier 2 must start at more homes than tier 1: the thresholds must go up.": tier_rows(
            ("10", "40"), ("10", "35")
        ),
        "Tier 3 must cost less per unit than tier 2: the prices must go down": tier_rows(
            ("10", "40"), ("20", "35"), ("30", "35")
        ),
        "Tier 1 must cost less per unit than the indicative price": tier_rows(("10", "50,00")),
        "Tier 1: enter both the number of homes and the price, or neither.": tier_rows(("10", "")),
        "Tier 1: enter a whole number of homes from 1.": tier_rows(("tien", "40")),
    }
    for message, rows in refused.items():
        response = factories.post_form(
            client, url, {"measure": str(roof), "indicative_price": "50", **rows}
        )
        assert response.status_code == 200
        assert message in response.get_data(as_text=True), message
    with app.app_context():
        assert count(ActionMeasure) == 0

    response = factories.post_form(
        client,
        url,
        {
            "measure": str(roof),
            "indicative_price": "50,00",
            # Rows may be left empty in between; the thresholds count, not the row numbers.
            **tier_rows(("10", "45,50"), ("", ""), ("25", "40")),
        },
    )
    assert response.status_code == 302
    again = factories.post_form(
        client, url, {"measure": str(roof), "indicative_price": "50", **tier_rows()}
    )
    assert "Not a valid choice" in again.get_data(as_text=True)  # no longer in the list
    with app.app_context():
        offer = db.session.scalar(select(ActionMeasure).where(ActionMeasure.measure_id == roof))
        assert offer is not None and offer.indicative_price_cents == 5000
        assert [(t.min_participants, t.price_cents) for t in offer.tiers] == [
            (10, 4550),
            (25, 4000),
        ]
        offer_id = offer.id
        assert "action.measure_add" in db.session.scalars(select(AuditEntry.verb)).all()

    # Editing the prices replaces the tiers.
    edit_url = f"/desk/actions/{action_id}/measures/{offer_id}/edit"
    assert 'value="45,50"' in client.get(edit_url).get_data(as_text=True)
    response = factories.post_form(
        client, edit_url, {"indicative_price": "48", **tier_rows(("10", "45"))}
    )
    assert response.status_code == 302
    with app.app_context():
        tiers = db.session.scalars(
            select(PriceTier).where(PriceTier.action_measure_id == offer_id)
        ).all()
        assert [(t.min_participants, t.price_cents) for t in tiers] == [(10, 4500)]
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.verb == "action.measure_update")
        )
        assert entry is not None and entry.before is not None and entry.after is not None
        assert entry.before["indicative_price_cents"] == 5000
        assert entry.after["tiers"] == [[10, 4500]]

    # A second measure, used by a registration: that one cannot be removed.
    factories.post_form(
        client, url, {"measure": str(floor), "indicative_price": "30", **tier_rows()}
    )
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action is not None
        action.status = ActionStatus.OPEN
        action.registration_opens_at = utcnow() - timedelta(days=1)
        db.session.commit()
        floor_offer = next(m for m in action.measures if m.measure_id == floor)
        floor_id = floor_offer.id
        form = factories.registration_form(action)
        form = {k: v for k, v in form.items() if not k.startswith(("measure_", "quantity_"))}
        form.update({f"measure_{floor_id}": "y", f"quantity_{floor_id}": "40"})
        slug = action.slug
    assert client.post("/logout", data={}).status_code in (302, 400)
    registered = factories.post_form(client, f"/actions/{slug}/register", form)
    assert registered.status_code == 302, registered.get_data(as_text=True)
    login(client, desk["staff_a"])

    refused_removal = factories.post_form(
        client,
        f"/desk/actions/{action_id}/measures/{floor_id}/remove",
        {},
        token_from=f"/desk/actions/{action_id}",
    )
    assert refused_removal.status_code == 409
    assert "Registrations have chosen this measure" in refused_removal.get_data(as_text=True)
    removed = factories.post_form(
        client,
        f"/desk/actions/{action_id}/measures/{offer_id}/remove",
        {},
        token_from=f"/desk/actions/{action_id}",
    )
    assert removed.status_code == 302
    with app.app_context():
        assert [m.id for m in db.session.scalars(select(ActionMeasure))] == [floor_id]
        assert count(AuditEntry, AuditEntry.verb == "action.measure_remove") == 1


# --- status transitions -----------------------------------------------------------------------


def post_button(client: FlaskClient, action_id: int, what: str) -> Any:
    return factories.post_form(
        client, f"/desk/actions/{action_id}/{what}", {}, token_from=f"/desk/actions/{action_id}"
    )


def status_of(app: Flask, action_id: int) -> Action:
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action is not None
        db.session.expunge(action)
        return action


def test_publish_close_reopen_and_cancel_follow_the_rules(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        action_id = draft_without_measures(desk["org_a"])
    login(client, desk["staff_a"])

    refused = post_button(client, action_id, "publish")
    assert refused.status_code == 409
    assert "Add at least one measure before you publish" in refused.get_data(as_text=True)
    assert status_of(app, action_id).status is ActionStatus.DRAFT

    with app.app_context():
        roof = ensure_catalogue()["roof"].id
    factories.post_form(
        client,
        f"/desk/actions/{action_id}/measures/new",
        {"measure": str(roof), "indicative_price": "50", **tier_rows()},
    )
    assert post_button(client, action_id, "close").status_code == 409  # a draft cannot close
    assert post_button(client, action_id, "reopen").status_code == 409
    assert post_button(client, action_id, "publish").status_code == 302
    assert status_of(app, action_id).status is ActionStatus.OPEN
    again = post_button(client, action_id, "publish")
    assert again.status_code == 409
    assert "Only a draft action can be published; this action is open." in again.get_data(
        as_text=True
    )

    assert post_button(client, action_id, "close").status_code == 302
    closed = status_of(app, action_id)
    assert closed.status is ActionStatus.CLOSED and closed.closed_at is not None
    assert post_button(client, action_id, "reopen").status_code == 302  # the window is open
    reopened = status_of(app, action_id)
    assert reopened.status is ActionStatus.OPEN and reopened.closed_at is None

    # After the window: reopening needs a later closing date first.
    assert post_button(client, action_id, "close").status_code == 302
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action is not None
        action.registration_closes_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    refused = post_button(client, action_id, "reopen")
    assert refused.status_code == 409
    assert "Extend it first" in refused.get_data(as_text=True)
    assert status_of(app, action_id).status is ActionStatus.CLOSED
    extended = factories.post_form(
        client,
        f"/desk/actions/{action_id}/edit",
        action_form(slug="samen-isoleren", opens_on="2025-01-01", closes_on="2099-12-31"),
    )
    assert extended.status_code == 302
    assert post_button(client, action_id, "reopen").status_code == 302
    assert status_of(app, action_id).status is ActionStatus.OPEN

    # Cancelling needs a reason, and then nothing changes any more.
    no_reason = factories.post_form(client, f"/desk/actions/{action_id}/cancel", {"reason": ""})
    assert "Enter the reason." in no_reason.get_data(as_text=True)
    assert status_of(app, action_id).status is ActionStatus.OPEN
    cancelled = factories.post_form(
        client, f"/desk/actions/{action_id}/cancel", {"reason": "Geen installateur gevonden"}
    )
    assert cancelled.status_code == 302
    assert status_of(app, action_id).status is ActionStatus.CANCELLED
    twice = factories.post_form(client, f"/desk/actions/{action_id}/cancel", {"reason": "Nogmaals"})
    assert twice.status_code == 409
    assert "This action is already cancelled." in twice.get_data(as_text=True)
    assert post_button(client, action_id, "publish").status_code == 409
    edit = factories.post_form(
        client, f"/desk/actions/{action_id}/edit", action_form(slug="samen-isoleren")
    )
    assert "This action is cancelled: it cannot be changed any more." in edit.get_data(as_text=True)

    with app.app_context():
        assert audit_verbs(action_id) == [
            "action.publish",
            "action.close",
            "action.reopen",
            "action.close",
            "action.update",
            "action.reopen",
            "action.cancel",
        ]
        cancel = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "action.cancel"))
        assert cancel is not None and cancel.before == {
            "status": "open",
            "closed_at": None,
        }
        assert cancel.after is not None
        assert cancel.after["status"] == "cancelled"
        assert cancel.after["reason"] == "Geen installateur gevonden"


def test_publishing_needs_a_window_that_has_not_ended(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        action = factories.action(
            db.session.get(Organisation, desk["org_a"]),
            status=ActionStatus.DRAFT,
            opens_in_days=-10,
            closes_in_days=-1,
        )
        action_id = action.id
    login(client, desk["staff_a"])
    refused = post_button(client, action_id, "publish")
    assert refused.status_code == 409
    assert "The registration window has already ended." in refused.get_data(as_text=True)
    assert status_of(app, action_id).status is ActionStatus.DRAFT


# --- closing at the end of the window ---------------------------------------------------------


def wait_for(recorder: SMTPRecorder, address: str, n: int, timeout: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    while len(recorder.to(address)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return recorder.to(address)


def test_ended_actions_close_by_themselves_and_staff_hear_it_once(
    app: Flask,
    client: FlaskClient,
    desk: dict[str, Any],
    smtp_server: tuple[SMTPRecorder, int],
) -> None:
    recorder, _ = smtp_server
    with app.app_context():
        org_a = db.session.get(Organisation, desk["org_a"])
        ending = factories.action(org_a, slug="bijna-dicht")
        running = factories.action(org_a, slug="loopt-nog", closes_in_days=10)
        colleague = factories.staff(org_a, "collega@example.nl")
        colleague.language = "en"
        db.session.commit()
        form = factories.registration_form(ending)
        ending_id, running_id = ending.id, running.id
    # One registration, then the window passes.
    assert factories.post_form(client, "/actions/bijna-dicht/register", form).status_code == 302
    with app.app_context():
        action = db.session.get(Action, ending_id)
        assert action is not None
        action.registration_closes_at = utcnow() - timedelta(seconds=1)
        db.session.commit()

        done = jobs.run_periodic_tasks()
        assert done["actions.close_ended"] == 1
        action = db.session.get(Action, ending_id)
        assert action is not None and action.status is ActionStatus.CLOSED
        assert action.closed_at is not None
        running_action = db.session.get(Action, running_id)
        assert running_action is not None and running_action.status is ActionStatus.OPEN
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.verb == "action.auto_close"))
        assert entry is not None and entry.actor_id is None
        assert entry.before == {"status": "open", "closed_at": None}

    staff_mail = wait_for(recorder, desk["staff_a"], 1)
    english_mail = wait_for(recorder, "collega@example.nl", 1)
    assert len(staff_mail) == 1 and len(english_mail) == 1
    english = message_text(english_mail[0])
    assert "Registration for Insulating together has closed at the end of its window: " in english
    assert "1 registration." in english
    assert f"http://localhost/desk/actions/{ending_id}" in english
    assert recorder.to(desk["staff_b"]) == []  # another desk's staff hear nothing

    with app.app_context():
        assert jobs.run_periodic_tasks()["actions.close_ended"] == 0
        assert close_ended_actions() == 0
        # Even a retried round that finds the action open again sends no second message.
        action = db.session.get(Action, ending_id)
        assert action is not None
        action.status = ActionStatus.OPEN
        db.session.commit()
        assert close_ended_actions() == 1
        jobs.dispatcher().run_pending()
        keys = db.session.scalars(
            select(OutboxJob.key).where(OutboxJob.name == "actions.send_closed_notice")
        ).all()
        assert sorted(keys) == sorted(
            [
                f"action-closed:{ending_id}:{u.id}"
                for u in db.session.scalars(select(User)).all()
                if u.organisation_id == desk["org_a"]
            ]
        )
    time.sleep(0.2)
    assert len(recorder.to(desk["staff_a"])) == 1
    assert len(recorder.to("collega@example.nl")) == 1


# --- neighbourhoods ---------------------------------------------------------------------------


def test_neighbourhoods_are_created_and_edited_with_household_counts(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    login(client, desk["staff_a"])
    bad = factories.post_form(
        client,
        "/desk/actions/neighbourhoods/new",
        {"name": "", "municipality": "Utrecht", "postcode_areas": "35", "household_count": "veel"},
    )
    page = bad.get_data(as_text=True)
    assert "Enter the name of the neighbourhood." in page
    assert "Not a postcode area (four digits from 1000 to 9999): 35." in page
    assert "Enter a whole number, like 1250." in page
    response = factories.post_form(
        client,
        "/desk/actions/neighbourhoods/new",
        {
            "name": "Lombok",
            "municipality": "Utrecht",
            "postcode_areas": "3531 3532",
            "household_count": "4.250",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        lombok = db.session.scalar(select(Neighbourhood).where(Neighbourhood.name == "Lombok"))
        assert lombok is not None
        assert lombok.organisation_id == desk["org_a"]
        assert (lombok.postcode_areas, lombok.household_count) == ("3531,3532", 4250)
        lombok_id = lombok.id
    response = factories.post_form(
        client,
        f"/desk/actions/neighbourhoods/{lombok_id}/edit",
        {
            "name": "Lombok",
            "municipality": "Utrecht",
            "postcode_areas": "3531",
            "household_count": "",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        lombok = db.session.get(Neighbourhood, lombok_id)
        assert lombok is not None
        assert (lombok.postcode_areas, lombok.household_count) == ("3531", None)
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.verb == "neighbourhood.update")
        )
        assert entry is not None
        assert entry.before == {"postcode_areas": "3531,3532", "household_count": 4250}
        assert entry.after == {"postcode_areas": "3531", "household_count": None}
    listing = client.get("/desk/actions/neighbourhoods").get_data(as_text=True)
    assert "Lombok" in listing and "Oost" in listing and "Zeist Noord" not in listing


# --- another organisation's staff: 404 everywhere ---------------------------------------------


def org_a_urls(app: Flask, action_id: int, offer_id: int, neighbourhood_id: int) -> list[str]:
    """Every route of the blueprint, filled in with organisation A's objects."""
    values = {
        "action_id": action_id,
        "offer_id": offer_id,
        "neighbourhood_id": neighbourhood_id,
        "kind": "confirm_registration",
        "language": "nl",
    }
    urls = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("actions_desk.") or not rule.arguments:
            continue
        urls.append(adapter.build(rule.endpoint, {a: values[a] for a in rule.arguments}))
    return urls


def test_staff_of_another_organisation_get_404_on_every_action_page(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        action = factories.action(db.session.get(Organisation, desk["org_a"]))
        db.session.add(
            ActionEmailTemplate(
                action_id=action.id,
                kind="confirm_registration",
                language="nl",
                subject="Bevestig",
                body="{{ link }}",
            )
        )
        db.session.commit()
        action_id, offer_id = action.id, action.measures[0].id
        before = (action.status, action.title_nl, len(action.measures))
    urls = org_a_urls(app, action_id, offer_id, desk["oost"])
    assert len(urls) == 14  # every route with an id in it; a new one is tried automatically

    login(client, desk["staff_b"])
    token = factories.csrf_token(client, "/desk/actions/new")
    for url in urls:
        assert client.get(url).status_code in (404, 405), url
        posted = client.post(
            url,
            data={
                "csrf_token": token,
                "reason": "weg ermee",
                "subject": "x",
                "body": "{{ link }}",
                "do": "save",
                **action_form(),
            },
        )
        assert posted.status_code in (404, 405), url
    # Staff A's own pages work (so the 404s above are about the organisation).
    login(client, desk["staff_a"])
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 405), url
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action is not None
        assert (action.status, action.title_nl, len(action.measures)) == before
        assert count(ActionEmailTemplate) == 1
        assert count(AuditEntry) == 0
        neighbourhood = db.session.get(Neighbourhood, desk["oost"])
        assert neighbourhood is not None and neighbourhood.name == "Oost"


def test_measure_of_another_action_is_a_404_even_for_own_staff(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.app_context():
        org_a = db.session.get(Organisation, desk["org_a"])
        first = factories.action(org_a, slug="eerste")
        second = factories.action(org_a, slug="tweede")
        first_id, foreign_offer = first.id, second.measures[0].id
    login(client, desk["staff_a"])
    assert client.get(f"/desk/actions/{first_id}/measures/{foreign_offer}/edit").status_code == 404
    assert client.get(f"/desk/actions/{first_id}/emails/unknown/nl").status_code == 404
    assert client.get(f"/desk/actions/{first_id}/emails/confirm_registration/de").status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "resident"])
def test_people_who_are_not_staff_cannot_open_the_pages(
    app: Flask, client: FlaskClient, desk: dict[str, Any], who: str
) -> None:
    with app.app_context():
        action = factories.action(db.session.get(Organisation, desk["org_a"]))
        action_id = action.id
        form = factories.registration_form(action)
    if who == "resident":
        factories.post_form(client, "/actions/samen-isoleren/register", form)
        with app.app_context():
            registration = db.session.scalar(select(Registration))
            assert registration is not None
            user_id = registration.user_id
        sign_in(client, user_id)
    for url in ("/desk/actions/", "/desk/actions/new", f"/desk/actions/{action_id}"):
        response = client.get(url)
        if who == "anonymous":
            assert response.status_code == 302
            assert re.search(r"/login\?next=", response.headers["Location"])
        else:
            assert response.status_code == 404
