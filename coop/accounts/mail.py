"""Emailing a person with an account: to their address, in their language, by their name, and
logged with their account (so that their data export shows it and an erasure removes it)."""

from __future__ import annotations

from typing import Any

from coop.accounts.models import User
from coop.core.mail import send_email
from coop.core.models import EmailLog


def email_user(user: User, template: str, *, key: str, **context: Any) -> EmailLog:
    """``templates/email/<template>`` to ``user`` (``core.mail.send_email``; ``context`` adds
    ``action_id``, attachments, headers and what the template shows)."""
    return send_email(
        key=key,
        to=user.email,
        template=template,
        language=user.language,
        user_id=user.id,
        name=user.name,
        **context,
    )
