"""The staff's start page: their organisation's actions and how many take part."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from coop.core.authz import installer_required, staff_required
from coop.desk import services

bp = Blueprint("desk", __name__, url_prefix="/desk")


@bp.get("/")
@staff_required
def home() -> str:
    return render_template(
        "desk/home.html", overview=services.organisation_overview(current_user.organisation_id)
    )


@bp.get("/installer")
@installer_required
def installer_home() -> str:
    return render_template("desk/installer_home.html", installer=current_user.installer)
