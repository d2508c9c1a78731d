"""Background jobs of the accounts domain."""

from __future__ import annotations

from coop.accounts import services
from coop.accounts.mail import email_user
from coop.accounts.models import LoginToken
from coop.accounts.services import invitation_link, login_link
from coop.core.jobs import URGENT, job, periodic
from coop.extensions import db


@job("accounts.deliver_login_link", lane=URGENT)
def deliver_login_link(request_id: int) -> None:
    services.deliver_login_link(request_id)


@periodic("accounts.forget_login_requests")
def forget_login_requests() -> int:
    return services.forget_login_requests()


@job("accounts.send_login_link", lane=URGENT)
def send_login_link(token_id: int) -> None:
    token = db.session.get(LoginToken, token_id)
    if token is None:  # the account was erased meanwhile
        return
    user = token.user
    email_user(
        user,
        "login_link",
        key=f"login-link:{token.id}",
        link=login_link(token),
        expires_at=token.expires_at,
    )


@job("accounts.send_invitation", lane=URGENT)
def send_invitation(token_id: int) -> None:
    token = db.session.get(LoginToken, token_id)
    if token is None or token.used_at is not None:  # erased, or the password is set already
        return
    user = token.user
    if user.installer is not None:
        team = user.installer.company_name
    else:
        team = user.organisation.name if user.organisation is not None else ""
    email_user(
        user,
        "invitation",
        key=f"invite:{token.id}",
        team=team,
        link=invitation_link(token),
        expires_at=token.expires_at,
    )
