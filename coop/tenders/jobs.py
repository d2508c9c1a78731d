"""Background jobs of tenders: the invitation to bid."""

from __future__ import annotations

from flask import current_app

from coop.core.jobs import job
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.jobs import email_installer
from coop.tenders.models import TenderInvitation


@job("tenders.send_invitation")
def send_invitation(invitation_id: int) -> None:
    invitation = db.session.get(TenderInvitation, invitation_id)
    if invitation is None:
        return
    tender = invitation.round
    email_installer(
        invitation.installer,
        f"tender-invitation:{invitation.id}",
        "tender_invitation",
        tender=tender,
        action=tender.action,
        demand=orders.demand(tender.action),
        link=f"{current_app.config['BASE_URL']}/installer/tenders/{invitation.id}",
    )
