"""Reading a CP-SAT solution: its values, its cost and a bound on the best cost, whether it
fits every capacity, and the explained results (``engine`` builds and solves the model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from coop.matching.explain import explain
from coop.matching.problem import (
    AssignmentProblem,
    ItemResult,
    Option,
    Share,
)


@dataclass
class _Model:
    """CP-SAT variables for one problem, reused by both phases."""

    model: cp_model.CpModel
    whole: dict[int, cp_model.IntVar]  # option index -> bool (takes the whole item)
    units: dict[int, cp_model.IntVar]  # option index -> units taken (splittable items)
    used: dict[int, cp_model.IntVar]  # option index -> bool (has a part)
    covered: cp_model.LinearExpr
    cost: cp_model.LinearExpr


def _knapsack_cells(problem: AssignmentProblem) -> int:
    options = [0] * len(problem.agents)
    for o in problem.options:
        options[o.agent] += 1
    return sum(n * (a.capacity + 1) for n, a in zip(options, problem.agents, strict=True))


def _within_capacity(problem: AssignmentProblem, solution: Mapping[int, int]) -> bool:
    load = [0] * len(problem.agents)
    for k in solution:
        load[problem.options[k].agent] += problem.options[k].capacity_use
    return all(used <= a.capacity for used, a in zip(load, problem.agents, strict=True))


def _values(mod: _Model, s: cp_model.CpSolver) -> dict[int, int]:
    """Option index -> units taken, for every option that takes something."""
    out: dict[int, int] = {}
    for k, v in mod.whole.items():
        if s.value(v):
            out[k] = -1  # whole item; resolved to its size later
    for k, v in mod.units.items():
        if s.value(v):
            out[k] = int(s.value(v))
    return out


def _cost_bound(
    problem: AssignmentProblem,
    mod: _Model,
    s: cp_model.CpSolver,
    solution: Mapping[int, int],
    optimal: bool,
) -> int | None:
    if optimal:
        return _objective_cost(problem, solution)
    if mod.used:
        return None  # the objective holds part penalties, so its bound is not a cost bound
    return int(-(-s.best_objective_bound // 1))  # costs are integers: round the bound up


def _objective_cost(problem: AssignmentProblem, solution: Mapping[int, int]) -> int:
    return sum(
        problem.options[k].cost if u < 0 else _share_cost(problem, problem.options[k], u)
        for k, u in solution.items()
    )


def _share_cost(problem: AssignmentProblem, o: Option, units: int) -> int:
    return round(o.cost * units / problem.items[o.item].size)


def _quantities(total: int | None, units: Sequence[int], size: int) -> list[int | None]:
    """Split a quantity (m², units) over parts in proportion to homes; the parts add up exactly."""
    if total is None:
        return [None] * len(units)
    exact = [total * u / size for u in units]
    floors = [int(x) for x in exact]
    if sum(units) == size:  # largest remainder, so the parts sum to the whole quantity
        rest = total - sum(floors)
        for idx in sorted(range(len(units)), key=lambda i: floors[i] - exact[i])[:rest]:
            floors[idx] += 1
    return list(floors)


def _results(
    problem: AssignmentProblem, solution: Mapping[int, int]
) -> tuple[list[ItemResult], int, int]:
    taken: list[list[tuple[Option, int]]] = [[] for _ in problem.items]
    load = [0] * len(problem.agents)
    for k, u in solution.items():
        o = problem.options[k]
        item = problem.items[o.item]
        units = item.size if u < 0 else u
        use = o.capacity_use if u < 0 else o.capacity_use // item.size * units
        taken[o.item].append((o, units))
        load[o.agent] += use
    remaining = [a.capacity - load[i] for i, a in enumerate(problem.agents)]
    by_item = problem.options_by_item()
    results: list[ItemResult] = []
    cost = covered = 0
    for i, item in enumerate(problem.items):
        parts = sorted(taken[i], key=lambda t: (-t[1], t[0].agent))
        qty = _quantities(item.quantity, [u for _, u in parts], item.size)
        shares = tuple(
            Share(
                agent=o.agent,
                installer=problem.agents[o.agent].installer,
                units=u,
                cost=o.cost if u == item.size else _share_cost(problem, o, u),
                capacity_use=o.capacity_use if u == item.size else o.capacity_use // item.size * u,
                quantity=q,
            )
            for (o, u), q in zip(parts, qty, strict=True)
        )
        cost += sum(s.cost for s in shares)
        covered += sum(s.units for s in shares)
        explanation, reason = explain(problem, item, shares, by_item[i], remaining)
        results.append(ItemResult(item.key, shares, explanation, reason))
    return results, cost, covered
