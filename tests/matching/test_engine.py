"""The matching engine on small cases whose answer is known, and on one OR-Library problem.

Pure: no database, no Flask app (the fixtures of tests/conftest.py are not used here).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from bench.gap import check, read_gaps, to_problem
from coop.matching import (
    Agent,
    AssignmentProblem,
    DemandGroup,
    InstallerOffer,
    Item,
    Option,
    build_problem,
    format_cost,
    group_demand,
    match,
    pc4_ranges,
    solve,
)

# The first problem of OR-Library's gapa.txt (J. E. Beasley's OR-Library), kept with the tests so
# that they do not depend on where the benchmark data lies.
GAPA_1 = Path(__file__).resolve().parent / "data" / "gapa-1.txt"
UTRECHT = pc4_ranges("3500-3599")


def installer(
    key: str, prices: dict[str, int], capacity: int | dict[str, int], areas: str = "3500-3599"
) -> InstallerOffer:
    return InstallerOffer(key, f"Installer {key}", prices, pc4_ranges(areas), capacity)


def brute_force(problem: AssignmentProblem) -> tuple[int, int]:
    """(most units covered, least cost at that coverage) over every whole assignment."""
    choices = [
        [None, *[k for k, o in enumerate(problem.options) if o.item == i]]
        for i in range(len(problem.items))
    ]
    best: tuple[int, int] | None = None
    for pick in itertools.product(*choices):
        load = [0] * len(problem.agents)
        covered = cost = 0
        for k in pick:
            if k is None:
                continue
            o = problem.options[k]
            load[o.agent] += o.capacity_use
            covered += problem.items[o.item].size
            cost += o.cost
        if all(used <= a.capacity for used, a in zip(load, problem.agents, strict=True)):
            key = (-covered, cost)
            best = key if best is None or key < best else best
    assert best is not None
    return -best[0], best[1]


def random_problem(rng: random.Random, items: int, agents: int) -> AssignmentProblem:
    options = [
        Option(i, a, cost=rng.randint(1, 60), capacity_use=rng.randint(1, 9))
        for i in range(items)
        for a in range(agents)
        if rng.random() < 0.8
    ]
    return AssignmentProblem(
        items=tuple(Item(f"j{i}", size=rng.randint(1, 4)) for i in range(items)),
        agents=tuple(Agent(f"a{a}", rng.randint(4, 14)) for a in range(agents)),
        options=tuple(options),
    )


@pytest.mark.parametrize("seed", range(12))
def test_small_instances_reach_the_brute_force_optimum(seed: int) -> None:
    problem = random_problem(random.Random(seed), items=6, agents=3)
    covered, cost = brute_force(problem)
    result = solve(problem, time_limit_s=5)
    assert result.optimal
    assert (result.covered, result.cost) == (covered, cost)
    assert result.lower_bound == cost
    # the reported shares respect capacities and give every item at most one agent
    load = [0] * len(problem.agents)
    for r in result.results:
        assert len(r.shares) <= 1
        for s in r.shares:
            load[s.agent] += s.capacity_use
    assert all(used <= a.capacity for used, a in zip(load, problem.agents, strict=True))


def test_coverage_comes_before_cost() -> None:
    # A is cheap but can only take one group; taking the big group with A would leave
    # the small one without anybody, so the optimum pays B's higher price to serve both.
    groups = [
        DemandGroup("big", "3521", "roof", homes=30, quantity=1500),
        DemandGroup("small", "3521", "floor", homes=10, quantity=400),
    ]
    installers = [
        installer("A", {"roof": 4000, "floor": 3000}, capacity=30),
        installer("B", {"roof": 9000}, capacity=40),
    ]
    result = match(groups, installers, time_limit_s=5)
    assert result.covered == result.total == 40
    assert result.result("big").installer == "B"
    assert result.result("small").installer == "A"
    assert result.optimal


def test_the_cheapest_installer_wins_when_capacity_allows() -> None:
    groups = [DemandGroup("g", "3521", "cavity_wall", homes=12, quantity=700)]
    installers = [
        installer("A", {"cavity_wall": 2600}, capacity=50),
        installer("B", {"cavity_wall": 2400}, capacity=50),
    ]
    result = match(groups, installers, time_limit_s=5)
    assert result.result("g").installer == "B"
    assert result.cost == 2400 * 700


def test_a_group_no_installer_can_take_whole_is_split_and_reported() -> None:
    groups = [DemandGroup("street", "3522", "roof", homes=120, quantity=6000)]
    installers = [
        installer("A", {"roof": 4500}, capacity=70),
        installer("B", {"roof": 4700}, capacity=60),
    ]
    result = match(groups, installers, time_limit_s=5)
    street = result.result("street")
    assert street.split
    assert street.installer is None
    assert sorted((s.installer, s.units) for s in street.shares) == [("A", 70), ("B", 50)]
    assert sum(s.quantity or 0 for s in street.shares) == 6000
    assert result.covered == 120
    assert "split" in street.explanation["en"]
    assert "opgesplitst" in street.explanation["nl"]
    assert "largest capacity: 70" in street.explanation["en"]


def test_a_group_that_fits_one_installer_is_not_split() -> None:
    # Splitting would be cheaper (part with A, part with B), but B can take it whole.
    groups = [DemandGroup("street", "3522", "roof", homes=50, quantity=2500)]
    installers = [
        installer("A", {"roof": 4000}, capacity=30),
        installer("B", {"roof": 5000}, capacity=60),
    ]
    result = match(groups, installers, time_limit_s=5)
    assert result.result("street").installer == "B"
    assert not result.result("street").split


def test_a_group_nobody_can_serve_has_a_reason() -> None:
    groups = [
        DemandGroup("far", "9711", "roof", homes=5, quantity=250),
        DemandGroup("glass", "3521", "glazing", homes=5, quantity=60),
        DemandGroup("near", "3521", "roof", homes=5, quantity=250),
    ]
    result = match(groups, [installer("A", {"roof": 4500}, capacity=50)], time_limit_s=5)
    far, glass = result.result("far"), result.result("glass")
    assert not far.assigned and not glass.assigned
    assert far.reason is not None and glass.reason is not None
    assert far.reason["en"] == "no installer offering roof works in postcode area 9711"
    assert far.reason["nl"] == "geen installateur met dak werkt in postcodegebied 9711"
    assert glass.reason["en"] == "no installer offers glazing"
    assert "not assigned" in far.explanation["en"]
    assert "niet toegewezen" in far.explanation["nl"]
    assert [r.key for r in result.unassigned] == ["far", "glass"]
    assert result.covered == 5 and result.total == 15


def test_a_group_left_out_for_lack_of_capacity_says_so() -> None:
    groups = [
        DemandGroup("a", "3521", "roof", homes=8, quantity=400),
        DemandGroup("b", "3521", "floor", homes=6, quantity=300),
    ]
    result = match(groups, [installer("A", {"roof": 4500, "floor": 3000}, 10)], time_limit_s=5)
    assert result.result("a").installer == "A"  # covers 8 homes rather than 6
    reason = result.result("b").reason
    assert reason is not None
    assert reason["en"] == "every installer that can serve it had no capacity left (Installer A)"
    assert reason["nl"].startswith("alle installateurs die deze groep kunnen bedienen")


def test_explanations_name_the_installer_in_both_languages() -> None:
    groups = [
        DemandGroup("g1", "3521", "roof", homes=38, quantity=2100),
        DemandGroup("g2", "3521", "floor", homes=10, quantity=500),
    ]
    installers = [
        installer("A", {"roof": 4500, "floor": 3000}, capacity=10),
        installer("B", {"roof": 4700}, capacity=100),
    ]
    result = match(groups, installers, time_limit_s=5)
    g1 = result.result("g1")
    assert g1.installer == "B"
    assert g1.explanation == {
        "en": "3521 roof, 38 homes -> Installer B; Installer A had no capacity left",
        "nl": "3521 dak, 38 woningen -> Installer B; Installer A had geen capaciteit meer",
    }
    g2 = result.result("g2").explanation
    assert g2["en"] == "3521 floor, 10 homes -> Installer A; the only installer that can serve it"
    assert g2["nl"].startswith("3521 vloer, 10 woningen -> Installer A; de enige installateur")
    for r in result.results:
        assert set(r.explanation) == {"en", "nl"}


def test_a_dearer_alternative_is_named_with_its_price() -> None:
    groups = [DemandGroup("g", "3521", "glazing", homes=4, quantity=50)]
    installers = [
        installer("A", {"glazing": 18_000}, capacity=20),
        installer("B", {"glazing": 20_000}, capacity=20),
    ]
    text = match(groups, installers, time_limit_s=5).result("g").explanation
    assert text["en"].endswith("Installer B was more expensive (€10,000.00 vs €9,000.00)")
    assert text["nl"].endswith("Installer B was duurder (€ 10.000,00 tegen € 9.000,00)")


def test_capacity_per_measure_is_kept_apart() -> None:
    groups = [
        DemandGroup("r", "3521", "roof", homes=10, quantity=500),
        DemandGroup("f", "3521", "floor", homes=10, quantity=500),
    ]
    # A has room for 10 roofs but no floors; B is dearer but does floors.
    installers = [
        installer("A", {"roof": 4000, "floor": 2000}, capacity={"roof": 10, "floor": 0}),
        installer("B", {"roof": 5000, "floor": 3000}, capacity=20),
    ]
    result = match(groups, installers, time_limit_s=5)
    assert result.result("r").installer == "A"
    assert result.result("f").installer == "B"


def test_grouping_and_input_checks() -> None:
    groups = group_demand([("3521", "roof", 50), ("3521", "roof", 60), ("3522", "floor", 40)])
    assert [(g.area, g.measure, g.homes, g.quantity) for g in groups] == [
        ("3521", "roof", 2, 110),
        ("3522", "floor", 1, 40),
    ]
    assert pc4_ranges("3500-3599, 3721") == ((3500, 3599), (3721, 3721))
    with pytest.raises(ValueError):
        pc4_ranges("35-36")
    with pytest.raises(ValueError):
        DemandGroup("x", "3521", "solar_panels", homes=1, quantity=1)
    with pytest.raises(ValueError):
        AssignmentProblem((Item("j"),), (Agent("a", 1),), (Option(0, 0, 1, 1), Option(0, 0, 2, 1)))
    assert format_cost(123_450, "nl", True) == "€ 1.234,50"
    assert format_cost(123_450, "en", True) == "€1,234.50"


def test_build_problem_prices_and_capacity_use() -> None:
    groups = [DemandGroup("g", "3521", "roof", homes=38, quantity=2100)]
    problem = build_problem(groups, [installer("A", {"roof": 4500}, 100)])
    (option,) = problem.options
    assert (option.cost, option.capacity_use) == (4500 * 2100, 38)


def test_or_library_gapa_problem_1_reaches_its_optimum() -> None:
    gap = read_gaps(GAPA_1)[0]
    result = solve(to_problem(gap), time_limit_s=10)
    # bench.gap's check: every job assigned once, no capacity exceeded; it returns the cost.
    assert check(gap, result.agent_of_each_item()) == result.cost == 1698
    assert result.optimal


def test_a_group_of_one_home_says_one_home() -> None:
    """Seen on the run page of the production-shape test: "3524 hybrid heat pump, 1 homes"."""
    groups = [DemandGroup("g", "3524", "hybrid_heat_pump", homes=1, quantity=1)]
    result = match(groups, [installer("A", {"hybrid_heat_pump": 390_000}, 10)], time_limit_s=5)
    explanation = result.result("g").explanation
    assert explanation["en"].startswith("3524 hybrid heat pump, 1 home -> Installer A")
    assert explanation["nl"].startswith("3524 hybride warmtepomp, 1 woning -> Installer A")
