"""From closed registration to orders, one module per subject: the demand in batches
(batches), who can take it (candidates), matching runs (runs), the proposal staff
review (review) and approve (approval), a registration's status from its order lines
(sync), the installers' answers (answers), the work that ends (endings), and reading
for the pages (queries).

A matching run always covers the homes of the action that have no installer yet, so the first
run, a re-run by staff and the re-matching after a decline are one mechanism. A run is computed
by a job (run_matching) that records its progress; it can be killed at any point and run
again without leaving a second proposal, and only approve_run creates orders.

Everything is importable from here (from coop.orders import services)."""

from __future__ import annotations

from coop.orders.models import RunTrigger
from coop.orders.services.answers import (
    _check_answer,
    accept_order,
    decline_order,
    expire_orders,
    get_order,
    remind_unanswered_orders,
    start_matching_after_tenders,
)
from coop.orders.services.approval import (
    APPROVAL_CHUNK_HOMES,
    _approve_groups,
    _GroupPlan,
    approval_failed,
    approve_run,
    carry_out_approval,
    orders_of_run,
    request_approval,
)
from coop.orders.services.batches import (
    Home,
    batches_of,
    demand,
    ensure_batches,
    prepare_batches,
    registration_closed,
    unassigned_homes,
)
from coop.orders.services.candidates import Candidate, build_problem, candidates
from coop.orders.services.endings import action_cancelled, detach_lines, end_line
from coop.orders.services.queries import (
    DemandFigures,
    OrderSummary,
    demand_figures,
    measure_name,
    orders_of_action,
    orders_of_installer,
)
from coop.orders.services.review import (
    Choice,
    Coverage,
    ProposalGroup,
    choices_for,
    coverage,
    proposal,
    reassign,
)
from coop.orders.services.rules import (
    MATCHABLE,
    MAX_DECLINE_REASON,
    MAX_REGISTRY_WEEKS,
    ORDER_REMINDER_BEFORE,
    USING_CAPACITY,
    OrderError,
)
from coop.orders.services.runs import compute_run, fail_run, get_run, open_run, runs_of, start_run
from coop.orders.services.sync import current_lines, sync_registration, sync_registrations

__all__ = [
    "APPROVAL_CHUNK_HOMES",
    "MATCHABLE",
    "MAX_DECLINE_REASON",
    "MAX_REGISTRY_WEEKS",
    "ORDER_REMINDER_BEFORE",
    "USING_CAPACITY",
    "Candidate",
    "Choice",
    "Coverage",
    "DemandFigures",
    "Home",
    "OrderError",
    "OrderSummary",
    "ProposalGroup",
    "RunTrigger",
    "_GroupPlan",
    "_approve_groups",
    "_check_answer",
    "accept_order",
    "action_cancelled",
    "approval_failed",
    "approve_run",
    "batches_of",
    "build_problem",
    "candidates",
    "carry_out_approval",
    "choices_for",
    "compute_run",
    "coverage",
    "current_lines",
    "decline_order",
    "demand",
    "demand_figures",
    "detach_lines",
    "end_line",
    "ensure_batches",
    "expire_orders",
    "fail_run",
    "get_order",
    "get_run",
    "measure_name",
    "open_run",
    "orders_of_action",
    "orders_of_installer",
    "orders_of_run",
    "prepare_batches",
    "proposal",
    "reassign",
    "registration_closed",
    "remind_unanswered_orders",
    "request_approval",
    "runs_of",
    "start_matching_after_tenders",
    "start_run",
    "sync_registration",
    "sync_registrations",
    "unassigned_homes",
]
