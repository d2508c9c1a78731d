"""Signed tokens for links in email: tamper-proof, bound to a purpose by the salt."""

from __future__ import annotations

import functools
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer


def _serializer(purpose: str) -> URLSafeSerializer:
    return _made(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=64)
def _made(secret_key: str, purpose: str) -> URLSafeSerializer:
    """Kept per key and purpose: a mass mailing signs a link in each of its messages."""
    return URLSafeSerializer(secret_key, salt=f"coop.{purpose}")


def sign(purpose: str, payload: dict[str, Any]) -> str:
    """The same payload always gives the same token, so a re-sent email carries the same link."""
    token: str = _serializer(purpose).dumps(payload)
    return token


def unsign(purpose: str, token: str) -> dict[str, Any] | None:
    """The payload, or None when the token was altered, truncated or made for another purpose."""
    if not token or len(token) > 500:
        return None
    try:
        payload = _serializer(purpose).loads(token)
    except BadSignature:
        return None
    return payload if isinstance(payload, dict) else None
