"""The address lookup for the forms' script: postcode and house number in, street and town out.

The browser only ever talks to coop (the Content-Security-Policy keeps ``connect-src 'self'``);
coop asks the BAG (``coop.core.address_lookup``). Rate-limited per address
(``RATELIMIT_ADDRESS_LOOKUP``), since anyone may call it; it reveals nothing that PDOK does not
publish.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from coop.core import address_lookup
from coop.core.address import HouseNumberError, normalise_addition, split_house_number
from coop.extensions import limiter

bp = Blueprint("address", __name__)


def _limit() -> str:
    return str(current_app.config["RATELIMIT_ADDRESS_LOOKUP"])


def _answer(found: bool, **fields: str) -> Response:
    response = jsonify({"found": found, **fields})
    # The same question gives the same answer for a while; nobody else's answer is in it.
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


@bp.get("/address-lookup")
@limiter.limit(_limit)
def lookup() -> Response:
    """``?postcode=3521AB&house_number=12a`` (``house_number_addition`` optional) ->
    ``{"found": true, "street": ..., "city": ...}``, or ``{"found": false, "reason": ...}``
    with ``reason`` "off", "incomplete", "not_found" or "unavailable"."""
    if not address_lookup.enabled():
        return _answer(False, reason="off")
    try:
        number, addition = split_house_number(request.args.get("house_number", "")[:20])
    except HouseNumberError:
        return _answer(False, reason="incomplete")
    separate = normalise_addition(request.args.get("house_number_addition", "")[:10]) or ""
    try:
        found = address_lookup.lookup(
            request.args.get("postcode", "")[:10], number, addition or separate
        )
    except address_lookup.LookupUnavailableError:
        return _answer(False, reason="unavailable")
    if found is None:
        return _answer(False, reason="not_found")
    return _answer(True, street=found.street, city=found.city)
