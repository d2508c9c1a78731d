"""The desk's side of a tender round over HTTP: choosing whom to invite (nothing ticked at first,
the choice kept after an error), seeing whom the invitation is emailed to before it is sent,
moving the deadline later and cancelling a round, each with the invited installers told."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import User
from coop.actions import services as actions
from coop.actions.models import Action
from coop.core import jobs
from coop.core.audit import AuditEntry
from coop.core.models import EmailLog
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.orders.models import MatchingRun
from coop.tenders import services as tenders
from coop.tenders.models import TenderRound
from coop.tenders.services import BidInput, TenderError
from tests import factories
from tests.orders.test_matching_flow import measure_of

# The registry of the walkthrough: six roofers, of which the desk wants bids from two.
ROOFERS = (
    "Dakwerk Lunetten",
    "Warmte en Dak Utrecht",
    "Groen Dak en Gevel",
    "Isolatie Zuilen",
    "Van Dijk Daken",
    "Bouwbedrijf Overvecht",
)


def log_in(client: FlaskClient, email: str) -> None:
    response = factories.post_form(
        client, "/staff/login", {"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def desk(app: Flask, client: FlaskClient) -> dict[str, Any]:
    with app.app_context():
        org = factories.organisation()
        staff = factories.staff(org)
        act = factories.action(org)
        roofers = [
            factories.installer(org, name, offers={"roof": (4000 + 100 * n, 5)}, kvk=f"7000000{n}")
            for n, name in enumerate(ROOFERS)
        ]
        # The first two have a user each: the invitation goes to the company and to its users.
        users = [factories.installer_user(roofers[0]), factories.installer_user(roofers[1])]
        for n in range(1, 4):
            factories.confirmed_registration(act, number=n)
        actions.close_action(staff, act)
        ids = {
            "action": act.id,
            "staff": staff.id,
            "roofers": [r.id for r in roofers],
            "emails": [r.email for r in roofers],
            "users": [u.id for u in users],
            "user_emails": [u.email for u in users],
            "roof": measure_of(act, "roof"),
        }
    log_in(client, "staff@example.nl")
    client.get("/language/en")  # the texts below are the English ones (Dutch is tested apart)
    return ids


def page_of(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def boxes(page: str) -> dict[int, bool]:
    """The installer checkboxes of the page: installer id -> ticked."""
    return {
        int(re.search(r'value="(\d+)"', tag)[1]): " checked" in tag  # type: ignore[index]
        for tag in re.findall(r'<input[^>]*name="installers"[^>]*type="checkbox"[^>]*>', page)
        + re.findall(r'<input[^>]*type="checkbox"[^>]*name="installers"[^>]*>', page)
    }


def tomorrow() -> str:
    return (utcnow() + timedelta(days=1)).astimezone(AMSTERDAM).date().isoformat()


def local_day(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).date().isoformat()


def emails(template: str) -> list[str]:
    return sorted(
        db.session.scalars(select(EmailLog.recipient).where(EmailLog.template == template))
    )


def test_the_form_starts_with_nothing_ticked_and_keeps_the_choice_after_an_error(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    url = f"/desk/actions/{desk['action']}/tender/new"
    page = page_of(client.get(url))
    assert boxes(page) == dict.fromkeys(desk["roofers"], False)
    # A group of boxes is not "required" box by box (a screen reader would say each one is).
    assert not re.search(r'<input[^>]*name="installers"[^>]*required', page)

    two = desk["roofers"][1:3]
    response = factories.post_form(
        client, url, {"installers": two, "deadline_on": "2020-01-01", "deadline_at": "17:00"}
    )
    assert response.status_code == 200 and "at least an hour" in page_of(response)
    assert boxes(page_of(response)) == {i: i in two for i in desk["roofers"]}
    response = factories.post_form(
        client, url, {"installers": two, "deadline_on": "", "deadline_at": "17:00"}
    )
    assert "Enter the date bids close." in page_of(response)
    assert boxes(page_of(response)) == {i: i in two for i in desk["roofers"]}

    response = factories.post_form(client, url, {"deadline_on": tomorrow(), "deadline_at": "17:00"})
    assert response.status_code == 200
    assert 'id="installers-error"' in page_of(response)
    assert "Choose at least one installer." in page_of(response)
    assert not any(boxes(page_of(response)).values())
    # Another desk's installer (or a made-up id) is refused at the field, in words.
    response = factories.post_form(
        client,
        url,
        {"installers": [two[0], 999_999], "deadline_on": tomorrow(), "deadline_at": "17:00"},
    )
    assert "Choose installers from your own registry." in page_of(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TenderRound)) == 0


def test_staff_see_whom_the_invitation_goes_to_before_it_is_sent(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    url = f"/desk/actions/{desk['action']}/tender/new"
    first, second = desk["roofers"][0], desk["roofers"][1]
    chosen = {
        "installers": [first, second],
        "deadline_on": tomorrow(),
        "deadline_at": "16:30",
        "note": "Uitvoering vanaf maart.",
    }
    response = factories.post_form(client, url, chosen)
    assert response.status_code == 200
    page = page_of(response)
    assert "Check the invitations" in page and "Nothing has been sent yet." in page
    table = page[page.index('id="invitees"') : page.index("</table>", page.index('id="invitees"'))]
    for name in ROOFERS[:2]:
        assert name in table
    for name in ROOFERS[2:]:
        assert name not in table
    for address in [*desk["emails"][:2], *desk["user_emails"]]:
        assert address in table
    assert "4 other installers of your registry are not invited." in page
    assert "Send the 2 invitations to bid" in page and "16:30" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TenderRound)) == 0
        assert emails("tender_invitation") == []

    # "Change the choice" goes back to the form as it was.
    token = factories.csrf_token(client, url)
    response = client.post(url, data={**chosen, "csrf_token": token, "step": "edit"})
    assert response.status_code == 200
    assert boxes(page_of(response)) == {i: i in (first, second) for i in desk["roofers"]}
    assert 'value="16:30"' in page_of(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TenderRound)) == 0

    response = client.post(url, data={**chosen, "csrf_token": token, "step": "send"})
    assert response.status_code == 302
    with app.app_context():
        tender = db.session.scalars(select(TenderRound)).one()
        assert sorted(i.installer_id for i in tender.invitations) == [first, second]
        assert tender.note == "Uitvoering vanaf maart."
        assert tender.deadline.astimezone(AMSTERDAM).strftime("%H:%M") == "16:30"
        # Exactly the addresses the confirmation listed, once each; none of the other four.
        assert emails("tender_invitation") == sorted([*desk["emails"][:2], *desk["user_emails"]])


def _open(desk: dict[str, Any], installer_ids: list[int], deadline: datetime) -> int:
    """A round opened through the service, its invitations sent."""
    staff = db.session.get(User, desk["staff"])
    action = db.session.get(Action, desk["action"])
    assert staff is not None and action is not None
    tender = tenders.open_round(staff, action, installer_ids, deadline=deadline)
    jobs.dispatcher().run_pending()
    return tender.id


def test_the_deadline_moves_later_only_and_the_invited_installers_hear(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    invited = desk["roofers"][:2]
    with app.test_request_context():
        round_id = _open(desk, invited, utcnow() + timedelta(days=2))
        old = db.session.get(TenderRound, round_id).deadline  # type: ignore[union-attr]
    bids_url = f"/desk/actions/{desk['action']}/tender/{round_id}"
    url = f"{bids_url}/deadline"
    assert f'href="{url}"' in page_of(client.get(bids_url))
    page = page_of(client.get(url))
    assert f'value="{local_day(old)}"' in page  # the form starts at the current deadline

    # Earlier, or the same: refused at the field, nothing changed, nobody emailed.
    for day in (local_day(old - timedelta(days=1)), local_day(old)):
        response = factories.post_form(
            client,
            url,
            {"deadline_on": day, "deadline_at": old.astimezone(AMSTERDAM).strftime("%H:%M")},
        )
        assert response.status_code == 200
        assert 'id="deadline_on-error"' in page_of(response)
        assert "after the current one" in page_of(response)
    response = factories.post_form(
        client,
        url,
        {"deadline_on": local_day(utcnow() + timedelta(days=120)), "deadline_at": "17:00"},
    )
    assert "within 90 days" in page_of(response)
    with app.app_context():
        assert db.session.get(TenderRound, round_id).deadline == old  # type: ignore[union-attr]
        assert emails("tender_deadline_changed") == []

    later = local_day(old + timedelta(days=5))
    response = factories.post_form(client, url, {"deadline_on": later, "deadline_at": "12:00"})
    assert response.status_code == 302
    recipients = sorted([*desk["emails"][:2], *desk["user_emails"]])
    with app.app_context():
        tender = db.session.get(TenderRound, round_id)
        assert tender is not None
        assert tender.deadline.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M") == f"{later} 12:00"
        assert emails("tender_deadline_changed") == recipients
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.verb == "tender.deadline")
        ).one()
        assert entry.before == {"deadline": old.isoformat()}
        body = db.session.scalars(
            select(EmailLog.body_text).where(EmailLog.template == "tender_deadline_changed")
        ).first()
        assert body is not None and "12:00" in body
    # Moved again: another email each, with the newest deadline.
    response = factories.post_form(
        client, url, {"deadline_on": local_day(old + timedelta(days=6)), "deadline_at": "12:00"}
    )
    assert response.status_code == 302
    with app.app_context():
        assert emails("tender_deadline_changed") == sorted(recipients * 2)

    # Once the deadline has passed the round's deadline stays as it is.
    with app.app_context():
        tender = db.session.get(TenderRound, round_id)
        assert tender is not None
        tender.deadline = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert 'id="round-locked"' in page_of(client.get(url))
    assert f'href="{url}"' not in page_of(client.get(bids_url))
    response = factories.post_form(
        client,
        url,
        {"deadline_on": local_day(utcnow() + timedelta(days=3)), "deadline_at": "12:00"},
        token_from=bids_url,
    )
    assert response.status_code == 409 and "has passed" in page_of(response)


def test_a_cancelled_round_tells_the_invited_takes_no_bids_and_starts_no_matching(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    invited = desk["roofers"][:2]
    with app.test_request_context():
        round_id = _open(desk, invited, utcnow() + timedelta(days=2))
        tender = db.session.get(TenderRound, round_id)
        assert tender is not None
        invitation = next(i for i in tender.invitations if i.installer_id == invited[0])
        bidder = db.session.get(User, desk["users"][0])
        assert bidder is not None
        tenders.submit_bid(bidder, invitation, {desk["roof"]: BidInput(3900, 3)})
        invitation_id = invitation.id
    bids_url = f"/desk/actions/{desk['action']}/tender/{round_id}"
    url = f"{bids_url}/cancel"
    assert f'href="{url}"' in page_of(client.get(bids_url))
    page = page_of(client.get(url))
    assert "The 2 invited installers get an email" in page

    response = factories.post_form(client, url, {"message": "  "})
    assert response.status_code == 200 and 'id="message-error"' in page_of(response)
    with app.app_context():
        assert db.session.get(TenderRound, round_id).cancelled_at is None  # type: ignore[union-attr]

    response = factories.post_form(
        client, url, {"message": "We kiezen een andere aanpak; u hoort van ons."}
    )
    assert response.status_code == 302
    cancelled = page_of(client.get(bids_url))
    assert 'id="cancelled"' in cancelled and "andere aanpak" in cancelled
    assert f'href="{url}"' not in cancelled
    assert 'id="round-locked"' in page_of(client.get(url))
    with app.app_context():
        assert emails("tender_cancelled") == sorted([*desk["emails"][:2], *desk["user_emails"]])
        body = db.session.scalars(
            select(EmailLog.body_text).where(EmailLog.template == "tender_cancelled")
        ).first()
        assert body is not None and "andere aanpak" in body

    # The installer's bid page says so, and a bid is refused.
    bidder_client = app.test_client()
    log_in(bidder_client, desk["user_emails"][0])
    bidder_client.get("/language/en")
    bid_url = f"/installer/tenders/{invitation_id}"
    response = factories.post_form(
        bidder_client, bid_url, {f"price_{desk['roof']}": "38", f"capacity_{desk['roof']}": "3"}
    )
    assert response.status_code == 409
    assert "The energy desk cancelled this tender round" in page_of(response)
    with app.test_request_context():
        invitation = tenders.get_invitation(invitation_id)
        bidder = db.session.get(User, desk["users"][0])
        assert invitation is not None and bidder is not None
        with pytest.raises(TenderError, match="round_cancelled"):
            tenders.submit_bid(bidder, invitation, {desk["roof"]: BidInput(3800, 3)})
        db.session.rollback()

        # Its deadline passes: the scheduler starts no matching for it.
        tender = db.session.get(TenderRound, round_id)
        assert tender is not None
        tender.deadline = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert jobs.run_periodic_tasks()["orders.start_after_tenders"] == 0
        assert db.session.scalar(select(func.count()).select_from(MatchingRun)) == 0

    # A new round can be opened at once (the cancelled one is not "still open").
    response = factories.post_form(
        client,
        f"/desk/actions/{desk['action']}/tender/new",
        {
            "installers": [desk["roofers"][2]],
            "deadline_on": tomorrow(),
            "deadline_at": "17:00",
            "step": "send",
        },
    )
    assert response.status_code == 302


def test_a_round_whose_bids_are_being_matched_cannot_be_cancelled(
    app: Flask, client: FlaskClient, desk: dict[str, Any]
) -> None:
    with app.test_request_context():
        round_id = _open(desk, desk["roofers"][:1], utcnow() + timedelta(days=2))
        tender = db.session.get(TenderRound, round_id)
        assert tender is not None
        invitation = tender.invitations[0]
        bidder = db.session.get(User, desk["users"][0])
        assert bidder is not None
        tenders.submit_bid(bidder, invitation, {desk["roof"]: BidInput(3900, 3)})
        tender.deadline = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert jobs.run_periodic_tasks()["orders.start_after_tenders"] == 1
    url = f"/desk/actions/{desk['action']}/tender/{round_id}/cancel"
    assert 'id="round-locked"' in page_of(client.get(url))
    response = factories.post_form(client, url, {"message": "Toch niet."})
    assert response.status_code == 409
    assert "Matching has started" in page_of(response)
    with app.app_context():
        assert db.session.get(TenderRound, round_id).cancelled_at is None  # type: ignore[union-attr]
        assert emails("tender_cancelled") == []


def test_invitations_not_yet_sent_when_the_round_is_cancelled_are_not_sent(
    ctx: Flask, desk: dict[str, Any]
) -> None:
    staff = db.session.get(User, desk["staff"])
    action = db.session.get(Action, desk["action"])
    assert staff is not None and action is not None
    # The invitation jobs wait in the outbox (Redis down, a busy worker) while staff cancel.
    tender = tenders.open_round(
        staff, action, desk["roofers"][:2], deadline=utcnow() + timedelta(days=2)
    )
    tenders.cancel_round(staff, tender, "Verkeerde installateurs gekozen.")
    jobs.dispatcher().run_pending()
    assert emails("tender_invitation") == []
    assert emails("tender_cancelled") == sorted([*desk["emails"][:2], *desk["user_emails"]])


def test_a_round_replaced_by_a_newer_one_before_the_scheduler_saw_its_deadline(
    ctx: Flask, desk: dict[str, Any]
) -> None:
    """The scheduler was down when round 1 closed; staff opened round 2 meanwhile. The next
    scheduler round neither fails (every round again) nor matches with round 1's bids: matching
    waits for round 2's deadline."""
    staff = db.session.get(User, desk["staff"])
    action = db.session.get(Action, desk["action"])
    bidder = db.session.get(User, desk["users"][0])
    assert staff is not None and action is not None and bidder is not None
    start = utcnow() - timedelta(hours=3)
    first = tenders.open_round(
        staff, action, desk["roofers"][:1], deadline=start + timedelta(hours=2), now=start
    )
    tenders.submit_bid(bidder, first.invitations[0], {desk["roof"]: BidInput(3900, 3)}, now=start)
    second = tenders.open_round(
        staff, action, desk["roofers"][:2], deadline=utcnow() + timedelta(days=2)
    )
    assert jobs.run_periodic_tasks()["orders.start_after_tenders"] == 0
    assert db.session.scalar(select(func.count()).select_from(MatchingRun)) == 0
    db.session.refresh(first)
    assert first.matching_started_at is not None  # handled: not looked at again

    second.deadline = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert jobs.run_periodic_tasks()["orders.start_after_tenders"] == 1
    run = db.session.scalars(select(MatchingRun)).one()
    assert run.tender_round_id == second.id
