"""What the desk's installer page shows from the domains above installers: the residents'
reviews of its work (``coop.orders.reviews`` provides it: orders build on installers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coop.core.hooks import Hook

reviews_of_installer: Hook[Callable[[int], Any]] = Hook("reviews_of_installer", lambda _id: None)
