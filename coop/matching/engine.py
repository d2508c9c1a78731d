"""The core of matching: a generalized assignment problem (GAP) with optional and splittable items,
solved exactly (or as far as the time limit allows) by OR-Tools CP-SAT. A problem without split
items that CP-SAT does not solve in a quarter of the time goes on to one of two searches: where
every item can be covered (the plain GAP), branch and bound on the Lagrangian bound
(`coop.matching.branch`, `_improve_by_branching`), which proves the OR-Library types A-C optimal
and comes within 0.2% of the best known on type D; elsewhere a core search and a polish
(`_improve_by_core`).

Plain data in, plain data out: no Flask, no SQL. `build_problem()` in `coop.matching.domain`
turns demand groups and installers into an `AssignmentProblem` (`coop.matching.problem`, which
needs none of the engine's libraries); `bench/gap.py` feeds the
OR-Library GAP instances straight into `solve()`.

The objective is lexicographic and solved in two phases, so that no "big penalty" constant has to
dominate costs in cents (which would hurt the solver's numerics on large instances):

1. cover as many units (homes) as possible;
2. with at least that coverage, minimise cost, plus a penalty per extra part of a split item so
   that a street is only divided over as few installers as it must be.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from coop.matching import relax
from coop.matching.problem import (
    LANGUAGES,
    Agent,
    Assignment,
    AssignmentProblem,
    Item,
    ItemResult,
    Option,
    Share,
)
from coop.matching.solution import (
    _cost_bound,
    _knapsack_cells,
    _Model,
    _objective_cost,
    _results,
    _values,
    _within_capacity,
)

__all__ = [
    "LANGUAGES",
    "Agent",
    "Assignment",
    "AssignmentProblem",
    "Item",
    "ItemResult",
    "Option",
    "Share",
    "solve",
]


def _unit_cost(problem: AssignmentProblem, o: Option) -> int:
    # Per-unit price of a split part, rounded to the cost unit (a cent): exact enough to choose.
    return round(o.cost / problem.items[o.item].size)


def _build(problem: AssignmentProblem, cover_all: bool = False) -> _Model:
    """The model; with ``cover_all`` every item must be assigned in full (exactly one option per
    whole item): the plain GAP, which CP-SAT solves much better than "at most one" plus a
    coverage constraint."""
    m = cp_model.CpModel()
    whole: dict[int, cp_model.IntVar] = {}
    units: dict[int, cp_model.IntVar] = {}
    used: dict[int, cp_model.IntVar] = {}
    per_item: list[list[int]] = [[] for _ in problem.items]
    per_agent: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in problem.agents]
    for k, o in enumerate(problem.options):
        item = problem.items[o.item]
        cap = problem.agents[o.agent].capacity
        per_item[o.item].append(k)
        if item.splittable:
            per_unit = o.capacity_use // item.size
            top = item.size if per_unit == 0 else min(item.size, cap // per_unit)
            if top <= 0:
                continue
            units[k] = m.new_int_var(0, top, f"u{k}")
            used[k] = m.new_bool_var(f"p{k}")
            m.add(units[k] <= top * used[k])
            m.add(units[k] >= used[k])
            per_agent[o.agent].append((per_unit, units[k]))
        elif o.capacity_use <= cap:
            whole[k] = m.new_bool_var(f"x{k}")
            per_agent[o.agent].append((o.capacity_use, whole[k]))
    for i, ks in enumerate(per_item):
        if problem.items[i].splittable:
            parts = [units[k] for k in ks if k in units]
            if parts and cover_all:
                m.add(sum(parts) == problem.items[i].size)
            elif parts:
                m.add(sum(parts) <= problem.items[i].size)
        elif cover_all:
            m.add_exactly_one(whole[k] for k in ks if k in whole)
        else:
            m.add_at_most_one(whole[k] for k in ks if k in whole)
    for a, terms in enumerate(per_agent):
        if terms:
            m.add(sum(c * v for c, v in terms) <= problem.agents[a].capacity)
    sizes = [problem.items[problem.options[k].item].size for k in whole]
    covered = cp_model.LinearExpr.weighted_sum(
        [*whole.values(), *units.values()], [*sizes, *([1] * len(units))]
    )
    # Each extra part of a split item costs as much as the dearest whole option of any split
    # item, so the solver only spreads a group over more installers than needed to cover homes.
    part_penalty = (
        max((o.cost for o in problem.options if problem.items[o.item].splittable), default=0) + 1
    )
    cost = cp_model.LinearExpr.weighted_sum(
        [*whole.values(), *units.values(), *used.values()],
        [
            *(problem.options[k].cost for k in whole),
            *(_unit_cost(problem, problem.options[k]) for k in units),
            *([part_penalty] * len(used)),
        ],
    )
    return _Model(m, whole, units, used, covered, cost)


def _solver(seconds: float, workers: int) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = max(0.01, seconds)
    s.parameters.num_workers = workers
    # Deterministic given the time limit is not possible with several workers; a fixed seed
    # at least makes runs repeatable when the solver finishes (proves optimality) in time.
    s.parameters.random_seed = 0
    return s


def _hint(mod: _Model, solution: Mapping[int, int]) -> None:
    mod.model.clear_hints()  # type: ignore[no-untyped-call]
    for k, v in mod.whole.items():
        mod.model.add_hint(v, k in solution)
    for k, v in mod.units.items():
        mod.model.add_hint(v, solution.get(k, 0))
        mod.model.add_hint(mod.used[k], k in solution)


@dataclass(frozen=True)
class _Outcome:
    solution: dict[int, int]  # option index -> units taken (-1: the whole item)
    coverage_optimal: bool
    optimal: bool
    status: str
    lower_bound: int | None


def solve(problem: AssignmentProblem, time_limit_s: float = 10.0, workers: int = 2) -> Assignment:
    """Assign items to agents: most units covered first, then least cost. See module docstring.

    A problem with no splittable item and more than SMALL options that CP-SAT has not solved in
    FIRST_SHARE of the cost phase gets, for the rest, branch and bound where every item is covered
    and its knapsack tables stay within BRANCH_MAX_CELLS (``_improve_by_branching``), and otherwise
    the core search and polish at the coverage phase 1 reached (``_improve_by_core``)."""
    start = time.monotonic()
    total = sum(item.size for item in problem.items)
    outcome = _Outcome({}, True, True, "NO_OPTIONS", 0)
    if problem.options:
        outcome = _by_component(problem, time_limit_s, workers)
    results, cost, covered = _results(problem, outcome.solution)
    return Assignment(
        results=tuple(results),
        cost=cost,
        covered=covered,
        total=total,
        optimal=outcome.optimal,
        coverage_optimal=outcome.coverage_optimal,
        lower_bound=outcome.lower_bound,
        status=outcome.status,
        seconds=time.monotonic() - start,
    )


def _components(problem: AssignmentProblem) -> list[tuple[list[int], list[int]]]:
    """(items, agents) of each connected part: items sharing no agent, directly or through
    other items, are independent problems, and solving them apart is exact."""
    parent = list(range(len(problem.items) + len(problem.agents)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for o in problem.options:
        a, b = root(o.item), root(len(problem.items) + o.agent)
        if a != b:
            parent[a] = b
    parts: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(problem.items)):
        parts.setdefault(root(i), ([], []))[0].append(i)
    for a in range(len(problem.agents)):
        r = root(len(problem.items) + a)
        if r in parts:
            parts[r][1].append(a)
    return [p for p in parts.values() if p[1]]  # items nobody can serve need no solver


def _by_component(problem: AssignmentProblem, time_limit_s: float, workers: int) -> _Outcome:
    """Solve each connected part on its own, with time in proportion to its options, the
    smallest first so that time they do not use goes to the larger ones."""
    parts = _components(problem)
    if len(parts) <= 1:
        return two_phase(problem, time_limit_s, workers)
    deadline = time.monotonic() + time_limit_s
    by_item: list[list[int]] = [[] for _ in problem.items]
    for k, o in enumerate(problem.options):
        by_item[o.item].append(k)
    sized = sorted(
        ((sum(len(by_item[i]) for i in items), items, agents) for items, agents in parts),
        key=lambda t: t[0],
    )
    remaining = sum(t[0] for t in sized)
    solution: dict[int, int] = {}
    coverage_optimal = optimal = True
    bound: int | None = 0
    for n_opts, items, agents in sized:
        share = (deadline - time.monotonic()) * n_opts / remaining
        remaining -= n_opts
        keys = [k for i in items for k in by_item[i]]
        sub = _part(problem, items, agents, keys)
        # A floor, so that a tiny part is not stopped before CP-SAT has even presolved it.
        part = two_phase(sub, max(0.5, share), workers)
        solution.update({keys[k]: v for k, v in part.solution.items()})
        coverage_optimal &= part.coverage_optimal
        optimal &= part.optimal
        bound = None if bound is None or part.lower_bound is None else bound + part.lower_bound
    status = "OPTIMAL" if optimal else "FEASIBLE"
    return _Outcome(solution, coverage_optimal, optimal, status, bound)


def _part(
    problem: AssignmentProblem, items: Sequence[int], agents: Sequence[int], keys: Sequence[int]
) -> AssignmentProblem:
    """The problem of ``items`` and ``agents`` alone, with the options ``keys`` (indices into
    the problem's, in that order), renumbered."""
    item_at = {i: n for n, i in enumerate(items)}
    agent_at = {a: n for n, a in enumerate(agents)}
    return AssignmentProblem(
        tuple(problem.items[i] for i in items),
        tuple(problem.agents[a] for a in agents),
        tuple(
            Option(item_at[o.item], agent_at[o.agent], o.cost, o.capacity_use)
            for o in (problem.options[k] for k in keys)
        ),
        problem.money,
        problem.unit,
    )


def two_phase(problem: AssignmentProblem, time_limit_s: float, workers: int) -> _Outcome:
    """Maximum coverage, then minimum cost at that coverage, by CP-SAT on the whole model.

    When no item is splittable and the problem is not small, CP-SAT gets only FIRST_SHARE of the
    cost phase's time; if it has not proven the optimum by then, the rest goes to branch and bound
    on the Lagrangian bound where every item is covered (``_improve_by_branching``), and otherwise
    to the core search and polish (``_improve_by_core``).
    """
    start = time.monotonic()
    total = sum(item.size for item in problem.items)
    mod = _build(problem)
    if not (mod.whole or mod.units):
        return _Outcome({}, True, True, "NO_OPTIONS", 0)
    # Phase 1: maximum coverage. Usually quick; it may use at most 40% of the time.
    mod.model.maximize(mod.covered)
    s = _solver(time_limit_s * 0.4, workers)
    st = s.solve(mod.model)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(f"matching found no solution ({s.status_name(st)})")
    coverage_optimal = st == cp_model.OPTIMAL
    best_cover = round(s.objective_value)
    phase1 = _values(mod, s)
    # Phase 2: cheapest solution that keeps that coverage, starting from phase 1's.
    if best_cover == total:
        mod = _build(problem, cover_all=True)
    else:
        mod.model.add(mod.covered >= best_cover)
    _hint(mod, phase1)
    mod.model.minimize(mod.cost)
    improve = len(problem.options) > SMALL and not any(item.splittable for item in problem.items)
    left = time_limit_s - (time.monotonic() - start)
    s = _solver(left * FIRST_SHARE if improve else left, workers)
    st = s.solve(mod.model)
    lower_bound: int | None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        solution = _values(mod, s)
        if st != cp_model.OPTIMAL and (
            _objective_cost(problem, phase1) < _objective_cost(problem, solution)
        ):
            solution = phase1  # stopped by the time limit on a solution worse than its hint
        optimal = coverage_optimal and st == cp_model.OPTIMAL
        status = s.status_name(st)
        lower_bound = _cost_bound(problem, mod, s, solution, optimal)
    else:  # out of time before a first solution: keep phase 1's (it is feasible)
        solution, optimal, status, lower_bound = phase1, False, "FEASIBLE", None
    branching = best_cover == total and _knapsack_cells(problem) <= BRANCH_MAX_CELLS
    if improve and not optimal and branching:  # from CP-SAT's solution, or phase 1's
        return _improve_by_branching(
            problem, solution, lower_bound, start + time_limit_s, workers, coverage_optimal
        )
    if improve and not optimal:
        return _improve_by_core(
            problem,
            solution,
            lower_bound,
            start + time_limit_s,
            workers,
            coverage_optimal,
            best_cover,
        )
    if not coverage_optimal:
        lower_bound = None  # a bound at this coverage says nothing about higher coverage
    return _Outcome(solution, coverage_optimal, optimal, status, lower_bound)


# Below SMALL options (feasible item-agent pairs) CP-SAT proves the optimum quickly by itself,
# and the searches that follow it would only cost time.
SMALL = 300
FIRST_SHARE = 0.25  # of the cost phase's time for CP-SAT on the whole model before what follows
CORE_SHARE = 0.4  # of what is left then for CP-SAT on the core; the rest polishes
CORE_OPTIONS = 3  # options per item in the core: those of least LP reduced cost
POLISH_AGENTS = 3  # agents whose items are re-assigned among themselves, exactly, per step
POLISH_STEP_S = 0.3  # at most, per step
LAGRANGIAN_SHARE = 0.15  # of what is left after CP-SAT, at most, for the Lagrangian bound
TARGET_SLACK = 0.004  # above the bound: the first target of the branch and bound
FIRST_TARGET_SHARE = 0.5  # of what is left, at most, to find a first solution by branching
# A node of the branch and bound fills, per agent, knapsack tables of (its options) x (capacity + 1)
# cells. Above this many in all a node costs tens of milliseconds (and the tables memory), and a
# first solution more than the time there is: the core search and polish do better there. The
# OR-Library's largest take 1.6 million; the parts of the scale benchmark at most 0.95 million.
BRANCH_MAX_CELLS = 5_000_000


def _arrays(problem: AssignmentProblem) -> relax.Arrays:
    opts = problem.options
    return relax.Arrays(
        item=np.array([o.item for o in opts], dtype=np.int64),
        agent=np.array([o.agent for o in opts], dtype=np.int64),
        cost=np.array([o.cost for o in opts], dtype=np.float64),
        use=np.array([o.capacity_use for o in opts], dtype=np.float64),
        size=np.array([problem.items[o.item].size for o in opts], dtype=np.float64),
        n_items=len(problem.items),
        capacity=np.array([a.capacity for a in problem.agents], dtype=np.float64),
    )


def _restricted(problem: AssignmentProblem, keep: Sequence[int]) -> AssignmentProblem:
    """The same items and agents with only the options ``keep`` (indices into the problem's)."""
    return AssignmentProblem(
        problem.items,
        problem.agents,
        tuple(problem.options[k] for k in keep),
        problem.money,
        problem.unit,
    )


def _search_restricted(
    problem: AssignmentProblem,
    keep: Sequence[int],
    solution: Mapping[int, int],
    min_covered: int,
    seconds: float,
    workers: int,
) -> tuple[str, dict[int, int] | None, float | None]:
    """CP-SAT, minimum cost with at least ``min_covered`` units, on the options ``keep`` only,
    starting from what of ``solution`` is left in them.

    Returns (status name, solution in the problem's option indices, the search's bound on cost)."""
    sub = _restricted(problem, keep)
    total = sum(item.size for item in problem.items)
    mod = _build(sub, cover_all=min_covered >= total)
    if min_covered < total:
        mod.model.add(mod.covered >= min_covered)
    back = dict(enumerate(keep))
    position = {k: i for i, k in back.items()}
    _hint(mod, {position[k]: v for k, v in solution.items() if k in position})
    mod.model.minimize(mod.cost)
    s = _solver(seconds, workers)
    st = s.solve(mod.model)
    name = str(s.status_name(st))
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return name, None, None
    found = {back[k]: v for k, v in _values(mod, s).items()}
    return name, found, float(s.best_objective_bound)


def _improve_by_branching(
    problem: AssignmentProblem,
    solution: dict[int, int],
    cp_bound: int | None,
    deadline: float,
    workers: int,
    coverage_optimal: bool,
) -> _Outcome:
    """Every item covered, ``solution`` the best so far (cost UB): branch and bound on the
    Lagrangian bound LB (`coop.matching.branch`), asking for a solution costing at most a target.

    The first target lies TARGET_SLACK above LB: a target far above the optimum fixes nothing and
    leaves the search without guidance, one just above it finds a solution in a few hundred nodes.
    Each solution found sets the next target one below its cost; a target proven out of reach
    raises LB. So the result is proven optimal once no solution below UB exists, and else is the
    best found by the deadline. If the first target finds nothing in FIRST_TARGET_SHARE of the
    time (large parts of real actions, with many agents), the polish gets the rest."""
    from coop.matching import branch  # Numba: loaded only where matching runs, not in the web app

    ub = _objective_cost(problem, solution)
    a = _arrays(problem)
    lp = relax.lp_relaxation(a, None, cover_all=True)
    cost, use, capacity = relax.dense(a)
    allowed = np.isfinite(cost)
    seconds = (deadline - time.monotonic()) * LAGRANGIAN_SHARE
    bound, multipliers = branch.lagrangian(
        cost, use, capacity, allowed, lp.item_dual, float(ub), seconds
    )
    lb = max(relax.ceil_bound(bound), relax.ceil_bound(lp.value), cp_bound or 0)
    option_at = {(o.item, o.agent): k for k, o in enumerate(problem.options)}
    found_any = False
    while lb < ub and deadline - time.monotonic() > 0.05:
        target = min(ub - 1, lb + max(1, int(lb * TARGET_SLACK)))
        seconds = deadline - time.monotonic()
        status, agent_of, _nodes = branch.at_most(
            cost,
            use,
            capacity,
            allowed,
            multipliers,
            target,
            seconds if found_any else seconds * FIRST_TARGET_SHARE,
        )
        if agent_of is not None:
            found_any = True
            found = {option_at[i, int(g)]: -1 for i, g in enumerate(agent_of)}
            found_cost = _objective_cost(problem, found)
            if not _within_capacity(problem, found) or found_cost > target:
                raise RuntimeError("branch and bound returned an assignment it should not have")
            solution, ub = found, found_cost
        elif status == branch.NONE:
            lb = target + 1
        else:
            break  # out of time
    if ub > lb and deadline - time.monotonic() > 0.05:
        # No solution near the bound in time (large parts, many agents): polish what there is.
        solution = _polish_by_agent_groups(problem, solution, deadline, workers, lb)
        ub = _objective_cost(problem, solution)
    return _after_search(solution, coverage_optimal, ub <= lb, min(ub, lb))


def _after_search(
    solution: dict[int, int], coverage_optimal: bool, cost_proven: bool, bound: int
) -> _Outcome:
    """The outcome of a search that followed CP-SAT: optimal when its cost is proven least and
    the coverage most; a cost bound only at a proven coverage (at a lower one it says nothing
    about the cost of covering more)."""
    optimal = cost_proven and coverage_optimal
    return _Outcome(
        solution,
        coverage_optimal,
        optimal,
        "OPTIMAL" if optimal else "FEASIBLE",
        bound if coverage_optimal else None,
    )


def _improve_by_core(
    problem: AssignmentProblem,
    solution: dict[int, int],
    cp_bound: int | None,
    deadline: float,
    workers: int,
    coverage_optimal: bool,
    min_covered: int,
) -> _Outcome:
    """No item split, ``solution`` the best so far, covering ``min_covered`` units (every item,
    in the plain GAP): search where good solutions are, then polish, at that coverage.

    The core keeps, per item, the CORE_OPTIONS options of least LP reduced cost (and the one
    ``solution`` uses): on the OR-Library sets an optimal or best-known solution lies almost
    entirely in it, and CP-SAT searches a problem a third or a sixth the size far deeper than the
    whole one. Polishing then re-solves, exactly, the items of a few agents at a time among those
    agents with every option, which moves items along chains no single swap can
    (``_polish_by_agent_groups``). Neither step proves anything; the LP value and CP-SAT's bound do,
    when the cost reaches them."""
    ub = _objective_cost(problem, solution)
    a = _arrays(problem)
    total = sum(item.size for item in problem.items)
    cover_all = min_covered >= total
    lp = relax.lp_relaxation(a, None if cover_all else min_covered, cover_all=cover_all)
    lb = max(relax.ceil_bound(lp.value), cp_bound or 0)
    if ub > lb:
        keep = set(solution)
        by_item: list[list[int]] = [[] for _ in problem.items]
        for k, o in enumerate(problem.options):
            by_item[o.item].append(k)
        for ks in by_item:
            keep.update(sorted(ks, key=lambda k: lp.reduced[k])[:CORE_OPTIONS])
        seconds = (deadline - time.monotonic()) * CORE_SHARE
        _status, found, _bound = _search_restricted(
            problem, sorted(keep), solution, min_covered, seconds, workers
        )
        if found is not None and _objective_cost(problem, found) < ub:
            solution = found
        solution = _polish_by_agent_groups(problem, solution, deadline, workers, lb)
        ub = _objective_cost(problem, solution)
    return _after_search(solution, coverage_optimal, ub <= lb, min(ub, lb))


def _polish_by_agent_groups(
    problem: AssignmentProblem,
    solution: dict[int, int],
    deadline: float,
    workers: int,
    lower_bound: int,
) -> dict[int, int]:
    """Until the deadline (or the bound): take POLISH_AGENTS agents at random and re-assign the
    items they hold among them at least cost, exactly, with every option; keep what is cheaper.
    With several workers, groups of disjoint agents are solved side by side (CP-SAT releases the
    GIL). Seeded, so that runs differ only as far as the time limit makes them."""
    # Only assigned items move, and each stays assigned: coverage does not change.
    option_of = {problem.options[k].item: k for k in solution}
    if len(problem.agents) < 2:
        return solution
    by_pair = {(o.item, o.agent): k for k, o in enumerate(problem.options)}
    group = min(POLISH_AGENTS, len(problem.agents))
    parallel = max(1, min(workers, len(problem.agents) // group))
    rng = random.Random(0)  # noqa: S311 -- a search order, not a secret
    cost = sum(problem.options[k].cost for k in option_of.values())

    def reassign(agents: list[int]) -> dict[int, int]:
        """item -> option of the cheapest assignment of the agents' items among them."""
        members = set(agents)
        items = [i for i, k in option_of.items() if problem.options[k].agent in members]
        keys = [by_pair[i, g] for i in items for g in agents if (i, g) in by_pair]
        seconds = min(POLISH_STEP_S, deadline - time.monotonic())
        if not items or seconds <= 0.01:
            return {}
        mod = _build(_part(problem, items, agents, keys), cover_all=True)
        key_at = {k: n for n, k in enumerate(keys)}
        _hint(mod, {key_at[option_of[i]]: -1 for i in items})
        mod.model.minimize(mod.cost)
        solver = _solver(seconds, 1)
        if solver.solve(mod.model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return {}
        return {problem.options[keys[n]].item: keys[n] for n in _values(mod, solver)}

    with ThreadPoolExecutor(parallel) as pool:
        while cost > lower_bound and deadline - time.monotonic() > 0.02:
            order = rng.sample(range(len(problem.agents)), group * parallel)
            groups = [order[n * group : (n + 1) * group] for n in range(parallel)]
            for found in pool.map(reassign, groups):
                before = sum(problem.options[option_of[i]].cost for i in found)
                after = sum(problem.options[k].cost for k in found.values())
                if after < before:
                    option_of.update(found)
                    cost -= before - after
    return {k: -1 for k in option_of.values()}
