"""From closed registration to orders, through the services: the tender, the matching run, the
proposal staff approve, and the installers' answers that send homes back to matching."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.actions import services as actions
from coop.actions.models import Action
from coop.core import jobs
from coop.core.models import EmailLog, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db
from coop.orders import services
from coop.orders.models import (
    Batch,
    LineStatus,
    MatchingRun,
    Order,
    OrderStatus,
    ProposedAssignment,
    RunStatus,
    RunTrigger,
)
from coop.orders.services import approval
from coop.registrations.models import Registration, RegistrationStatus
from coop.tenders import services as tenders
from coop.tenders.services import BidInput, TenderError
from tests import factories


def measure_of(act: Action, code: str) -> int:
    return next(m.id for m in act.measures if m.measure.code == code)


@pytest.fixture
def world(ctx: Flask) -> dict:
    org = factories.organisation()
    staff = factories.staff(org)
    act = factories.action(org)
    cheap_local = factories.installer(
        org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)}
    )
    everywhere = factories.installer(
        org,
        "Warmte en Dak Utrecht",
        area="3500-3599",
        offers={"roof": (4500, 5), "hybrid_heat_pump": (300000, 2)},
    )
    homes = (
        [
            factories.confirmed_registration(act, postcode="3521 AB", street="Vondellaan", number=n)
            for n in range(1, 6)
        ]
        + [
            factories.confirmed_registration(act, postcode="3524 BA", street="Hondsrug", number=n)
            for n in range(1, 4)
        ]
        + [
            factories.confirmed_registration(
                act,
                postcode="3524 BA",
                street="Hondsrug",
                number=n,
                measures={"hybrid_heat_pump": 1},
            )
            for n in range(10, 12)
        ]
    )
    return {
        "org": org,
        "staff": staff,
        "action": act,
        "local": cheap_local,
        "everywhere": everywhere,
        "local_user": factories.installer_user(cheap_local),
        "everywhere_user": factories.installer_user(everywhere),
        "registrations": homes,
    }


def bid_round(world: dict, now) -> None:
    act = world["action"]
    actions.close_action(world["staff"], act, now=now)
    tender = tenders.open_round(
        world["staff"],
        act,
        [world["local"].id, world["everywhere"].id],
        deadline=now + timedelta(hours=2),
        now=now,
    )
    by_installer = {i.installer_id: i for i in tender.invitations}
    roof, pump = measure_of(act, "roof"), measure_of(act, "hybrid_heat_pump")
    tenders.submit_bid(
        world["local_user"], by_installer[world["local"].id], {roof: BidInput(3900, 10)}, now=now
    )
    tenders.submit_bid(
        world["everywhere_user"],
        by_installer[world["everywhere"].id],
        {roof: BidInput(4100, 10), pump: BidInput(290000, 5)},
        now=now,
    )
    comparison = tenders.compare_bids(tender, now=now + timedelta(minutes=5))
    assert comparison.sealed and comparison.submitted == 2
    assert all(row.lines == {} for row in comparison.rows)  # nobody sees a price yet


def run_jobs() -> None:
    jobs.dispatcher().run_pending()


def test_tender_to_orders_and_a_decline_sends_the_homes_back_to_matching(world: dict) -> None:
    now = utcnow()
    act = world["action"]
    bid_round(world, now)

    after_deadline = now + timedelta(hours=3)
    assert services.start_matching_after_tenders(after_deadline) == 1
    assert services.start_matching_after_tenders(after_deadline) == 0  # once per round
    run_jobs()
    run = services.open_run(act)
    assert run is not None and run.status is RunStatus.PROPOSED
    assert (run.homes_total, run.homes_covered) == (10, 10)
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 3

    groups = {(g.batch.pc4, g.batch.action_measure.measure.code): g for g in services.proposal(run)}
    # The cheaper local roofer takes its own area; only the other one works in 3524.
    assert [p.installer.company_name for p in groups["3521", "roof"].parts] == ["Dakwerk Lunetten"]
    assert [p.installer.company_name for p in groups["3524", "roof"].parts] == [
        "Warmte en Dak Utrecht"
    ]
    assert groups["3524", "hybrid_heat_pump"].parts[0].homes == 2
    assert "Dakwerk Lunetten" in groups["3521", "roof"].explanation_en

    orders = services.approve_run(world["staff"], run, now=after_deadline)
    assert len(orders) == 3
    with pytest.raises(services.OrderError):
        services.approve_run(world["staff"], run, now=after_deadline)  # twice: nothing new
    assert db.session.scalar(select(func.count()).select_from(Order)) == 3
    statuses = {r.status for r in db.session.scalars(select(Registration))}
    assert statuses == {RegistrationStatus.ASSIGNED}
    run_jobs()
    subjects = [e.subject for e in db.session.scalars(select(EmailLog))]
    assert sum("Je installateur" in s or "Your installer" in s for s in subjects) == 10
    # One installer, two orders in one postcode area: the subjects tell them apart by measure.
    order_subjects = sorted(
        db.session.scalars(
            select(EmailLog.subject).where(
                EmailLog.template == "order_sent",
                EmailLog.recipient == world["everywhere_user"].email,
            )
        )
    )
    assert len(order_subjects) == 2 and len(set(order_subjects)) == 2, order_subjects
    names = {m.measure.code: (m.measure.name_nl, m.measure.name_en) for m in act.measures}
    for code in ("hybrid_heat_pump", "roof"):
        naming = [s for s in order_subjects if any(name in s for name in names[code])]
        assert len(naming) == 1, (code, order_subjects)

    by_place = {(o.batch.pc4, o.batch.action_measure.measure.code): o for o in orders}
    services.accept_order(world["local_user"], by_place["3521", "roof"], now=after_deadline)
    with pytest.raises(services.OrderError) as refused:
        services.accept_order(world["local_user"], by_place["3524", "roof"], now=after_deadline)
    assert refused.value.code == "not_yours"

    declined = by_place["3524", "roof"]
    services.decline_order(
        world["everywhere_user"], declined, "Geen ploeg vrij", now=after_deadline
    )
    assert declined.status is OrderStatus.DECLINED
    assert {line.status for line in declined.lines} == {LineStatus.CANCELLED}
    back = [line.registration for line in declined.lines]
    assert {r.status for r in back} == {RegistrationStatus.CONFIRMED}

    rematch = services.open_run(act)
    assert rematch is not None and rematch.trigger.value == "order_declined"
    run_jobs()
    db.session.refresh(rematch)
    assert rematch.status is RunStatus.PROPOSED
    [group] = services.proposal(rematch)
    # Nobody else works in 3524: the three roofs wait, and staff read why.
    assert group.unassigned == 3 and group.parts == []
    assert "afgewezen" in group.explanation_nl


def test_bids_are_sealed_and_refused_after_the_deadline(world: dict) -> None:
    now = utcnow()
    bid_round(world, now)
    tender = tenders.latest_round(world["action"])
    assert tender is not None
    invitation = next(i for i in tender.invitations if i.installer_id == world["local"].id)
    with pytest.raises(TenderError) as late:
        tenders.submit_bid(
            world["local_user"],
            invitation,
            {measure_of(world["action"], "roof"): BidInput(1, 1)},
            now=now + timedelta(hours=2, seconds=1),
        )
    assert late.value.code == "deadline_passed"
    other = next(i for i in tender.invitations if i.installer_id == world["everywhere"].id)
    with pytest.raises(TenderError) as theirs:
        tenders.submit_bid(
            world["local_user"],
            other,
            {measure_of(world["action"], "roof"): BidInput(1, 1)},
            now=now,
        )
    assert theirs.value.code == "not_yours"
    opened = tenders.compare_bids(tender, now=now + timedelta(hours=2))
    assert not opened.sealed
    assert opened.lowest[measure_of(world["action"], "roof")] == 3900


def test_a_run_killed_half_way_runs_again_without_a_second_proposal(world: dict) -> None:
    now = utcnow()
    bid_round(world, now)
    run = services.start_run(
        world["staff"], world["action"], services.RunTrigger.STAFF, now=now + timedelta(hours=3)
    )
    # First attempt: it got as far as the batches, then the worker died.
    run.status = RunStatus.RUNNING
    db.session.commit()
    services.ensure_batches(world["action"], services.unassigned_homes(world["action"].id))
    db.session.commit()
    assert services.compute_run(run.id) == "proposed"
    assert services.compute_run(run.id) == "skipped"
    db.session.refresh(run)
    assert run.attempts == 1 and run.status is RunStatus.PROPOSED
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 3
    assert sum(p.homes for p in run.proposals) == 10


def test_a_new_run_supersedes_an_unapproved_proposal(world: dict) -> None:
    now = utcnow() + timedelta(hours=3)
    bid_round(world, utcnow())
    first = services.start_run(world["staff"], world["action"], services.RunTrigger.STAFF, now=now)
    second = services.start_run(world["staff"], world["action"], services.RunTrigger.STAFF, now=now)
    db.session.refresh(first)
    assert first.status is RunStatus.SUPERSEDED
    assert services.compute_run(first.id) == "skipped"
    run_jobs()
    db.session.refresh(second)
    assert second.status is RunStatus.PROPOSED
    assert db.session.scalar(select(func.count()).select_from(MatchingRun)) == 2
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.name == "orders.run_matching")
        )
        == 2
    )


def test_closing_registration_groups_the_demand_and_the_invitation_shows_it(world: dict) -> None:
    now = utcnow()
    act = world["action"]
    actions.close_action(world["staff"], act, now=now)
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0  # after the commit
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 3
    groups = {(g.pc4, g.action_measure.measure.code): g.homes for g in services.demand(act)}
    assert groups == {("3521", "roof"): 5, ("3524", "roof"): 3, ("3524", "hybrid_heat_pump"): 2}
    tenders.open_round(
        world["staff"], act, [world["local"].id], deadline=now + timedelta(days=2), now=now
    )
    run_jobs()
    invitations = db.session.scalars(
        select(EmailLog).where(EmailLog.template == "tender_invitation")
    ).all()
    # The company's address and its user, once each.
    assert sorted(e.recipient for e in invitations) == sorted(
        {world["local"].email, world["local_user"].email}
    )
    assert all("Dakisolatie, 3521: 5 woningen" in (e.body_text or "") for e in invitations)


def test_an_approval_killed_after_its_first_chunk_carries_on_and_sends_each_email_once(
    world: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approval is a job that commits batch by batch: a worker killed half-way leaves the
    first orders, and the job run again makes the rest and enqueues every email once."""
    now = utcnow()
    act = world["action"]
    bid_round(world, now)
    after_deadline = now + timedelta(hours=3)
    services.start_matching_after_tenders(after_deadline)
    run_jobs()
    run = services.open_run(act)
    assert run is not None and run.status is RunStatus.PROPOSED
    monkeypatch.setattr(approval, "APPROVAL_CHUNK_HOMES", 1)  # each batch its own transaction
    real_chunk = approval._approve_groups
    chunks: list[int] = []

    def killed_after_the_first_chunk(*args: object, **kwargs: object) -> bool:
        if chunks:
            raise RuntimeError("worker killed")
        chunks.append(1)
        return real_chunk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(approval, "_approve_groups", killed_after_the_first_chunk)
    services.request_approval(world["staff"], run, now=after_deadline)
    assert run.status is RunStatus.APPROVING and run.approved_by_id == world["staff"].id
    job = db.session.scalars(select(OutboxJob).where(OutboxJob.name == "orders.approve_run")).one()
    with pytest.raises(RuntimeError):
        jobs.execute(job.id)

    # Killed after the first batch: its order is there, the run says how far it got, no email.
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert run.status is RunStatus.APPROVING and 0 < run.progress < 100
    pending = {j.name for j in db.session.scalars(select(OutboxJob)) if j.status.value == "pending"}
    assert pending == {"orders.approve_run"}
    # A second approval (a double click, a colleague) adds nothing and no second job.
    services.request_approval(world["staff"], run, now=after_deadline)
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.name == "orders.approve_run")
        )
        == 1
    )

    monkeypatch.setattr(approval, "_approve_groups", real_chunk)
    assert jobs.execute(job.id) == "done"
    db.session.expire_all()
    assert run.status is RunStatus.APPROVED and run.progress == 100
    assert services.carry_out_approval(run.id) == "skipped"  # delivered once more: nothing
    with pytest.raises(services.OrderError):
        services.request_approval(world["staff"], run, now=after_deadline)

    orders = db.session.scalars(select(Order)).all()
    assert len(orders) == 3
    assert len({(o.batch_id, o.installer_id) for o in orders}) == 3
    lines = [line for order in orders for line in order.lines]
    assert len(lines) == 10 and len({line.registration_measure_id for line in lines}) == 10
    assert {o.respond_by for o in orders} == {orders[0].respond_by}  # one deadline for all
    statuses = {r.status for r in db.session.scalars(select(Registration))}
    assert statuses == {RegistrationStatus.ASSIGNED}
    run_jobs()
    logs = db.session.scalars(select(EmailLog)).all()
    assert len({e.key for e in logs}) == len(logs)
    assert sum(e.template == "registration_assigned" for e in logs) == 10
    # One email per order to each address of its installer: the company's and its user's.
    assert sum(e.template == "order_sent" for e in logs) == 3 * 2


def test_a_decline_while_the_approval_runs_is_matched_again_when_it_ends(world: dict) -> None:
    """An installer can answer an order as soon as its batch is committed; the re-matching
    its decline asks for waits until the approval is done."""
    now = utcnow() - timedelta(hours=3)  # the round's deadline has passed for the job too
    act = world["action"]
    bid_round(world, now)
    after_deadline = utcnow()
    services.start_matching_after_tenders(after_deadline)
    run_jobs()
    run = services.open_run(act)
    assert run is not None
    services.request_approval(world["staff"], run, now=after_deadline)
    plan = services.proposal(run)
    first = next(g for g in plan if g.batch.pc4 == "3524" and g.parts)
    services._approve_groups(
        run.id,
        [
            services._GroupPlan(
                first.batch.id,
                first.batch.action_measure_id,
                first.batch.pc4,
                tuple((p.installer_id or 0, p.homes, p.unit_price_cents or 0) for p in first.parts),
            )
        ],
        progress=30,
    )
    [order] = db.session.scalars(select(Order)).all()
    user = world["everywhere_user"] if order.installer_id == world["everywhere"].id else None
    assert user is not None
    services.decline_order(user, order, "Geen ploeg vrij", now=after_deadline)
    # No run starts beside the approval, nor can staff start one.
    assert services.open_run(act) == run
    with pytest.raises(services.OrderError) as refused:
        services.start_run(world["staff"], act, RunTrigger.STAFF, use_registry_prices=True)
    assert refused.value.code == "approval_running"
    db.session.rollback()

    assert services.carry_out_approval(run.id) == "approved"
    rematch = services.open_run(act)
    assert rematch is not None and rematch.id != run.id
    assert rematch.trigger is RunTrigger.ORDER_DECLINED


def test_a_city_sized_proposal_keeps_its_cost(world: dict) -> None:
    """20,000 homes at a few thousand euros each cost more than the 2^31 cents of an INTEGER
    (measured with bench/approve.py, which PostgreSQL refused before the columns were BIGINT)."""
    act = world["action"]
    batch = Batch(action_id=act.id, action_measure_id=measure_of(act, "roof"), pc4="3521")
    run = MatchingRun(
        action_id=act.id,
        trigger=RunTrigger.STAFF,
        status=RunStatus.PROPOSED,
        cost_cents=2_783_650_485,
    )
    db.session.add_all([batch, run])
    db.session.flush()
    db.session.add(
        ProposedAssignment(
            run_id=run.id,
            batch_id=batch.id,
            installer_id=world["everywhere"].id,
            homes=5000,
            unit_price_cents=450_000,
            cost_cents=5000 * 450_000,
        )
    )
    db.session.commit()
    db.session.expire_all()
    assert run.cost_cents == 2_783_650_485
    assert run.proposals[0].cost_cents == 2_250_000_000
