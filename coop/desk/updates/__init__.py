"""Updates from the desk to a segment of an action's residents, and the way out of them: writing
them (``drafts``), their segment and messages (``segment``), sending them (``sending``),
their delivery log (``delivery_log``) and unsubscribing (``unsubscribe``).

Composing stores a draft; sending writes one delivery row per resident and one job per
delivery (in the outbox's bulk lane, handed to workers in chunks) in the same transaction as the
status change, so a crash loses nothing and a second
click (or a second scheduler) sends nothing twice: the status moves DRAFT/SCHEDULED -> SENDING
in one conditional UPDATE that only one caller can win, ``(update_id, user_id)`` is unique and
every job and email has a key derived from the delivery.

Updates are not transactional mail: whoever unsubscribed is skipped (and the delivery log says
so); confirmations, reminders and the like keep coming."""

from __future__ import annotations

from coop.desk.updates.delivery_log import (
    DeliveryLog,
    DeliveryRow,
    UpdatePage,
    delivery_log,
    update_page,
)
from coop.desk.updates.drafts import (
    CONTENT_FIELDS,
    DELIVERY_JOB,
    DELIVERY_PAGE_SIZE,
    TEMPLATE,
    UpdateError,
    UpdateInput,
    compose,
    delivery_counts_of,
    edit,
    get_update,
    updates_of,
)
from coop.desk.updates.segment import (
    Audience,
    Preview,
    audience,
    preview,
    unsubscribe_headers,
    unsubscribe_link,
)
from coop.desk.updates.sending import (
    cancel_schedule,
    deliver,
    finish_deliveries,
    finish_stalled,
    schedule,
    send_due,
    send_now,
)
from coop.desk.updates.unsubscribe import unsubscribe, user_for_unsubscribe

__all__ = [
    "CONTENT_FIELDS",
    "DELIVERY_JOB",
    "DELIVERY_PAGE_SIZE",
    "TEMPLATE",
    "Audience",
    "DeliveryLog",
    "DeliveryRow",
    "Preview",
    "UpdateError",
    "UpdateInput",
    "UpdatePage",
    "audience",
    "cancel_schedule",
    "compose",
    "deliver",
    "delivery_counts_of",
    "delivery_log",
    "edit",
    "finish_deliveries",
    "finish_stalled",
    "get_update",
    "preview",
    "schedule",
    "send_due",
    "send_now",
    "unsubscribe",
    "unsubscribe_headers",
    "unsubscribe_link",
    "update_page",
    "updates_of",
    "user_for_unsubscribe",
]
