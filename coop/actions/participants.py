"""How many households take part in an action. Registrations count them, and registrations
build on actions, so actions declares what it needs to know as hooks (``coop.core.hooks``) and
``coop.registrations.services`` provides them when the application is built."""

from __future__ import annotations

from collections.abc import Callable

from coop.actions.models import Action, ActionMeasure
from coop.core.hooks import Hook

# Participants (confirmed, not ended) per action measure id: the group price's tiers.
by_measure: Hook[Callable[[Action], dict[int, int]]] = Hook("participants_by_measure", lambda a: {})
# Participants of the action (the public page's figure).
count: Hook[Callable[[Action], int]] = Hook("participant_count", lambda a: 0)
# Registrations that still count (not withdrawn or expired), per action id.
registrations_per_action: Hook[Callable[[list[int]], dict[int, int]]] = Hook(
    "registration_counts", lambda ids: {}
)
# Whether any registration (whatever its status) chose this measure.
offer_chosen: Hook[Callable[[ActionMeasure], bool]] = Hook("offer_in_use", lambda offer: False)
