"""What happens to an action that the domains above it act on (``coop.core.events``).

Sent inside the action service's transaction, before its commit; the sender is the ``Action``.
"""

from __future__ import annotations

from coop.core.events import event

registration_closed = event(
    "action.registration_closed",
    "Registration for the action closed (by staff or at the end of its window): orders start "
    "grouping its demand.",
)
action_cancelled = event(
    "action.cancelled",
    "The action was cancelled; details: ``actor`` (the staff member) and ``now``. Orders end "
    "their open work, payments cancel what is due and refund what was paid.",
)
