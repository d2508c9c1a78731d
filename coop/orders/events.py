"""What happens to the work on a home that the domains above orders act on
(``coop.core.events``), and the page that follows an acceptance (a hook payments provides)."""

from __future__ import annotations

from collections.abc import Callable

from coop.core.events import event
from coop.core.hooks import Hook
from coop.orders.models import Quote

quote_accepted = event(
    "order.quote_accepted",
    "The household accepted the quote (the sender); details: ``now``. Payments ask the "
    "deposit in the same transaction.",
)

# Where the resident goes once a quote is accepted: a URL (payments: the deposit page while a
# deposit is to be paid), or None for the quote's own page.
page_after_accepting: Hook[Callable[[Quote], str | None]] = Hook(
    "page_after_accepting", lambda quote: None
)
