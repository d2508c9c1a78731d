"""Heat-network interest: households register non-binding interest; reaching the threshold
notifies the desk's staff and the interested households exactly once, also when the last two
pledges commit at the same moment (proved on PostgreSQL with two connections); interest can be
withdrawn at any time; the same household twice is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.core import jobs
from coop.core.models import EmailLog, OutboxJob
from coop.extensions import db
from coop.participation import interest
from coop.participation.models import InterestCampaign, InterestPledge
from coop.participation.services import HouseholdAddress, ParticipationError
from tests import factories


def address(number: int, street: str = "Hondsrug") -> HouseholdAddress:
    return HouseholdAddress("3524 BA", number, "", street)


def pledge(campaign: Any, number: int, **extra: Any) -> InterestPledge:
    values: dict[str, Any] = {
        "address": address(number),
        "name": f"Bewoner {number}",
        "email": f"bewoner{number}@example.nl",
        "language": "nl",
        "contact_opt_in": False,
        "consent": True,
    }
    values.update(extra)
    return interest.pledge(campaign, **values)


def threshold_jobs() -> list[str]:
    return list(
        db.session.scalars(select(OutboxJob.key).where(OutboxJob.key.like("interest-threshold:%")))
    )


def test_reaching_the_threshold_notifies_staff_and_households_once(ctx: Flask) -> None:
    org = factories.organisation()
    factories.staff(org, "sanne@example.nl")
    factories.staff(factories.organisation("Elders"), "other@example.nl")
    campaign = factories.campaign(factories.neighbourhood(org), households=10, percent=30)
    assert campaign.threshold_households == 3
    pledge(campaign, 1)
    pledge(campaign, 2)
    assert threshold_jobs() == []
    pledge(campaign, 3)
    db.session.refresh(campaign)
    assert campaign.threshold_reached_at is not None
    assert len(threshold_jobs()) == 4  # three households and the one staff member of this desk
    pledge(campaign, 4)  # beyond the threshold: no second round
    assert len(threshold_jobs()) == 4
    jobs.dispatcher().run_pending()
    subjects = db.session.scalars(
        select(EmailLog.recipient).where(EmailLog.subject.like("Drempel gehaald%"))
    ).all()
    assert sorted(subjects) == sorted(
        ["sanne@example.nl", "bewoner1@example.nl", "bewoner2@example.nl", "bewoner3@example.nl"]
    )


def test_withdrawing_and_registering_again_does_not_announce_twice(ctx: Flask) -> None:
    campaign = factories.campaign(
        factories.neighbourhood(factories.organisation()), households=2, percent=100
    )
    first = pledge(campaign, 1)
    pledge(campaign, 2)
    assert len(threshold_jobs()) == 2
    interest.withdraw(first)
    assert interest.progress(campaign).interested == 1
    with pytest.raises(ParticipationError, match="already_withdrawn"):
        interest.withdraw(first)
    again = pledge(campaign, 1)
    assert again.id == first.id and again.round == 2
    assert len(threshold_jobs()) == 2


def test_the_same_household_twice_is_refused(ctx: Flask) -> None:
    campaign = factories.campaign(factories.neighbourhood(factories.organisation()))
    pledge(campaign, 1)
    with pytest.raises(ParticipationError) as refused:
        pledge(campaign, 1, name="Iemand anders", email="ander@example.nl")
    assert refused.value.code == "already_interested"
    assert db.session.scalar(select(func.count()).select_from(InterestPledge)) == 1


def test_pledges_outside_the_area_after_the_deadline_or_without_consent(ctx: Flask) -> None:
    nb = factories.neighbourhood(factories.organisation())
    campaign = factories.campaign(nb)
    with pytest.raises(ParticipationError, match="outside_neighbourhood"):
        interest.pledge(
            campaign,
            address=HouseholdAddress("1011 AB", 1, "", "Damrak"),
            name="Anna",
            email="a@example.nl",
            language="nl",
            contact_opt_in=False,
            consent=True,
        )
    with pytest.raises(ParticipationError, match="no_consent"):
        pledge(campaign, 1, consent=False)
    closed = factories.campaign(nb, days=-1)
    with pytest.raises(ParticipationError, match="campaign_closed"):
        pledge(closed, 1)
    assert db.session.scalar(select(func.count()).select_from(InterestPledge)) == 0


@pytest.mark.postgres
def test_two_last_pledges_at_the_same_moment_announce_once(app: Flask, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the race needs two real connections to PostgreSQL")
    with app.app_context():
        campaign_id = factories.campaign(
            factories.neighbourhood(factories.organisation()), households=10, percent=20
        ).id
        db.session.remove()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def last_pledge(number: int) -> None:
        try:
            with app.test_request_context():
                campaign = db.session.get(InterestCampaign, campaign_id)
                assert campaign is not None
                barrier.wait(timeout=10)
                pledge(campaign, number)
                db.session.remove()
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    for _ in range(5):  # several rounds: the race must be lost by neither order
        with app.app_context():
            db.session.execute(InterestPledge.__table__.delete())
            db.session.execute(OutboxJob.__table__.delete())
            db.session.execute(
                InterestCampaign.__table__.update().values(threshold_reached_at=None)
            )
            db.session.commit()
        threads = [threading.Thread(target=last_pledge, args=(n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        with app.app_context():
            campaign = db.session.get(InterestCampaign, campaign_id)
            assert campaign is not None and campaign.threshold_reached_at is not None
            keys = threshold_jobs()
            assert sorted(keys) == sorted(
                f"interest-threshold:{campaign_id}:pledge:{p}"
                for p in db.session.scalars(select(InterestPledge.id))
            ), keys
            db.session.remove()


def test_interest_through_the_page_and_withdrawn_by_the_link(client: Any, app: Flask) -> None:
    with app.test_request_context():
        campaign = factories.campaign(factories.neighbourhood(factories.organisation()))
        campaign_id = campaign.id
    url = f"/interest/{campaign_id}"
    data = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "postcode": "3524ba",
        "house_number": "12",
        "street": "Hondsrug",
        "consent": "y",
    }
    assert factories.post_form(client, url, {**data, "postcode": "1011 AB"}).status_code == 200
    assert factories.post_form(client, url, data).status_code == 302
    twice = factories.post_form(client, url, data)
    assert "al opgegeven" in twice.get_data(as_text=True)
    assert "1 huishouden heeft interesse" in client.get(url).get_data(as_text=True)
    with app.test_request_context():
        from coop.participation.services import link_token

        entry = db.session.scalars(select(InterestPledge)).one()
        link = f"/interest/pledge/{link_token('pledge', entry.id)}"
    assert factories.post_form(client, link, {}).status_code == 302
    assert "ingetrokken" in client.get(link).get_data(as_text=True)
    assert client.get("/interest/pledge/forged-token").status_code == 404
