"""The matching problem and its answer as plain data: items (demand groups), agents
(installers), the options between them, and the assignment the engine returns.

Kept apart from the engine (``coop.matching.engine``), which needs OR-Tools, SciPy and NumPy,
so that the web application can read, build and show problems and proposals without loading
any of them: only the job that solves imports the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

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
