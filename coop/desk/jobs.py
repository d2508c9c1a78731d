"""Background work of the desk: one job per update delivery, and the scheduled-update round."""

from __future__ import annotations

from coop.core.jobs import BULK, job, periodic
from coop.desk import updates


@job(updates.DELIVERY_JOB, lane=BULK, after_batch=updates.finish_deliveries)
def send_update_delivery(delivery_id: int) -> None:
    updates.deliver(delivery_id)


@periodic("desk.send_scheduled_updates")
def send_scheduled_updates() -> int:
    return updates.send_due() + updates.finish_stalled()
