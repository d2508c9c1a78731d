"""Matching demand groups to installers: plain data in, an explained assignment out.

No Flask and no SQL here: the batching service in ``coop.orders`` loads the data, calls
``build_problem()`` and ``solve()`` and stores the result.

Importing this package loads only plain data classes. The engine (OR-Tools, SciPy, NumPy and
the Numba-compiled branch and bound) is imported by the first ``solve()``, which only the
matching job calls: the web application never loads it (``tests/test_web_imports.py``).
"""

from __future__ import annotations

from coop.matching.domain import (
    MEASURES,
    DemandGroup,
    InstallerOffer,
    build_problem,
    group_demand,
    match,
    pc4_ranges,
)
from coop.matching.explain import format_cost
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


def solve(problem: AssignmentProblem, time_limit_s: float = 10.0, workers: int = 2) -> Assignment:
    """Assign items to agents: most units covered first, then least cost
    (``coop.matching.engine.solve``, imported here on first use)."""
    from coop.matching import engine

    return engine.solve(problem, time_limit_s=time_limit_s, workers=workers)


__all__ = [
    "LANGUAGES",
    "MEASURES",
    "Agent",
    "Assignment",
    "AssignmentProblem",
    "DemandGroup",
    "InstallerOffer",
    "Item",
    "ItemResult",
    "Option",
    "Share",
    "build_problem",
    "format_cost",
    "group_demand",
    "match",
    "pc4_ranges",
    "solve",
]
