"""Background jobs of registrations: the emails and the periodic reminder/expiry round."""

from __future__ import annotations

from typing import Any

from coop.accounts.mail import email_user
from coop.accounts.models import LoginToken
from coop.accounts.services import login_link
from coop.core.jobs import URGENT, job, periodic
from coop.extensions import db
from coop.registrations import services
from coop.registrations.models import Registration, RegistrationStatus


@job("registrations.send_confirmation", lane=URGENT)
def send_confirmation(registration_id: int, token_id: int) -> None:
    registration = db.session.get(Registration, registration_id)
    token = db.session.get(LoginToken, token_id)
    if registration is None or token is None:  # erased meanwhile
        return
    send_to_household(
        registration,
        "confirm_registration",
        f"registration-confirm:{token.id}",
        link=login_link(token),
    )


@job("registrations.send_reminder")
def send_reminder(registration_id: int, token_id: int) -> None:
    registration = db.session.get(Registration, registration_id)
    token = db.session.get(LoginToken, token_id)
    if registration is None or token is None or token.used_at is not None:
        return
    if registration.status is not RegistrationStatus.PENDING_CONFIRMATION:
        return
    send_to_household(
        registration,
        "confirmation_reminder",
        f"registration-reminder:{token.id}",
        link=login_link(token),
        expires_at=token.expires_at,
    )


def send_to_household(registration: Registration, template: str, key: str, **context: Any) -> None:
    user = registration.user
    email_user(
        user,
        template,
        key=key,
        action_id=registration.action_id,
        registration=registration,
        action=registration.action,
        household=registration.household,
        **context,
    )


@periodic("registrations.remind_unconfirmed")
def remind_unconfirmed() -> int:
    return services.send_reminders()


@periodic("registrations.expire_unconfirmed")
def expire_unconfirmed() -> int:
    return services.expire_unconfirmed()
