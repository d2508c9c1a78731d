"""What the public action pages show from the domains above actions: the participation open
around an action or a postcode (``coop.participation.findable``) and the residents' reviews of
the installers' work (``coop.orders.reviews``). Those domains build on actions, so they provide
these hooks (``coop.core.hooks``) when the application is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coop.core.hooks import Hook

# The home page: for a postcode area (PC4, or None), what is open in its neighbourhoods.
neighbourhood_offers: Hook[Callable[[str | None], list[Any]]] = Hook(
    "neighbourhood_offers", lambda pc4: []
)
# An action's page: the participation open around it, for the visitor (a user or None).
participation_around: Hook[Callable[[Any, Any], Any]] = Hook(
    "participation_around", lambda action, user: None
)
# An action's page: the reviews of the work in it, per installer.
reviews_of_action: Hook[Callable[[int], list[Any]]] = Hook("reviews_of_action", lambda _id: [])
