"""Every job a service enqueues by name is a registered job.

Services name their jobs by string, as the jobs' modules import the services (a job calls one):
a misspelt name would only fail when that path runs, which for a reminder or an expiry may be
weeks after a release. This reads every call to ``enqueue``, ``enqueue_once`` and
``enqueue_many`` in ``coop/`` and checks its name against the handlers the application
registers.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import coop
from coop.core import outbox

COOP = Path(__file__).resolve().parents[2] / "coop"
ENQUEUERS = {"enqueue", "enqueue_once", "enqueue_many"}
# ``jobs.enqueue(name, ...)``, or the function imported by itself; a ``Job``'s own
# ``send_confirmation.enqueue(key)`` takes a key, not a name.
MODULES = {"jobs", "outbox"}


def named_jobs(source: str, filename: str) -> list[tuple[str, int, str]]:
    """(file, line, name) of each enqueue call in ``source`` whose first argument is a string."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function, first = node.func, node.args[0]
        if isinstance(function, ast.Attribute):
            on_module = isinstance(function.value, ast.Name) and function.value.id in MODULES
            called = function.attr if on_module else ""
        else:
            called = getattr(function, "id", "")
        if called in ENQUEUERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((filename, node.lineno, first.value))
    return found


def test_the_reader_finds_a_name_in_each_form_of_call() -> None:
    source = (
        'jobs.enqueue("a.one", "k")\n'
        'enqueue_once(\n    "b.two",\n    "k",\n)\n'
        'jobs.enqueue_many("c.three", work)\n'
        "jobs.enqueue(name, key)\n"  # not a literal: nothing to check here
        'log.info("enqueue(%s)", "d.four")\n'
        'send_reminder.enqueue("reminder:1")\n'  # a Job's method: its first argument is a key
    )
    assert [name for _, _, name in named_jobs(source, "x.py")] == ["a.one", "b.two", "c.three"]


def test_every_job_named_at_a_call_site_is_registered() -> None:
    for module in coop.DOMAIN_MODULES:  # as create_app() does: each registers its jobs
        importlib.import_module(module)
    calls = [
        call
        for path in sorted(COOP.rglob("*.py"))
        for call in named_jobs(path.read_text(encoding="utf-8"), str(path.relative_to(COOP)))
    ]
    assert len(calls) >= 15, "the reader no longer finds the services' enqueue calls"
    registered = outbox._handlers
    unknown = [f"{file}:{line} {name!r}" for file, line, name in calls if name not in registered]
    assert not unknown, f"jobs enqueued by a name no handler has: {unknown}"
