"""Emailing an installer: the company's own address and every active user of its portal, once
each, each in their own language."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select

from coop.accounts.models import Role, User
from coop.core.mail import send_email
from coop.extensions import db
from coop.installers.models import Installer


def installer_recipients(installer: Installer) -> list[tuple[str, str, int | None]]:
    """(address, language, user id): the company's address and its active users, once each."""
    out: dict[str, tuple[str, str, int | None]] = {
        installer.email.lower(): (installer.email, "nl", None)
    }
    users = db.session.scalars(
        select(User).where(
            User.installer_id == installer.id,
            User.role == Role.INSTALLER,
            User.is_active_account.is_(True),
        )
    )
    for user in users:
        out[user.email.lower()] = (user.email, user.language, user.id)
    return sorted(out.values())


def _address_key(address: str) -> str:
    return hashlib.sha256(address.lower().encode()).hexdigest()[:16]


def email_installer(installer: Installer, key: str, template: str, **context: Any) -> None:
    for address, language, user_id in installer_recipients(installer):
        send_email(
            key=f"{key}:{_address_key(address)}",
            to=address,
            template=template,
            language=language,
            user_id=user_id,
            installer=installer,
            footer="work",
            **context,
        )
