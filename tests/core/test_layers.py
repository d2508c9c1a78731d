"""The mechanisms the layers stand on (README, "How it is built"): domain events run their
receivers in the order they connected, inside the sender's transaction; hooks answer with the
provided function or their default; a unit of work commits on return and rolls back on an
exception, and only the outermost one decides."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.accounts.models import Organisation, OrganisationKind
from coop.core.db import unit_of_work
from coop.core.events import event
from coop.core.hooks import Hook
from coop.extensions import db


def test_receivers_run_in_the_order_they_connected() -> None:
    happened = event("tests.happened", "for this test")
    calls: list[str] = []
    names = ["orders", "payments", "participation", "desk", "residents", "tenders"]
    receivers = []
    for name in names:

        def receive(sender: object, *, name: str = name, **details: object) -> None:
            calls.append(name)

        receivers.append(receive)  # blinker keeps weak references
        happened.connect(receive)
    happened.send(object(), now=1)
    assert calls == names


def test_a_hook_answers_with_its_default_until_provided() -> None:
    greeting: Hook[Callable[[str], str]] = Hook("greeting", lambda name: f"hello {name}")
    assert greeting.call("anna") == "hello anna"

    @greeting.provide
    def in_dutch(name: str) -> str:
        return f"hallo {name}"

    assert greeting.call("anna") == "hallo anna"


def _organisations() -> int:
    return int(db.session.scalar(select(func.count()).select_from(Organisation)) or 0)


@unit_of_work
def _add(name: str, *, fail: bool = False) -> None:
    db.session.add(
        Organisation(
            name=name,
            kind=OrganisationKind.MUNICIPALITY,
            municipality="Utrecht",
            email="desk@example.org",
        )
    )
    db.session.flush()
    if fail:
        raise ValueError("a rule stopped it")


@unit_of_work
def _add_two(*, second_fails: bool) -> None:
    _add("first")
    _add("second", fail=second_fails)


def test_a_unit_of_work_commits_on_return_and_rolls_back_on_an_exception(ctx: Flask) -> None:
    before = _organisations()
    _add("kept")
    db.session.rollback()  # nothing left to undo: it was committed
    assert _organisations() == before + 1
    with pytest.raises(ValueError):
        _add("undone", fail=True)
    assert _organisations() == before + 1


def test_the_outermost_unit_of_work_decides(ctx: Flask) -> None:
    before = _organisations()
    with pytest.raises(ValueError):
        _add_two(second_fails=True)
    # The inner call that succeeded did not commit on its own: both are undone.
    assert _organisations() == before
    _add_two(second_fails=False)
    db.session.rollback()
    assert _organisations() == before + 2
