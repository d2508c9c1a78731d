"""Matching demand groups to installers: plain data in, an explained assignment out.

No Flask and no SQL here: the batching service in ``coop.orders`` loads the data, calls
``match()`` (or ``build_problem()`` and ``solve()``) and stores the result.
"""

from coop.matching.domain import (
    MEASURES,
    DemandGroup,
    InstallerOffer,
    build_problem,
    group_demand,
    match,
    pc4_ranges,
)
from coop.matching.engine import (
    LANGUAGES,
    Agent,
    Assignment,
    AssignmentProblem,
    Item,
    ItemResult,
    Option,
    Share,
    solve,
)
from coop.matching.explain import format_cost

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
