"""Background jobs of the accounts domain."""

from __future__ import annotations

from coop.accounts.models import LoginToken
from coop.accounts.services import login_link
from coop.core.jobs import job
from coop.core.mail import send_email
from coop.extensions import db


@job("accounts.send_login_link")
def send_login_link(token_id: int) -> None:
    token = db.session.get(LoginToken, token_id)
    if token is None:  # the account was erased meanwhile
        return
    user = token.user
    send_email(
        key=f"login-link:{token.id}",
        to=user.email,
        template="login_link",
        language=user.language,
        user_id=user.id,
        name=user.name,
        link=login_link(token),
        expires_at=token.expires_at,
    )
