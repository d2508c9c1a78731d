"""Hooks: a function a lower layer calls and a higher layer provides.

``core`` knows no domain, yet mail, address lookup and the login need an answer only a domain
has (an action's own email wording, whether a desk switched the lookup off, who a session's user
is). ``core`` declares the hook with its default; the domain provides it when the application is
built (``coop.create_app`` imports the providing module). One provider per hook: the last wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Hook(Generic[F]):
    def __init__(self, name: str, default: F) -> None:
        self.name = name
        self._default = default
        self._provided: F | None = None

    def provide(self, function: F) -> F:
        """Decorator: ``function`` answers this hook from now on."""
        self._provided = function
        return function

    @property
    def call(self) -> F:
        return self._provided if self._provided is not None else self._default
