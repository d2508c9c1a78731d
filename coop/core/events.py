"""Domain events: a domain says what happened, the domains above it act on it.

A lower domain cannot call a higher one (the layers, README "How it is built"): closing an
action cannot call orders, which build on actions. It sends a signal instead (``blinker``, as
Flask does), and the domains above connect their receivers when they are imported (which
``coop.create_app`` does). Receivers run at once, in the sender's transaction, before its
commit: a receiver's changes and the outbox rows it writes commit or roll back with the
sender's, so the outbox guarantee holds across domains. Receivers run in the order they were
connected (``create_app`` imports the domains bottom-up), so a run is the same every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

from blinker import Signal


class _OrderedSet(MutableSet[Any]):
    """A set that iterates in insertion order (blinker keeps its receivers in ``set_class``)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: dict[Any, None] = dict.fromkeys(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Any) -> None:
        self._items[item] = None

    def discard(self, item: Any) -> None:
        self._items.pop(item, None)

    def copy(self) -> _OrderedSet:
        return _OrderedSet(self._items)


class OrderedSignal(Signal):
    set_class = _OrderedSet  # type: ignore[assignment]


def event(name: str, doc: str) -> OrderedSignal:
    """A domain event: ``event.send(sender, **details)``; receivers: ``@event.connect``."""
    signal = OrderedSignal(doc)
    signal.name = name  # type: ignore[attr-defined]
    return signal
