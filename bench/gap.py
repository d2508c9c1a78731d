"""The matching engine on the OR-Library generalized assignment problems (types A-D).

Feeds every problem of the given files through the same API the batching service uses
(`AssignmentProblem` -> `solve`), checks the answer itself (every job assigned exactly once, no
capacity exceeded, cost recomputed from the file), and prints one line per problem:

    gapa 1 5x100 cost=1698 ref=1698 gap=0.00% time=0.12s

then the worst gap and the longest time. Exits non-zero when a solution is invalid.

    python bench/gap.py ../shared/data/gap/gap?.txt [--solutions DIR] [--time-limit S]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from coop.matching import Agent, AssignmentProblem, Item, Option, solve

# Reference values (minimisation) from shared/data/gap/README.md: A, B, C proven optimal; D the
# best known values from the literature. Keyed by file stem, in the files' problem order.
REFERENCE: dict[str, tuple[int, ...]] = {
    "gapa": (1698, 3235, 1360, 2623, 1158, 2339),
    "gapb": (1843, 3552, 1407, 2827, 1166, 2339),
    "gapc": (1931, 3456, 1402, 2806, 1243, 2391),
    "gapd": (6353, 12742, 6347, 12430, 6185, 12235),
}


@dataclass(frozen=True)
class Gap:
    """One GAP instance: cost[i][j] and res[i][j] for agent i and job j, and cap[i]."""

    cost: list[list[int]]
    res: list[list[int]]
    cap: list[int]

    @property
    def agents(self) -> int:
        return len(self.cap)

    @property
    def jobs(self) -> int:
        return len(self.cost[0])


def read_gaps(path: Path) -> list[Gap]:
    """Parse an OR-Library GAP file (format in shared/data/gap/README.md)."""
    numbers = [int(x) for x in path.read_text().split()]
    pos = 1
    out = []
    for _ in range(numbers[0]):
        m, n = numbers[pos], numbers[pos + 1]
        pos += 2
        cost = [numbers[pos + i * n : pos + (i + 1) * n] for i in range(m)]
        pos += m * n
        res = [numbers[pos + i * n : pos + (i + 1) * n] for i in range(m)]
        pos += m * n
        out.append(Gap(cost, res, numbers[pos : pos + m]))
        pos += m
    if pos != len(numbers):
        raise ValueError(f"{path}: {len(numbers) - pos} numbers left after the last problem")
    return out


def to_problem(gap: Gap) -> AssignmentProblem:
    """Jobs are items of size 1, agents keep their capacity; pairs that cannot fit are left out."""
    items = tuple(Item(key=str(j)) for j in range(gap.jobs))
    agents = tuple(Agent(key=str(i), capacity=c) for i, c in enumerate(gap.cap))
    options = tuple(
        Option(item=j, agent=i, cost=gap.cost[i][j], capacity_use=gap.res[i][j])
        for j in range(gap.jobs)
        for i in range(gap.agents)
        if gap.res[i][j] <= gap.cap[i]
    )
    return AssignmentProblem(items, agents, options)


def check(gap: Gap, agent_of_job: list[int | None]) -> int:
    """The cost of a complete, capacity-respecting solution; raises ValueError otherwise."""
    if len(agent_of_job) != gap.jobs:
        raise ValueError(f"{len(agent_of_job)} jobs in the solution, {gap.jobs} in the problem")
    load = [0] * gap.agents
    total = 0
    for j, i in enumerate(agent_of_job):
        if i is None or not 0 <= i < gap.agents:
            raise ValueError(f"job {j} is not assigned to exactly one agent")
        load[i] += gap.res[i][j]
        total += gap.cost[i][j]
    for i, used in enumerate(load):
        if used > gap.cap[i]:
            raise ValueError(f"agent {i} uses {used} of capacity {gap.cap[i]}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--solutions", type=Path, help="write DIR/<stem>-<n>.txt per problem")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=9.0,
        help="solver seconds per problem (default 9, to stay within 10)",
    )
    args = parser.parse_args(argv)
    if args.solutions:
        args.solutions.mkdir(parents=True, exist_ok=True)
    worst_gap: float | None = None
    longest = 0.0
    failures = 0
    for path in args.files:
        refs = REFERENCE.get(path.stem, ())
        for number, gap in enumerate(read_gaps(path), start=1):
            started = time.perf_counter()
            result = solve(to_problem(gap), time_limit_s=args.time_limit)
            seconds = time.perf_counter() - started
            longest = max(longest, seconds)
            agents = result.agent_of_each_item()
            try:
                cost = check(gap, agents)
                if cost != result.cost:
                    raise ValueError(f"engine reports cost {result.cost}, the file gives {cost}")
            except ValueError as exc:
                failures += 1
                print(f"{path.stem} {number} {gap.agents}x{gap.jobs} INVALID: {exc}", flush=True)
                continue
            ref = refs[number - 1] if number <= len(refs) else None
            if ref is None:
                ref_text = "ref=- gap=-"
            else:
                rel = (cost - ref) / ref * 100
                worst_gap = rel if worst_gap is None else max(worst_gap, rel)
                ref_text = f"ref={ref} gap={rel:.2f}%"
            print(
                f"{path.stem} {number} {gap.agents}x{gap.jobs} cost={cost} {ref_text} "
                f"time={seconds:.2f}s",
                flush=True,
            )
            if args.solutions:
                out = args.solutions / f"{path.stem}-{number}.txt"
                out.write_text(" ".join(str(a) for a in agents) + "\n")
    worst = "-" if worst_gap is None else f"{worst_gap:.2f}%"
    print(
        f"worst gap={worst} longest time={longest:.2f}s"
        + (f" INVALID={failures}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
