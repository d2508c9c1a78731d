"""The code's layout: every module stays readable on its own.

A module over ``MAX_LINES`` mixes subjects; split it along its own sections into modules named
by subject (README, "How it is built"). Tests are not counted: a test module is one story. The
layering itself (which domain may import which) is checked by import-linter in ``make lint``.
"""

from __future__ import annotations

from pathlib import Path

MAX_LINES = 600
ROOT = Path(__file__).resolve().parents[1]


def modules_over(limit: int, root: Path) -> dict[str, int]:
    too_long = {}
    for path in sorted((root / "coop").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            too_long[str(path.relative_to(root))] = lines
    return too_long


def test_no_module_is_over_600_lines() -> None:
    assert modules_over(MAX_LINES, ROOT) == {}


def test_the_count_finds_a_module_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "coop" / "domain").mkdir(parents=True)
    (tmp_path / "coop" / "domain" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "coop" / "domain" / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert modules_over(MAX_LINES, tmp_path) == {"coop/domain/long.py": MAX_LINES + 1}
