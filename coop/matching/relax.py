"""Relaxations of the assignment problem: lower bounds, and the options they prove useless.

Two relaxations, both on whole (not splittable) items:

- the LP relaxation (HiGHS through SciPy): its value bounds the cost of any solution from below,
  and its item duals are where the Lagrangian search starts (`lp_relaxation`); its own reduced
  costs fix far fewer options (gapd 5: none of 2,000 at the optimum's cost);
- the Lagrangian relaxation of "each item exactly once" (one 0/1 knapsack per agent), for the plain
  GAP where every item must be covered. Its bound is much tighter than the LP's on the hard
  OR-Library instances (gapd 5: 6176 against 6143, optimum 6185), and forcing an option in or out
  of its knapsacks gives far stronger fixing (`lagrangian`, `keep_by_lagrangian`).

Fixing is the point: an option whose bound, when forced in, exceeds a target cost T cannot be part
of any solution costing at most T, so an exact solver only needs the options that are left; if it
finds the optimum of that smaller problem at or below T, that optimum is the optimum of the whole.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, vstack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Tolerances: HiGHS works to about 1e-7; bounds are rounded up only after this much slack so that
# a value of 1234.9999999 counts as 1235 and not 1236.
EPS = 1e-6


@dataclass(frozen=True)
class Arrays:
    """The options of a problem (or of a part of it) as arrays, indexed by option."""

    item: IntArray
    agent: IntArray
    cost: FloatArray
    use: FloatArray
    size: FloatArray  # of the option's item: what coverage counts
    n_items: int
    capacity: FloatArray  # per agent


@dataclass(frozen=True)
class LpResult:
    value: float  # optimal LP objective (cost, or covered units for the coverage LP)
    x: FloatArray  # per option
    reduced: FloatArray  # per option: d >= 0 at the lower bound, d <= 0 at the upper bound
    item_dual: FloatArray


def lp_relaxation(a: Arrays, min_covered: float | None, cover_all: bool) -> LpResult:
    """Least cost with every item at most once (exactly once with ``cover_all``), within
    capacity, covering at least ``min_covered`` units."""
    return _solve_lp(a, a.cost, None if cover_all else min_covered, equal=cover_all, sign=1.0)


def _solve_lp(
    a: Arrays, objective: FloatArray, min_covered: float | None, equal: bool, sign: float
) -> LpResult:
    n = len(a.item)
    cols = np.arange(n)
    a_item = coo_matrix((np.ones(n), (a.item, cols)), shape=(a.n_items, n))
    a_cap = coo_matrix((a.use, (a.agent, cols)), shape=(len(a.capacity), n))
    rows = [a_cap]
    rhs = [a.capacity]
    if min_covered is not None:
        rows.append(coo_matrix((-a.size, (np.zeros(n, dtype=np.int64), cols)), shape=(1, n)))
        rhs.append(np.array([-float(min_covered)]))
    if not equal:
        rows.insert(0, a_item)
        rhs.insert(0, np.ones(a.n_items))
    res = linprog(
        objective,
        A_ub=vstack(rows).tocsr(),
        b_ub=np.concatenate(rhs),
        A_eq=a_item.tocsr() if equal else None,
        b_eq=np.ones(a.n_items) if equal else None,
        bounds=(0, 1),
        method="highs",
    )
    if res.status != 0:
        raise ValueError(f"LP relaxation: {res.message}")
    reduced = np.asarray(res.lower.marginals) + np.asarray(res.upper.marginals)
    duals = res.eqlin.marginals if equal else res.ineqlin.marginals[: a.n_items]
    return LpResult(sign * float(res.fun), np.asarray(res.x), reduced, np.asarray(duals))


def _knapsack(profit: FloatArray, weight: IntArray, capacity: int) -> tuple[float, BoolArray]:
    """Most profit within capacity (0/1), counting only items of positive profit."""
    idx = np.nonzero((profit > 0) & (weight <= capacity))[0]
    best = np.zeros(capacity + 1)
    take = np.zeros((len(idx), capacity + 1), dtype=bool)
    for t, j in enumerate(idx):
        w = int(weight[j])
        cand = best[: capacity + 1 - w] + profit[j]
        better = cand > best[w:]
        take[t, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    chosen = np.zeros(len(profit), dtype=bool)
    c = capacity
    for t in range(len(idx) - 1, -1, -1):
        if take[t, c]:
            chosen[idx[t]] = True
            c -= int(weight[idx[t]])
    return float(best[capacity]), chosen


@dataclass(frozen=True)
class Lagrangian:
    bound: float  # valid lower bound on the cost of any solution covering every item
    multipliers: FloatArray  # per item
    iterations: int


def _dense(a: Arrays) -> tuple[FloatArray, IntArray, IntArray]:
    """cost and use as agents x items matrices; a missing option costs +inf (never taken)."""
    m, n = len(a.capacity), a.n_items
    cost = np.full((m, n), np.inf)
    use = np.zeros((m, n), dtype=np.int64)
    cost[a.agent, a.item] = a.cost
    use[a.agent, a.item] = a.use.astype(np.int64)
    return cost, use, a.capacity.astype(np.int64)


def _value(
    cost: FloatArray, use: IntArray, cap: IntArray, u: FloatArray
) -> tuple[float, BoolArray]:
    chosen = np.zeros(cost.shape, dtype=bool)
    total = float(u.sum())
    for i in range(cost.shape[0]):
        profit, chosen[i] = _knapsack(u - cost[i], use[i], int(cap[i]))
        total -= profit
    return total, chosen


def lagrangian(a: Arrays, start: FloatArray, target: float, seconds: float) -> Lagrangian:
    """Maximise L(u) = sum(u) + sum over agents of min{sum (c - u) x : knapsack} by subgradient
    steps (Polyak's rule towards ``target``, halved when the bound stalls), from ``start``
    (the LP's item duals, where L is already at least the LP value)."""
    deadline = time.monotonic() + seconds
    cost, use, cap = _dense(a)
    u = start.astype(np.float64).copy()
    best, best_u = -math.inf, u.copy()
    step, stall, it = 1.0, 0, 0
    while time.monotonic() < deadline and step > 1e-4:
        it += 1
        value, chosen = _value(cost, use, cap, u)
        if value > best + 1e-9:
            best, best_u, stall = value, u.copy(), 0
        else:
            stall += 1
            if stall >= 8:
                step, stall = step / 2, 0
        if best >= target - EPS:
            break  # the bound proves the target optimal: nothing to gain
        g = 1.0 - chosen.sum(axis=0)
        norm = float((g * g).sum())
        if norm == 0:
            break  # the knapsacks form a feasible assignment: the bound is exact
        u = u + step * (target - value) / norm * g
    return Lagrangian(best, best_u, it)


def keep_by_lagrangian(a: Arrays, lag: Lagrangian, target: float) -> BoolArray:
    """Options (by index in ``a``) that may be in a solution covering every item and costing at
    most ``target``.

    Forcing option (i, j) in raises agent i's knapsack by pen_in, and forces item j out of every
    other agent's knapsack, each raising by pen_out; the bound with the option forced in is
    L + pen_in(i, j) + sum over k != i of pen_out(k, j). Forward and backward knapsack tables give
    each agent's values with one item forced in or out in one pass."""
    cost, use, cap = _dense(a)
    u = lag.multipliers
    m, n = cost.shape
    pen_in = np.zeros((m, n))
    pen_out = np.zeros((m, n))
    total = float(u.sum())
    for i in range(m):
        profit = u - cost[i]
        b = int(cap[i])
        w = use[i]
        useful = (profit > 0) & (w <= b)
        fwd = np.zeros((n + 1, b + 1))
        bwd = np.zeros((n + 2, b + 1))
        for j in range(n):
            fwd[j + 1] = fwd[j]
            if useful[j]:
                wj = int(w[j])
                fwd[j + 1, wj:] = np.maximum(fwd[j, wj:], fwd[j, : b + 1 - wj] + profit[j])
        for j in range(n - 1, -1, -1):
            bwd[j + 1] = bwd[j + 2]
            if useful[j]:
                wj = int(w[j])
                bwd[j + 1, wj:] = np.maximum(bwd[j + 2, wj:], bwd[j + 2, : b + 1 - wj] + profit[j])
        opt = float(fwd[n, b])
        total -= opt
        for j in range(n):
            if not np.isfinite(cost[i, j]) or w[j] > b:
                pen_in[i, j] = math.inf
                continue
            rest = b - int(w[j])
            forced_in = profit[j] + float(np.max(fwd[j, : rest + 1] + bwd[j + 2, rest::-1]))
            pen_in[i, j] = opt - forced_in
            if useful[j]:
                pen_out[i, j] = opt - float(np.max(fwd[j, : b + 1] + bwd[j + 2, b::-1]))
    # Evaluate at the multipliers themselves (not the stored bound) so the test is exact.
    bound = total
    forced = bound + pen_in + (pen_out.sum(axis=0)[None, :] - pen_out)
    return np.asarray(forced[a.agent, a.item] <= target + EPS)


def ceil_bound(value: float) -> int:
    """Costs are integers: a bound of 6176.04 means at least 6177."""
    return math.ceil(value - EPS)
