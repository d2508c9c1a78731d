"""The search that follows CP-SAT on a plain GAP it has not solved: CP-SAT on the core (the
options of least LP reduced cost) and the exact re-assignment of a few agents' items at a time.

Neither may return an infeasible or a dearer answer than it was given, nor call something optimal
that is not; with a group as large as the whole problem the polish is an exact solver, so it
must reach the brute-force optimum.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from coop.matching import engine, solve
from tests.matching.test_branch import CASES, optimal_solutions, random_gap


def greedy_start(problem: engine.AssignmentProblem) -> dict[int, int] | None:
    """A feasible but poor solution: each item to its dearest option that still fits."""
    load = [0] * len(problem.agents)
    chosen: dict[int, int] = {}
    for i in range(len(problem.items)):
        options = sorted(
            (k for k, o in enumerate(problem.options) if o.item == i),
            key=lambda k: -problem.options[k].cost,
        )
        for k in options:
            o = problem.options[k]
            if load[o.agent] + o.capacity_use <= problem.agents[o.agent].capacity:
                load[o.agent] += o.capacity_use
                chosen[k] = -1
                break
        else:
            return None
    return chosen


def cost_and_feasible(problem: engine.AssignmentProblem, solution: dict[int, int]) -> int:
    items = sorted(problem.options[k].item for k in solution)
    assert items == list(range(len(problem.items))), "every item exactly once"
    load = [0] * len(problem.agents)
    for k in solution:
        load[problem.options[k].agent] += problem.options[k].capacity_use
    assert all(u <= a.capacity for u, a in zip(load, problem.agents, strict=True))
    return sum(problem.options[k].cost for k in solution)


STARTS = [s for s in CASES if greedy_start(random_gap(random.Random(s), 7, 3))][:8]


@pytest.mark.parametrize("seed", STARTS)
def test_polish_with_every_agent_in_one_group_reaches_the_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = random_gap(random.Random(seed), 7, 3)
    best, _ = optimal_solutions(problem)
    start = greedy_start(problem)
    assert best is not None and start is not None
    monkeypatch.setattr(engine, "POLISH_AGENTS", 3)
    polished = engine._polish_by_agent_groups(problem, start, time.monotonic() + 2, 2, best)
    assert cost_and_feasible(problem, polished) == best


def test_polish_in_small_groups_only_improves_and_stays_feasible() -> None:
    problem = random_gap(random.Random(7), 60, 10, capacity=(40, 60))
    start = greedy_start(problem)
    assert start is not None
    before = cost_and_feasible(problem, start)
    polished = engine._polish_by_agent_groups(problem, start, time.monotonic() + 1.5, 2, 0)
    after = cost_and_feasible(problem, polished)
    assert after < before  # the dearest-first start leaves much to gain


def test_core_search_improves_a_poor_start_without_claiming_too_much() -> None:
    problem = random_gap(random.Random(11), 80, 10, capacity=(50, 70))
    start = greedy_start(problem)
    assert start is not None
    before = cost_and_feasible(problem, start)
    outcome = engine._improve_by_core(
        problem, start, None, time.monotonic() + 3, 2, True, len(problem.items)
    )
    after = cost_and_feasible(problem, outcome.solution)
    assert after < before
    assert outcome.lower_bound is not None and outcome.lower_bound <= after
    assert outcome.optimal == (outcome.lower_bound == after)


def spy_on(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(engine, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, name, spy)
    return calls


@pytest.mark.parametrize("branch_max", [5_000_000, 0])
def test_solve_takes_branching_on_a_plain_gap_cp_sat_has_not_solved_and_else_the_core(
    branch_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CP-SAT gets no time on the whole problem, so it cannot prove this one optimal: the rest
    # of the time goes to the branch and bound, or, above BRANCH_MAX_CELLS, to the core search.
    assert branch_max in (0, engine.BRANCH_MAX_CELLS)
    branching = spy_on(monkeypatch, "_improve_by_branching")
    core = spy_on(monkeypatch, "_improve_by_core")
    monkeypatch.setattr(engine, "FIRST_SHARE", 0.0)
    monkeypatch.setattr(engine, "BRANCH_MAX_CELLS", branch_max)
    problem = random_gap(random.Random(5), 100, 20, capacity=(40, 50))
    assert len(problem.options) > engine.SMALL
    assert engine._knapsack_cells(problem) <= 5_000_000
    result = solve(problem, time_limit_s=2)
    assert (bool(branching), bool(core)) == ((True, False) if branch_max else (False, True))
    assert result.covered == result.total
    assert result.lower_bound is not None and result.lower_bound <= result.cost
    index = {(o.item, o.agent): k for k, o in enumerate(problem.options)}
    chosen = {index[i, r.shares[0].agent]: -1 for i, r in enumerate(result.results)}
    assert cost_and_feasible(problem, chosen) == result.cost


def test_core_search_keeps_the_coverage_when_not_every_item_can_be_covered() -> None:
    # Capacity for about 60 of 80 items: the search must keep the homes covered and only make
    # them cheaper, as the batching's problems are when an area is short of installers.
    problem = random_gap(random.Random(12), 80, 10, capacity=(25, 35))
    load = [0] * len(problem.agents)
    start: dict[int, int] = {}
    for k, o in sorted(enumerate(problem.options), key=lambda t: -t[1].cost):
        if o.item in {problem.options[j].item for j in start}:
            continue
        if load[o.agent] + o.capacity_use <= problem.agents[o.agent].capacity:
            load[o.agent] += o.capacity_use
            start[k] = -1
    covered = len(start)
    assert covered < len(problem.items)
    before = sum(problem.options[k].cost for k in start)
    outcome = engine._improve_by_core(problem, start, None, time.monotonic() + 3, 2, False, covered)
    found = outcome.solution
    assert len({problem.options[k].item for k in found}) == len(found) >= covered
    load = [0] * len(problem.agents)
    for k in found:
        load[problem.options[k].agent] += problem.options[k].capacity_use
    assert all(u <= a.capacity for u, a in zip(load, problem.agents, strict=True))
    assert sum(problem.options[k].cost for k in found) < before
    assert outcome.lower_bound is None  # coverage not proven maximal: no cost bound claimed
