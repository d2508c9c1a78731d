"""Background jobs of actions: closing registration at the end of the window, and telling staff."""

from __future__ import annotations

from flask import current_app

from coop.accounts.mail import email_user
from coop.accounts.models import User
from coop.actions import services
from coop.actions.models import Action
from coop.core.jobs import job, periodic
from coop.extensions import db


@periodic("actions.close_ended")
def close_ended() -> int:
    return services.close_ended_actions()


@job("actions.send_closed_notice")
def send_closed_notice(action_id: int, user_id: int) -> None:
    action = db.session.get(Action, action_id)
    user = db.session.get(User, user_id)
    if action is None or user is None or not user.is_active:  # gone, or left the desk
        return
    email_user(
        user,
        "action_closed",
        key=f"action-closed:{action.id}:{user.id}",
        action=action,
        registrations=services.registration_counts([action.id]).get(action.id, 0),
        link=f"{current_app.config['BASE_URL']}/desk/actions/{action.id}",
    )
