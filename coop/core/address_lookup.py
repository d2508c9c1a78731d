"""Street and town from the BAG (the Dutch register of addresses) for a postcode and house
number, through PDOK's public Locatieserver (free, no key).

``lookup()`` asks ``ADDRESS_LOOKUP_URL`` (PDOK's ``/bzk/locatieserver/search/v3_1/free``; empty
switches the lookup off) with ``fq=postcode:3521AB AND huisnummer:12 AND type:adres`` and reads
``response.docs[]`` (``straatnaam``, ``woonplaatsnaam``, ``huisnummer``, ``huisletter``,
``huisnummertoevoeging``, ``postcode``). It is a convenience and never a gate: it waits at
most ``ADDRESS_LOOKUP_TIMEOUT`` seconds, a failure is logged and raised as
``LookupUnavailableError`` (the callers let the person type street and town), and after a
failure the lookup rests ``ADDRESS_LOOKUP_PAUSE`` seconds, so an unreachable service costs one
sign-up the wait, not every one. Always called from the server, never from the browser: the
page's Content-Security-Policy keeps ``connect-src 'self'``.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from coop.core.address import normalise_addition, normalise_postcode
from coop.core.hooks import Hook

log = logging.getLogger(__name__)

_FIELDS = "straatnaam,woonplaatsnaam,huisnummer,huisletter,huisnummertoevoeging,postcode"
_MAX_ANSWER_BYTES = 256 * 1024  # a dozen addresses are a few kB; more is not an answer to us

# Per process: until when the lookup rests after a failure (time.monotonic()).
_resting_until = 0.0


class LookupUnavailableError(Exception):
    """The address register could not be asked (or is resting after a failure)."""


@dataclass(frozen=True)
class FoundAddress:
    street: str
    city: str
    postcode: str  # "3521 AB"
    house_number: int
    addition: str  # normalised, "" for none


# Whether the desk (organisation id) has not switched the lookup off (``coop.accounts`` provides
# it: the switch is one of the desk's settings).
desk_allows_lookup: Hook[Callable[[int], bool]] = Hook("desk_allows_lookup", lambda _id: True)


def enabled(organisation_id: int | None = None) -> bool:
    """Whether forms look addresses up: the deployment has a lookup address, and the desk whose
    form it is (if any) has not switched it off."""
    if not current_app.config.get("ADDRESS_LOOKUP_URL"):
        return False
    if organisation_id is None:
        return True
    return desk_allows_lookup.call(organisation_id)


def rest_over() -> None:
    """Forget an earlier failure (for tests)."""
    global _resting_until
    _resting_until = 0.0


def lookup(postcode: str, house_number: int, addition: str = "") -> FoundAddress | None:
    """The BAG's street and town for this address; None when it has none or the lookup is
    switched off. Raises ``LookupUnavailableError`` when the service could not be asked in time
    (logged)."""
    global _resting_until
    url = current_app.config.get("ADDRESS_LOOKUP_URL")
    normalised = normalise_postcode(postcode)
    if not url or normalised is None or not 1 <= house_number <= 99999:
        return None
    if time.monotonic() < _resting_until:
        log.info("address lookup skipped: resting after a failure")
        raise LookupUnavailableError("resting")
    timeout = float(current_app.config.get("ADDRESS_LOOKUP_TIMEOUT", 2.0))
    query = urllib.parse.urlencode(
        {
            "fq": f"postcode:{normalised.replace(' ', '')} AND huisnummer:{house_number} "
            "AND type:adres",
            "fl": _FIELDS,
            "rows": "20",
        }
    )
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's setting)
        f"{url}?{query}", headers={"Accept": "application/json", "User-Agent": "coop"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(_MAX_ANSWER_BYTES + 1)
        if len(body) > _MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
        docs = json.loads(body.decode("utf-8"))["response"]["docs"]
        if not isinstance(docs, list):
            raise ValueError("docs is not a list")
    except (OSError, http.client.HTTPException) as exc:  # refused, timed out, HTTP 4xx/5xx
        _resting_until = time.monotonic() + float(
            current_app.config.get("ADDRESS_LOOKUP_PAUSE", 30)
        )
        # No postcode or house number in the log: they are someone's address.
        log.warning(
            "address lookup failed after %.1f s: %s", time.monotonic() - started, _reason(exc)
        )
        raise LookupUnavailableError(_reason(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:  # not the JSON PDOK documents
        _resting_until = time.monotonic() + float(
            current_app.config.get("ADDRESS_LOOKUP_PAUSE", 30)
        )
        log.warning("address lookup gave an answer that could not be read: %s", exc)
        raise LookupUnavailableError("unreadable answer") from None
    return _best(docs, normalised, house_number, normalise_addition(addition) or "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return type(exc).__name__


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return " ".join(str(value).split()) if value is not None else ""


def _best(docs: list[Any], postcode: str, house_number: int, addition: str) -> FoundAddress | None:
    """The document of exactly this address if there is one (12, 12A and 12-2 share a postcode
    and number), else the first of that postcode and number: their street and town are one."""
    candidates = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        street, city = _text(doc, "straatnaam"), _text(doc, "woonplaatsnaam")
        if not street or not city or len(street) > 120 or len(city) > 80:
            continue
        if normalise_postcode(_text(doc, "postcode")) != postcode:
            continue
        try:
            number = int(doc.get("huisnummer", 0))
        except (TypeError, ValueError):
            continue
        if number != house_number:
            continue
        own = normalise_addition(_text(doc, "huisletter") + _text(doc, "huisnummertoevoeging"))
        candidates.append(FoundAddress(street, city, postcode, number, own or ""))
    for candidate in candidates:
        if candidate.addition == addition:
            return candidate
    return candidates[0] if candidates else None
