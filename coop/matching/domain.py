"""Collective-purchase terms on top of the engine: demand groups (homes wanting one measure in one
PC4 area) and installer offers (measures, prices, service area, capacity) become an
`AssignmentProblem`.

An installer can serve a group when it offers the measure, covers the area and has capacity for
it. A group is only marked splittable when no single installer that can serve it has the
capacity to take it whole: keeping a street with one installer is the point of a collective action.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from coop.matching.problem import Agent, Assignment, AssignmentProblem, Item, Option

# The measures an action can offer, with their names as residents read them.
MEASURES: Mapping[str, Mapping[str, str]] = {
    "cavity_wall": {"en": "cavity wall", "nl": "spouwmuur"},
    "roof": {"en": "roof", "nl": "dak"},
    "floor": {"en": "floor", "nl": "vloer"},
    "glazing": {"en": "glazing", "nl": "glas"},
    "hybrid_heat_pump": {"en": "hybrid heat pump", "nl": "hybride warmtepomp"},
    "full_heat_pump": {"en": "all-electric heat pump", "nl": "volledige warmtepomp"},
}

_PC4 = re.compile(r"^[1-9][0-9]{3}$")


@dataclass(frozen=True, slots=True)
class DemandGroup:
    """Homes in one PC4 area wanting one measure; ``quantity`` is what the unit price is per
    (m² for insulation and glazing, pieces for heat pumps)."""

    key: str
    area: str
    measure: str
    homes: int
    quantity: int
    label: str = ""  # optional neighbourhood name, shown in explanations

    def __post_init__(self) -> None:
        if not _PC4.match(self.area):
            raise ValueError(f"group {self.key}: area must be a PC4 postcode, got {self.area!r}")
        if self.measure not in MEASURES:
            raise ValueError(f"group {self.key}: unknown measure {self.measure!r}")
        if self.homes < 1 or self.quantity < 0:
            raise ValueError(f"group {self.key}: homes must be >= 1 and quantity >= 0")


@dataclass(frozen=True, slots=True)
class InstallerOffer:
    """An installer in an action: ``unit_prices`` in euro cents per quantity unit for each measure
    it offers, the PC4 ranges it serves (inclusive), and its capacity in homes for this action,
    either in total or per measure."""

    key: str
    name: str
    unit_prices: Mapping[str, int]
    areas: tuple[tuple[int, int], ...]
    capacity: int | Mapping[str, int]

    def __post_init__(self) -> None:
        unknown = set(self.unit_prices) - set(MEASURES)
        if unknown:
            raise ValueError(f"installer {self.key}: unknown measures {sorted(unknown)}")
        if any(p < 0 for p in self.unit_prices.values()):
            raise ValueError(f"installer {self.key}: prices must not be negative")
        if any(lo > hi for lo, hi in self.areas):
            raise ValueError(f"installer {self.key}: empty postcode range in {self.areas}")

    def covers(self, area: str) -> bool:
        pc4 = int(area)
        return any(lo <= pc4 <= hi for lo, hi in self.areas)

    def capacity_for(self, measure: str) -> int:
        if isinstance(self.capacity, int):
            return self.capacity
        return self.capacity.get(measure, 0)


def pc4_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """ "3500-3599, 3721" -> ((3500, 3599), (3721, 3721)): how staff type a service area."""
    out: list[tuple[int, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        lo, hi = lo.strip(), (hi.strip() or lo.strip())
        if not (_PC4.match(lo) and _PC4.match(hi)) or int(lo) > int(hi):
            raise ValueError(f"not a PC4 postcode or range: {part!r}")
        out.append((int(lo), int(hi)))
    return tuple(out)


def group_demand(homes: Iterable[tuple[str, str, int]]) -> list[DemandGroup]:
    """Aggregate one row per home and measure, (area, measure, quantity), into demand groups.

    Solving on groups instead of households gives the same optimum much faster (DESIGN.md)."""
    count: Counter[tuple[str, str]] = Counter()
    quantity: Counter[tuple[str, str]] = Counter()
    for area, measure, qty in homes:
        count[area, measure] += 1
        quantity[area, measure] += qty
    return [
        DemandGroup(
            key=f"{area}-{measure}",
            area=area,
            measure=measure,
            homes=count[area, measure],
            quantity=quantity[area, measure],
        )
        for area, measure in sorted(count)
    ]


def _labels(g: DemandGroup) -> dict[str, str]:
    where = f"{g.area} ({g.label})" if g.label else g.area
    one = g.homes == 1
    return {
        "en": f"{where} {MEASURES[g.measure]['en']}, {g.homes} {'home' if one else 'homes'}",
        "nl": f"{where} {MEASURES[g.measure]['nl']}, {g.homes} {'woning' if one else 'woningen'}",
    }


def _unserved(g: DemandGroup, installers: Sequence[InstallerOffer]) -> dict[str, str]:
    en, nl = MEASURES[g.measure]["en"], MEASURES[g.measure]["nl"]
    offering = [i for i in installers if g.measure in i.unit_prices]
    if not offering:
        return {"en": f"no installer offers {en}", "nl": f"geen installateur biedt {nl} aan"}
    if not any(i.covers(g.area) for i in offering):
        return {
            "en": f"no installer offering {en} works in postcode area {g.area}",
            "nl": f"geen installateur met {nl} werkt in postcodegebied {g.area}",
        }
    return {
        "en": f"no installer working here has capacity for {en}",
        "nl": f"geen installateur die hier werkt heeft capaciteit voor {nl}",
    }


def build_problem(
    groups: Sequence[DemandGroup], installers: Sequence[InstallerOffer]
) -> AssignmentProblem:
    """The assignment problem: one option per (group, installer) that can serve it, costing
    unit price x quantity and using the group's homes of the installer's capacity."""
    if len({g.key for g in groups}) != len(groups):
        raise ValueError("group keys must be unique")
    if len({i.key for i in installers}) != len(installers):
        raise ValueError("installer keys must be unique")
    agents: list[Agent] = []
    agent_of: dict[tuple[str, str | None], int] = {}  # (installer, measure or None) -> index
    for inst in installers:
        if isinstance(inst.capacity, int):
            agent_of[inst.key, None] = len(agents)
            agents.append(Agent(inst.key, inst.capacity, inst.name, inst.key))
        else:  # a capacity per measure: one agent per measure, reported as the installer
            for measure in sorted(inst.capacity):
                agent_of[inst.key, measure] = len(agents)
                agents.append(
                    Agent(f"{inst.key}/{measure}", inst.capacity[measure], inst.name, inst.key)
                )
    items: list[Item] = []
    options: list[Option] = []
    for gi, g in enumerate(groups):
        mine: list[Option] = []
        for inst in installers:
            price = inst.unit_prices.get(g.measure)
            if price is None or not inst.covers(g.area) or inst.capacity_for(g.measure) <= 0:
                continue
            key = (inst.key, None) if isinstance(inst.capacity, int) else (inst.key, g.measure)
            mine.append(Option(gi, agent_of[key], cost=price * g.quantity, capacity_use=g.homes))
        fits_whole = any(agents[o.agent].capacity >= g.homes for o in mine)
        items.append(
            Item(
                key=g.key,
                size=g.homes,
                quantity=g.quantity,
                splittable=bool(mine) and not fits_whole,
                labels=_labels(g),
                unserved_reason={} if mine else _unserved(g, installers),
            )
        )
        options.extend(mine)
    return AssignmentProblem(tuple(items), tuple(agents), tuple(options), money=True)


def match(
    groups: Sequence[DemandGroup], installers: Sequence[InstallerOffer], time_limit_s: float = 10.0
) -> Assignment:
    """Build and solve in one call."""
    from coop.matching import solve

    return solve(build_problem(groups, installers), time_limit_s=time_limit_s)
