"""What happens to a desk that the domains above it act on (``coop.core.events``).

Sent inside the transaction that creates it, before its commit; the sender is the
``Organisation``, flushed (it has its id).
"""

from __future__ import annotations

from coop.core.events import event

organisation_created = event(
    "accounts.organisation_created",
    "A desk or cooperative was created: the domains above give it what it starts with (orders: "
    "the VAT rates its quotes use).",
)
