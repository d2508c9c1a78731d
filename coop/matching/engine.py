"""The core of matching: a generalized assignment problem (GAP) with optional and splittable items,
solved exactly (or as far as the time limit allows) by OR-Tools CP-SAT.

Plain data in, plain data out: no Flask, no SQL. `build_problem()` in `coop.matching.domain`
turns demand groups and installers into an `AssignmentProblem`; `bench/gap.py` feeds the
OR-Library GAP instances straight into `solve()`.

The objective is lexicographic and solved in two phases, so that no "big penalty" constant has to
dominate costs in cents (which would hurt the solver's numerics on large instances):

1. cover as many units (homes) as possible;
2. with at least that coverage, minimise cost, plus a penalty per extra part of a split item so
   that a street is only divided over as few installers as it must be.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ortools.sat.python import cp_model

from coop.matching.explain import explain

LANGUAGES = ("en", "nl")
DEFAULT_UNIT: Mapping[str, str] = MappingProxyType({"en": "homes", "nl": "woningen"})


@dataclass(frozen=True, slots=True)
class Item:
    """Something to assign whole to one agent: a demand group, or a job of a GAP instance.

    ``size`` is what coverage counts (homes). A ``splittable`` item may be divided over several
    agents in whole units; only items that no single agent can take should be marked so.
    ``labels`` and ``unserved_reason`` are per language and only feed the explanations.
    """

    key: str
    size: int = 1
    quantity: int | None = None
    splittable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    unserved_reason: Mapping[str, str] = field(default_factory=dict)

    def label(self, lang: str) -> str:
        return self.labels.get(lang) or self.labels.get("en") or self.key


@dataclass(frozen=True, slots=True)
class Agent:
    """An installer (or a measure-specific capacity of one): ``owner`` is the key reported back."""

    key: str
    capacity: int
    name: str = ""
    owner: str = ""

    @property
    def display(self) -> str:
        return self.name or self.key

    @property
    def installer(self) -> str:
        return self.owner or self.key


@dataclass(frozen=True, slots=True)
class Option:
    """A feasible (item, agent) pair: the cost and capacity use of taking the whole item."""

    item: int
    agent: int
    cost: int
    capacity_use: int


@dataclass(frozen=True)
class AssignmentProblem:
    items: tuple[Item, ...]
    agents: tuple[Agent, ...]
    options: tuple[Option, ...]
    money: bool = False  # costs are euro cents (formats them in explanations)
    unit: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_UNIT))

    def __post_init__(self) -> None:
        seen: set[tuple[int, int]] = set()
        for item in self.items:
            if item.size < 1:
                raise ValueError(f"item {item.key}: size must be at least 1")
        for agent in self.agents:
            if agent.capacity < 0:
                raise ValueError(f"agent {agent.key}: capacity must not be negative")
        for o in self.options:
            if not (0 <= o.item < len(self.items) and 0 <= o.agent < len(self.agents)):
                raise ValueError(f"option {o}: item or agent index out of range")
            if o.cost < 0 or o.capacity_use < 0:
                raise ValueError(f"option {o}: cost and capacity use must not be negative")
            if (o.item, o.agent) in seen:
                raise ValueError(f"option {o}: duplicate (item, agent) pair")
            seen.add((o.item, o.agent))
            item = self.items[o.item]
            if item.splittable and o.capacity_use % item.size:
                # Parts are whole units, so each unit must use a whole amount of capacity.
                raise ValueError(
                    f"option {o}: capacity use of a splittable item must be a multiple of its size"
                )

    def options_by_item(self) -> list[list[Option]]:
        by_item: list[list[Option]] = [[] for _ in self.items]
        for o in self.options:
            by_item[o.item].append(o)
        return by_item


@dataclass(frozen=True, slots=True)
class Share:
    """The part of an item one agent takes: all of it, or a number of units when split."""

    agent: int
    installer: str
    units: int
    cost: int
    capacity_use: int
    quantity: int | None = None


@dataclass(frozen=True)
class ItemResult:
    key: str
    shares: tuple[Share, ...]
    explanation: Mapping[str, str]
    reason: Mapping[str, str] | None = None  # why (part of) it stayed unassigned

    @property
    def assigned(self) -> bool:
        return bool(self.shares)

    @property
    def split(self) -> bool:
        return len(self.shares) > 1

    @property
    def installer(self) -> str | None:
        """The single installer's key; None when unassigned or split (see ``shares``)."""
        return self.shares[0].installer if len(self.shares) == 1 else None

    @property
    def units(self) -> int:
        return sum(s.units for s in self.shares)


@dataclass(frozen=True)
class Assignment:
    results: tuple[ItemResult, ...]
    cost: int
    covered: int
    total: int
    optimal: bool  # proven: maximum coverage and, at that coverage, minimum cost
    coverage_optimal: bool
    lower_bound: int | None  # on cost, for any solution covering at least as much; None if unknown
    status: str
    seconds: float

    @property
    def coverage(self) -> float:
        return self.covered / self.total if self.total else 1.0

    @property
    def unassigned(self) -> tuple[ItemResult, ...]:
        return tuple(r for r in self.results if r.units == 0)

    def result(self, key: str) -> ItemResult:
        for r in self.results:
            if r.key == key:
                return r
        raise KeyError(key)

    def agent_of_each_item(self) -> list[int | None]:
        """The agent index per item (None if unassigned or split): the GAP solution vector."""
        return [r.shares[0].agent if len(r.shares) == 1 else None for r in self.results]


@dataclass
class _Model:
    """CP-SAT variables for one problem, reused by both phases."""

    model: cp_model.CpModel
    whole: dict[int, cp_model.IntVar]  # option index -> bool (takes the whole item)
    units: dict[int, cp_model.IntVar]  # option index -> units taken (splittable items)
    used: dict[int, cp_model.IntVar]  # option index -> bool (has a part)
    covered: cp_model.LinearExpr
    cost: cp_model.LinearExpr


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
    """Assign items to agents: most units covered first, then least cost. See module docstring."""
    start = time.monotonic()
    total = sum(item.size for item in problem.items)
    outcome = _Outcome({}, True, True, "NO_OPTIONS", 0)
    if problem.options:
        outcome = two_phase(problem, time_limit_s, workers)
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


def two_phase(problem: AssignmentProblem, time_limit_s: float, workers: int) -> _Outcome:
    """CP-SAT on the whole model: maximum coverage, then minimum cost at that coverage."""
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
    s = _solver(time_limit_s - (time.monotonic() - start), workers)
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
    if not coverage_optimal:
        lower_bound = None  # a bound at this coverage says nothing about higher coverage
    return _Outcome(solution, coverage_optimal, optimal, status, lower_bound)


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
