"""Branch and bound on the Lagrangian bound: is there an assignment costing at most T?

For the plain GAP (every item exactly once) the Lagrangian relaxation of "each item once" — one
0/1 knapsack per agent — bounds the cost far more tightly than the LP (`relax`), and on the
OR-Library types B and C it lies within one to three units of the optimum. With a target T just
above it, forcing an option in raises the bound above T for most options, so they are fixed out;
what is left is tiny but tight, and CP-SAT and HiGHS, searching it with only the LP bound, take 5 to
15 s to decide it. A depth-first search that recomputes the Lagrangian bound and the fixing at
every node decides it in 0.03-0.4 s, because a wrong branch lifts the bound above T at once. With
T a little above the bound on the hard type D it is also the best way found to a good solution:
the first dive down the clearest options ends in one within about 0.2% of the best known.

Compiled with Numba: a node costs several knapsack passes per agent (a few milliseconds on 20
agents x 200 items), which in Python would be a hundred times slower.

Dense matrices, agents x items: ``cost`` (float64), ``use`` (int64), ``allowed`` (bool: the option
may still be used); ``capacity`` (int64 per agent); ``multipliers`` (per item) from the root's
subgradient search.
"""

from __future__ import annotations

import time

import numba
import numpy as np
import numpy.typing as npt

from coop.matching import relax

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FOUND, NONE, UNKNOWN = 0, 1, 2
ABOVE, WHOLE = 1, 2  # how a subgradient ascent ended early
NODE_ITERATIONS = 4  # subgradient steps per node, at most: the parent's multipliers are close
NODE_STALL = 2  # steps without a better bound before the step halves
ROOT_ITERATIONS = 100_000  # at the root the clock and the step size end the ascent
ROOT_STALL = 8


@numba.njit(cache=True)
def _now() -> float:
    with numba.objmode(t="float64"):
        t = time.monotonic()
    return t


@numba.njit(cache=True, nogil=True)
def _knapsack(
    profit: FloatArray, weight: IntArray, items: IntArray, count: int, capacity: int
) -> tuple[float, BoolArray]:
    """Most profit of ``items[:count]`` within ``capacity``; which of them are taken."""
    best = np.zeros(capacity + 1)
    take = np.zeros((count, capacity + 1), dtype=np.bool_)
    for t in range(count):
        j = items[t]
        w = weight[j]
        p = profit[j]
        for c in range(capacity, w - 1, -1):
            if best[c - w] + p > best[c]:
                best[c] = best[c - w] + p
                take[t, c] = True
    chosen = np.zeros(count, dtype=np.bool_)
    c = capacity
    for t in range(count - 1, -1, -1):
        if take[t, c]:
            chosen[t] = True
            c -= weight[items[t]]
    return best[capacity], chosen


@numba.njit(cache=True, nogil=True)
def _candidates(
    cost: FloatArray,
    use: IntArray,
    allowed: BoolArray,
    free: BoolArray,
    u: FloatArray,
    i: int,
    room: int,
) -> tuple[IntArray, int]:
    """The free items agent i's knapsack may take: allowed, of positive profit, fitting its room."""
    n = cost.shape[1]
    items = np.empty(n, dtype=np.int64)
    count = 0
    for j in range(n):
        if free[j] and allowed[i, j] and u[j] - cost[i, j] > 0 and use[i, j] <= room:
            items[count] = j
            count += 1
    return items, count


@numba.njit(cache=True, nogil=True)
def _lagrangian_value(
    cost: FloatArray,
    use: IntArray,
    allowed: BoolArray,
    free: BoolArray,
    room: IntArray,
    base: float,
    u: FloatArray,
    taken: IntArray,
    taker: IntArray,
) -> float:
    """L(u) at this node; ``taken[j]`` = how many knapsacks take free item j, ``taker[j]`` the
    last agent that did."""
    m, n = cost.shape
    value = base
    for j in range(n):
        taken[j] = 0
        if free[j]:
            value += u[j]
    for i in range(m):
        items, count = _candidates(cost, use, allowed, free, u, i, room[i])
        profit = u - cost[i]
        gain, chosen = _knapsack(profit, use[i], items, count, room[i])
        value -= gain
        for t in range(count):
            if chosen[t]:
                taken[items[t]] += 1
                taker[items[t]] = i
    return value


@numba.njit(cache=True, nogil=True)
def _ascend(
    cost: FloatArray,
    use: IntArray,
    allowed: BoolArray,
    free: BoolArray,
    room: IntArray,
    base: float,
    u: FloatArray,
    aim: float,
    stop_above: float,
    iterations: int,
    stall_limit: int,
    seconds: float,
    taker: IntArray,
) -> tuple[float, FloatArray, int]:
    """Subgradient steps on L(u) from ``u`` (Polyak's rule towards ``aim``, the step halved after
    ``stall_limit`` steps without a better bound), at most ``iterations`` or ``seconds``.

    Returns (best bound, its multipliers, ABOVE if the bound passed ``stop_above``, WHOLE if the
    knapsacks took every free item exactly once, the agent per item then in ``taker``, else 0)."""
    n = cost.shape[1]
    deadline = _now() + seconds  # from here: the first call may first spend seconds compiling
    taken = np.zeros(n, dtype=np.int64)
    best, best_u = -np.inf, u.copy()
    step, stall = 1.0, 0
    for it in range(iterations):
        if step < 1e-4 or (it % 16 == 15 and _now() > deadline):
            break
        value = _lagrangian_value(cost, use, allowed, free, room, base, u, taken, taker)
        if value > best + 1e-9:
            best, stall = value, 0
            best_u[:] = u
        else:
            stall += 1
            if stall >= stall_limit:
                step, stall = step / 2, 0
        if best > stop_above:
            return best, best_u, ABOVE
        norm = 0.0
        for j in range(n):
            if free[j]:
                norm += (1.0 - taken[j]) ** 2
        if norm == 0:
            return best, best_u, WHOLE
        scale = step * (aim - value) / norm
        for j in range(n):
            if free[j]:
                u[j] += scale * (1.0 - taken[j])
    return best, best_u, 0


@numba.njit(cache=True, nogil=True)
def _forced_bounds(
    cost: FloatArray,
    use: IntArray,
    allowed: BoolArray,
    free: BoolArray,
    room: IntArray,
    base: float,
    u: FloatArray,
) -> FloatArray:
    """Per option of a free item: the bound with that option forced in (inf where not allowed)."""
    m, n = cost.shape
    total = base
    for j in range(n):
        if free[j]:
            total += u[j]
    pen_in = np.full((m, n), np.inf)
    pen_out = np.zeros((m, n))
    for i in range(m):
        b = room[i]
        profit = u - cost[i]
        items, count = _candidates(cost, use, allowed, free, u, i, b)
        fwd = np.zeros((count + 1, b + 1))
        for t in range(count):
            w = use[i, items[t]]
            p = profit[items[t]]
            for c in range(b + 1):
                fwd[t + 1, c] = fwd[t, c]
                if c >= w and fwd[t, c - w] + p > fwd[t + 1, c]:
                    fwd[t + 1, c] = fwd[t, c - w] + p
        bwd = np.zeros((count + 2, b + 1))
        for t in range(count - 1, -1, -1):
            w = use[i, items[t]]
            p = profit[items[t]]
            for c in range(b + 1):
                bwd[t + 1, c] = bwd[t + 2, c]
                if c >= w and bwd[t + 2, c - w] + p > bwd[t + 1, c]:
                    bwd[t + 1, c] = bwd[t + 2, c - w] + p
        opt = fwd[count, b]
        total -= opt
        # Options of useful items: without item t, the best is max over splits of fwd + bwd.
        position = np.full(n, -1, dtype=np.int64)
        for t in range(count):
            position[items[t]] = t
        for j in range(n):
            if not free[j] or not allowed[i, j] or use[i, j] > b:
                continue
            t = position[j]
            rest = b - use[i, j]
            best_rest = -np.inf
            if t >= 0:
                for c in range(rest + 1):
                    v = fwd[t, c] + bwd[t + 2, rest - c]
                    if v > best_rest:
                        best_rest = v
                best_without = -np.inf
                for c in range(b + 1):
                    v = fwd[t, c] + bwd[t + 2, b - c]
                    if v > best_without:
                        best_without = v
                pen_out[i, j] = opt - best_without
            else:  # not a candidate: every candidate stays available, in less room
                best_rest = fwd[count, rest]
            pen_in[i, j] = opt - (profit[j] + best_rest)
    forced = np.full((m, n), np.inf)
    for j in range(n):
        if not free[j]:
            continue
        out_sum = 0.0
        for i in range(m):
            out_sum += pen_out[i, j]
        for i in range(m):
            if np.isfinite(pen_in[i, j]):
                forced[i, j] = total + pen_in[i, j] + out_sum - pen_out[i, j]
    return forced


@numba.njit(cache=True, nogil=True)
def _settle(
    cost: FloatArray, use: IntArray, capacity: IntArray, allowed: BoolArray
) -> tuple[bool, BoolArray, IntArray, float]:
    """Items with one option left are fixed there: (still possible, free items, room, fixed cost)."""
    m, n = cost.shape
    free = np.zeros(n, dtype=np.bool_)
    room = capacity.copy()
    base = 0.0
    for j in range(n):
        count = 0
        agent = -1
        for i in range(m):
            if allowed[i, j]:
                count += 1
                agent = i
        if count == 0:
            return False, free, room, base
        if count == 1:
            room[agent] -= use[agent, j]
            base += cost[agent, j]
        else:
            free[j] = True
    for i in range(m):
        if room[i] < 0:
            return False, free, room, base
    for j in range(n):  # an option that no longer fits cannot be used
        if free[j]:
            for i in range(m):
                if allowed[i, j] and use[i, j] > room[i]:
                    allowed[i, j] = False
    return True, free, room, base


@numba.njit(cache=True, nogil=True)
def _node(
    cost: FloatArray,
    use: IntArray,
    capacity: IntArray,
    allowed: BoolArray,
    u: FloatArray,
    target: float,
    limit: float,
    iterations: int,
    stall_limit: int,
) -> tuple[int, int, int]:
    """Bound, fix and decide one node, changing ``allowed`` and ``u`` in place.

    ``limit`` is ``target`` plus the rounding tolerance: a bound above it proves nothing here
    costs ``target`` or less. Returns (NONE: nothing at most target here; FOUND: ``allowed`` holds one option per item;
    UNKNOWN: branch on item j, agent i first)."""
    m, n = cost.shape
    taker = np.zeros(n, dtype=np.int64)
    for _round in range(4):
        possible, free, room, base = _settle(cost, use, capacity, allowed)
        if not possible:
            return NONE, -1, -1
        if not free.any():
            return (FOUND if base <= limit else NONE), -1, -1
        _best, best_u, outcome = _ascend(
            cost,
            use,
            allowed,
            free,
            room,
            base,
            u,
            target + 1.0,
            limit,
            iterations,
            stall_limit,
            np.inf,
            taker,
        )
        if outcome == ABOVE:
            return NONE, -1, -1
        if outcome == WHOLE:  # a complete assignment, within room, costing at most the target
            for j in range(n):
                if free[j]:
                    allowed[:, j] = False
                    allowed[taker[j], j] = True
            return FOUND, -1, -1
        u[:] = best_u
        forced = _forced_bounds(cost, use, allowed, free, room, base, u)
        removed = 0
        for i in range(m):
            for j in range(n):
                if allowed[i, j] and free[j] and forced[i, j] > limit:
                    allowed[i, j] = False
                    removed += 1
        if removed == 0:
            # Branch on the item whose best option is most clearly the best.
            pick, pick_agent, pick_regret = -1, -1, -1.0
            for j in range(n):
                if not free[j]:
                    continue
                first, second, agent = np.inf, np.inf, -1
                for i in range(m):
                    if allowed[i, j]:
                        f = forced[i, j]
                        if f < first:
                            first, second, agent = f, first, i
                        elif f < second:
                            second = f
                if agent >= 0 and second - first > pick_regret:
                    pick, pick_agent, pick_regret = j, agent, second - first
            return UNKNOWN, pick, pick_agent
    return UNKNOWN, -2, -2  # fixing still removes options: the caller settles again


@numba.njit(cache=True, nogil=True)
def _search(
    cost: FloatArray,
    use: IntArray,
    capacity: IntArray,
    allowed: BoolArray,
    u: FloatArray,
    target: float,
    limit: float,
    seconds: float,
    iterations: int,
    stall_limit: int,
) -> tuple[int, BoolArray, int]:
    """Depth first: each node's options and multipliers on a stack (popping one pushes at most
    two, so it holds about one node per level), "in" before "out"."""
    m, n = cost.shape
    deadline = _now() + seconds  # from here: the first call may first spend seconds compiling
    stack_allowed = np.zeros((n + 2, m, n), dtype=np.bool_)
    stack_u = np.zeros((n + 2, n))
    stack_allowed[0] = allowed
    stack_u[0] = u
    top = 1
    nodes = 0
    while top > 0:
        if _now() > deadline:
            return UNKNOWN, allowed, nodes
        nodes += 1
        top -= 1
        here = stack_allowed[top].copy()
        hu = stack_u[top].copy()
        status, j, i = _node(cost, use, capacity, here, hu, target, limit, iterations, stall_limit)
        if status == FOUND:
            return FOUND, here, nodes
        if status == NONE:
            continue
        if top + 2 > stack_allowed.shape[0]:  # deeper than ever: grow the stack
            grown_allowed = np.zeros((2 * stack_allowed.shape[0], m, n), dtype=np.bool_)
            grown_u = np.zeros((2 * stack_allowed.shape[0], n))
            grown_allowed[:top] = stack_allowed[:top]
            grown_u[:top] = stack_u[:top]
            stack_allowed, stack_u = grown_allowed, grown_u
        if j < 0:  # fixing kept removing options: settle this node again
            stack_allowed[top] = here
            stack_u[top] = hu
            top += 1
            continue
        stack_allowed[top] = here
        stack_allowed[top, i, j] = False  # item j not with agent i: searched second
        stack_u[top] = hu
        top += 1
        stack_allowed[top] = here
        for k in range(m):
            if k != i:
                stack_allowed[top, k, j] = False  # item j with agent i: searched first
        stack_u[top] = hu
        top += 1
    return NONE, allowed, nodes


def lagrangian(
    cost: FloatArray,
    use: IntArray,
    capacity: IntArray,
    allowed: BoolArray,
    start: FloatArray,
    target: float,
    seconds: float,
) -> tuple[float, FloatArray]:
    """The Lagrangian bound of the whole problem and its multipliers, by subgradient steps
    (Polyak's rule towards ``target``, halved when the bound stalls) from ``start`` (the LP's item
    duals); stops early once the bound reaches ``target`` (nothing to gain beyond)."""
    n = cost.shape[1]
    best, multipliers, _outcome = _ascend(
        np.where(allowed, cost, 0.0),
        use.astype(np.int64),
        allowed,
        np.ones(n, dtype=np.bool_),
        capacity.astype(np.int64),
        0.0,
        start.astype(np.float64).copy(),
        float(target),
        float(target) - relax.tolerance(target),
        ROOT_ITERATIONS,
        ROOT_STALL,
        seconds,
        np.zeros(n, dtype=np.int64),
    )
    return best, multipliers


def at_most(
    cost: FloatArray,
    use: IntArray,
    capacity: IntArray,
    allowed: BoolArray,
    multipliers: FloatArray,
    target: int,
    seconds: float,
) -> tuple[int, IntArray | None, int]:
    """Decide whether an assignment of every item to one allowed agent, within capacity, costs at
    most ``target``: (FOUND, agent per item, nodes), (NONE, None, nodes) when proven that none
    does, or (UNKNOWN, None, nodes) when out of time."""
    status, chosen, nodes = _search(
        np.where(allowed, cost, 0.0),
        use.astype(np.int64),
        capacity.astype(np.int64),
        allowed.copy(),
        multipliers.astype(np.float64).copy(),
        float(target),
        target + relax.tolerance(target),
        seconds,
        NODE_ITERATIONS,
        NODE_STALL,
    )
    if status != FOUND:
        return int(status), None, nodes
    return FOUND, np.argmax(chosen, axis=0).astype(np.int64), nodes


def warm_up() -> None:
    """Compile (or load from Numba's cache) every function on a tiny problem: the first compile
    takes about 20 s, which `make install` and the image build pay instead of the first match."""
    cost = np.array([[1.0, 2.0], [2.0, 1.0]])
    use = np.ones((2, 2), dtype=np.int64)
    capacity = np.array([1, 1], dtype=np.int64)
    allowed = np.ones((2, 2), dtype=np.bool_)
    _bound, multipliers = lagrangian(cost, use, capacity, allowed, np.zeros(2), 2.0, 1.0)
    at_most(cost, use, capacity, allowed, multipliers, 2, 1.0)
