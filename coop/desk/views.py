"""The staff's start page: their organisation's actions and how many take part."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from coop.accounts.models import Role
from coop.desk import services

bp = Blueprint("desk", __name__, url_prefix="/desk")
F = TypeVar("F", bound=Callable[..., Any])


def role_required(role: Role) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user.role is not role:
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@bp.get("/")
@role_required(Role.STAFF)
def home() -> str:
    return render_template(
        "desk/home.html", overview=services.organisation_overview(current_user.organisation_id)
    )


@bp.get("/installer")
@role_required(Role.INSTALLER)
def installer_home() -> str:
    return render_template("desk/installer_home.html", installer=current_user.installer)
