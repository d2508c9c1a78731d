"""Background jobs of tenders: the invitation to bid, a later deadline, a cancelled round."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from coop.core.jobs import job
from coop.extensions import db
from coop.installers.mail import email_installer
from coop.tenders.demand import demand
from coop.tenders.models import TenderInvitation


def _link(invitation: TenderInvitation) -> str:
    return f"{current_app.config['BASE_URL']}/installer/tenders/{invitation.id}"


@job("tenders.send_invitation")
def send_invitation(invitation_id: int) -> None:
    invitation = db.session.get(TenderInvitation, invitation_id)
    # A round cancelled before its invitations went out: the installer only hears of it once.
    if invitation is None or not invitation.round.active:
        return
    tender = invitation.round
    email_installer(
        invitation.installer,
        f"tender-invitation:{invitation.id}",
        "tender_invitation",
        tender=tender,
        action=tender.action,
        demand=demand(tender.action),
        link=_link(invitation),
    )


@job("tenders.send_deadline_changed")
def send_deadline_changed(invitation_id: int, deadline: str) -> None:
    invitation = db.session.get(TenderInvitation, invitation_id)
    if invitation is None or not invitation.round.active:
        return
    tender = invitation.round
    # Moved again since: the later change has its own email, this one would say the same.
    if tender.deadline != datetime.fromisoformat(deadline):
        return
    email_installer(
        invitation.installer,
        f"tender-deadline:{invitation.id}:{int(tender.deadline.timestamp())}",
        "tender_deadline_changed",
        tender=tender,
        action=tender.action,
        invitation=invitation,
        link=_link(invitation),
    )


@job("tenders.send_cancelled")
def send_cancelled(invitation_id: int) -> None:
    invitation = db.session.get(TenderInvitation, invitation_id)
    if invitation is None:
        return
    tender = invitation.round
    email_installer(
        invitation.installer,
        f"tender-cancelled:{invitation.id}",
        "tender_cancelled",
        tender=tender,
        action=tender.action,
    )
