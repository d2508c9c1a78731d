"""The Lagrangian bound and the reduced-cost fixing it drives, against brute force; and the
split of a problem into independent parts.

A fixing rule that removed an option of an optimal solution would make the engine return a
worse answer as "proven optimal", so every option of every optimal solution must survive.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from coop.matching import Agent, AssignmentProblem, Item, Option, engine, relax, solve


def random_gap(
    rng: random.Random, items: int, agents: int, capacity: tuple[int, int] = (8, 16)
) -> AssignmentProblem:
    """A plain GAP (items of size 1, every item must be assigned) that is feasible: each item
    has at least one option, and capacities leave room but not much."""
    options = []
    for i in range(items):
        chosen = [a for a in range(agents) if rng.random() < 0.8] or [rng.randrange(agents)]
        options += [Option(i, a, rng.randint(5, 50), rng.randint(1, 9)) for a in chosen]
    return AssignmentProblem(
        tuple(Item(f"j{i}") for i in range(items)),
        tuple(Agent(f"a{a}", rng.randint(*capacity)) for a in range(agents)),
        tuple(options),
    )


def optimal_solutions(problem: AssignmentProblem) -> tuple[int | None, list[tuple[int, ...]]]:
    """(least cost covering every item, every assignment reaching it), option indices."""
    per_item = [
        [k for k, o in enumerate(problem.options) if o.item == i] for i in range(len(problem.items))
    ]
    best: int | None = None
    found: list[tuple[int, ...]] = []
    for pick in itertools.product(*per_item):
        load = [0] * len(problem.agents)
        for k in pick:
            load[problem.options[k].agent] += problem.options[k].capacity_use
        if any(u > a.capacity for u, a in zip(load, problem.agents, strict=True)):
            continue
        cost = sum(problem.options[k].cost for k in pick)
        if best is None or cost < best:
            best, found = cost, [pick]
        elif cost == best:
            found.append(pick)
    return best, found


CASES = [s for s in range(40) if optimal_solutions(random_gap(random.Random(s), 7, 3))[0]]


@pytest.mark.parametrize("seed", CASES[:20])
def test_fixing_keeps_every_option_of_every_optimal_solution(seed: int) -> None:
    problem = random_gap(random.Random(seed), 7, 3)
    best, solutions = optimal_solutions(problem)
    assert best is not None
    a = engine._arrays(problem)
    lp = relax.lp_relaxation(a, None, cover_all=True)
    lag = relax.lagrangian(a, lp.item_dual, float(best), seconds=2.0)
    # The bound is a bound, and no weaker than the LP it starts from.
    assert lp.value - 1e-6 <= lag.bound <= best + 1e-6
    keep = relax.keep_by_lagrangian(a, lag, float(best))
    for pick in solutions:
        assert all(keep[k] for k in pick), (seed, pick, np.nonzero(~keep)[0].tolist())
    # One below the optimum, nothing feasible may be left: some item loses every option, or
    # the options left admit no solution (checked by brute force on what is left).
    below = relax.keep_by_lagrangian(a, lag, float(best - 1))
    left = engine._restricted(problem, np.nonzero(below)[0].tolist())
    cheaper, _ = optimal_solutions(left)
    assert cheaper is None or cheaper >= best


def test_fixing_removes_options_on_a_larger_instance() -> None:
    # It must also do something: with the optimum as target, most options go.
    rng = random.Random(5)
    problem = random_gap(rng, 30, 5, capacity=(36, 44))
    result = solve(problem, time_limit_s=10)
    assert result.optimal
    a = engine._arrays(problem)
    lp = relax.lp_relaxation(a, None, cover_all=True)
    lag = relax.lagrangian(a, lp.item_dual, float(result.cost), seconds=3.0)
    keep = relax.keep_by_lagrangian(a, lag, float(result.cost))
    chosen = [r.shares[0].agent for r in result.results]
    index = {(o.item, o.agent): k for k, o in enumerate(problem.options)}
    assert all(keep[index[i, ag]] for i, ag in enumerate(chosen))
    assert keep.sum() < 0.6 * len(problem.options)


@pytest.mark.parametrize("seed", CASES[:8])
def test_solving_with_fixing_reaches_the_brute_force_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the fixing stage on tiny problems: CP-SAT gets no time of its own first.
    monkeypatch.setattr(engine, "SMALL", 0)
    monkeypatch.setattr(engine, "FIRST_SHARE", 0.0)
    problem = random_gap(random.Random(seed), 7, 3)
    best, _ = optimal_solutions(problem)
    result = solve(problem, time_limit_s=5, fixing=True)
    assert result.covered == result.total
    assert result.cost == best
    assert result.optimal and result.lower_bound == best


def test_independent_parts_are_solved_apart_and_combined() -> None:
    # Two regions that share no installer, and a group nobody serves: three parts, one without
    # any option. The answer is the union of each part's optimum.
    seeds = (
        s for s in itertools.count() if optimal_solutions(random_gap(random.Random(s), 6, 2))[0]
    )
    north = random_gap(random.Random(next(seeds)), 6, 2)
    south = random_gap(random.Random(next(seeds)), 6, 2)
    shift = len(north.items)
    problem = AssignmentProblem(
        (*north.items, *(Item(f"s{i.key}") for i in south.items), Item("nobody")),
        (*north.agents, *(Agent(f"s{a.key}", a.capacity) for a in south.agents)),
        (
            *north.options,
            *(Option(o.item + shift, o.agent + 2, o.cost, o.capacity_use) for o in south.options),
        ),
    )
    parts = engine._components(problem)
    assert sorted(len(items) for items, _ in parts) == [6, 6]
    result = solve(problem, time_limit_s=5)
    n_best, _ = optimal_solutions(north)
    s_best, _ = optimal_solutions(south)
    assert n_best is not None and s_best is not None
    assert result.optimal
    assert result.cost == n_best + s_best == result.lower_bound
    assert result.covered == 12 and not result.result("nobody").assigned
    for r in result.results[:shift]:
        assert problem.agents[r.shares[0].agent].key in {"a0", "a1"}
