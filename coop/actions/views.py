"""Public pages: the open actions (findable by postcode) and one action's page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext
from flask_login import current_user

from coop.actions import page_hooks, participants, services
from coop.core.address import normalise_postcode, pc4_of
from coop.core.authz import authorize
from coop.core.time import utcnow

bp = Blueprint("actions", __name__)


@bp.get("/")
def index() -> str:
    raw = (request.args.get("postcode") or "").strip()[:20]
    error = None
    pc4 = None
    if raw:
        postcode = normalise_postcode(raw)
        pc4 = (
            pc4_of(postcode)
            if postcode
            else (raw if raw.isdigit() and pc4_of(raw) == raw else None)
        )
        if pc4 is None:
            error = gettext("Enter a Dutch postcode: four digits and two letters, like 1234 AB.")
    actions = services.public_actions(pc4)
    return render_template(
        "actions/index.html",
        actions=actions,
        postcode=raw,
        pc4=pc4,
        error=error,
        neighbourhood_offers=_neighbourhood_offers(pc4),
    )


def _neighbourhood_offers(pc4: str | None) -> list[Any]:
    """For a postcode: what is open in its neighbourhoods; without one: the public
    neighbourhood pages, so that a resident finds their neighbourhood from the home page."""
    return page_hooks.neighbourhood_offers.call(pc4)


@bp.get("/actions/<slug>")
def detail(slug: str) -> str:
    # Participation and the reviews come from their own domains, which build on actions.
    action = services.action_by_slug(slug[:80])
    if action is None or not authorize(current_user, action, "view"):
        abort(404)
    user = current_user if current_user.is_authenticated else None
    return render_template(
        "actions/detail.html",
        action=action,
        offers=services.measure_offers(action),
        participants=participants.count.call(action),
        open_now=action.is_open_for_registration(utcnow()),
        take_part=page_hooks.participation_around.call(action, user),
        review_groups=page_hooks.reviews_of_action.call(action.id),
    )
