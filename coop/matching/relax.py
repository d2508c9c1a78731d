"""The LP relaxation of the assignment problem (HiGHS through SciPy), on whole items.

Its value bounds the cost of any solution from below, its item duals are where the Lagrangian
search of `coop.matching.branch` starts, and its reduced costs choose the core of
`engine._improve_by_core`. The Lagrangian bound itself (one 0/1 knapsack per agent) is much
tighter on the hard OR-Library instances (gapd 5: 6176 against the LP's 6143, best known 6185) and
lives, compiled, in `coop.matching.branch`, where the branch and bound evaluates it at every node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, vstack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Tolerances: HiGHS works to about 1e-7; bounds are rounded up only after this much slack so that
# a value of 1234.9999999 counts as 1235 and not 1236. Rounding in sums of floats grows with the
# costs (euro cents of whole actions reach 10^9), hence the relative part (`tolerance`).
EPS = 1e-6
RELATIVE_EPS = 1e-9


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


def dense(a: Arrays) -> tuple[FloatArray, IntArray, IntArray]:
    """cost and use as agents x items matrices; a missing option costs +inf (never taken)."""
    m, n = len(a.capacity), a.n_items
    cost = np.full((m, n), np.inf)
    use = np.zeros((m, n), dtype=np.int64)
    cost[a.agent, a.item] = a.cost
    use[a.agent, a.item] = a.use.astype(np.int64)
    return cost, use, a.capacity.astype(np.int64)


def tolerance(value: float) -> float:
    """How far a bound computed in floats may lie above its true value near ``value``. Costs are
    integers, so it stays below half a unit: it must never let a cost of T + 1 pass for T."""
    return min(0.5, EPS + RELATIVE_EPS * abs(value))


def ceil_bound(value: float) -> int:
    """Costs are integers: a bound of 6176.04 means at least 6177."""
    return math.ceil(value - tolerance(value))
