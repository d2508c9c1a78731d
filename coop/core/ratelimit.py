"""Rate limits that a view counts itself, where a decorator cannot decide.

Flask-Limiter's decorators count requests before the view runs and answer a bare 429. Some limits
need the view: a sign-up form refused for a typing error must not count, and one that is over
the limit is shown again with what was typed and how long to wait; a login link is limited per
email address, which only the form knows; failed uses of emailed links count, successful ones do
not. Those limits are kept here, in the same storage as Flask-Limiter's (Redis in production).

Redis being down must not turn sign-up and login into a 500: the limits are then kept in this
process's memory (a warning is logged) until Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)

# After a storage error, Redis is asked again after this many seconds.
_RETRY_PRIMARY_AFTER = 5.0


@dataclass
class _Limits:
    primary: Storage
    fallback: MemoryStorage = field(default_factory=MemoryStorage)
    primary_down_until: float = 0.0
    take_script: Any = None  # ``take``'s script, registered with the primary (Redis) storage

    def storage(self) -> Storage:
        return self.fallback if time.time() < self.primary_down_until else self.primary

    def failed(self, exc: Exception) -> None:
        if time.time() >= self.primary_down_until:
            log.warning("rate limit storage unreachable, counting in memory for now: %s", exc)
        self.primary_down_until = time.time() + _RETRY_PRIMARY_AFTER


def _limits(app: Flask | None = None) -> _Limits:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    existing: _Limits | None = app.extensions.get("coop_ratelimit")
    if existing is None:
        uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
        options = app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}
        primary = storage_from_string(uri, **(options if uri.startswith("redis") else {}))
        existing = _Limits(primary=primary)  # type: ignore[arg-type]
        app.extensions["coop_ratelimit"] = existing
    return existing


def enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def _call(operation: str, *args: Any, **kwargs: Any) -> Any:
    """``operation`` on the storage's fixed-window limiter, falling back to memory."""
    limits = _limits()
    storage = limits.storage()
    try:
        return getattr(FixedWindowRateLimiter(storage), operation)(*args, **kwargs)
    except Exception as exc:
        if storage is limits.fallback:
            raise
        limits.failed(exc)
        return getattr(FixedWindowRateLimiter(limits.fallback), operation)(*args, **kwargs)


def _storage_call(operation: str, *args: Any) -> Any:
    """A plain storage operation (incr, get, get_expiry, clear), falling back to memory."""
    limits = _limits()
    storage = limits.storage()
    try:
        return getattr(storage, operation)(*args)
    except Exception as exc:
        if storage is limits.fallback:
            raise
        limits.failed(exc)
        return getattr(limits.fallback, operation)(*args)


def fingerprint(value: str) -> str:
    """A key part for personal data (an email address): the storage never holds it plainly."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Limit:
    """A named limit whose amount comes from a setting, e.g. ("signup", "RATELIMIT_SIGNUP")."""

    scope: str
    setting: str

    def item(self) -> RateLimitItem:
        return parse(str(current_app.config[self.setting]))

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may go on (0: now)."""
        if not enabled():
            return 0
        item = self.item()
        if _call("test", item, "coop", self.scope, key):
            return 0
        stats = _call("get_window_stats", item, "coop", self.scope, key)
        return max(1, math.ceil(float(stats.reset_time) - time.time()))

    def count(self, key: str) -> None:
        if enabled():
            _call("hit", self.item(), "coop", self.scope, key)


# Every limit's count (KEYS, ARGV: the amounts, then the windows in seconds) is read; if one is
# at its amount, the longest wait among those is returned and nothing counts; else each counts,
# its window starting at its first count (as limits' own incr_expire), and 0 is returned.
_TAKE = """
local wait = 0
for i, key in ipairs(KEYS) do
    if tonumber(redis.call("get", key) or "0") >= tonumber(ARGV[i]) then
        wait = math.max(wait, redis.call("ttl", key), 1)
    end
end
if wait > 0 then
    return wait
end
for i, key in ipairs(KEYS) do
    if redis.call("incr", key) == 1 then
        redis.call("expire", key, ARGV[#KEYS + i])
    end
end
return 0
"""


def take(*limits: tuple[Limit, str]) -> int:
    """Count one for each (limit, key) if none is at its amount; else count nothing and return
    the seconds to wait (the longest of those at their amount). What ``wait`` then ``count`` on
    each do, in one round trip to Redis (a sign-up's two limits took four) and at once: two
    requests at the same moment cannot both pass the last place."""
    if not enabled():
        return 0
    items = [(limit.item(), limit.scope, key) for limit, key in limits]
    state = _limits()
    storage = state.storage()
    if isinstance(storage, RedisStorage):
        try:
            if state.take_script is None:
                state.take_script = storage.get_connection().register_script(_TAKE.encode())
            keys = [
                storage.prefixed_key(item.key_for("coop", scope, key)) for item, scope, key in items
            ]
            amounts = [item.amount for item, _, _ in items]
            windows = [item.get_expiry() for item, _, _ in items]
            return int(state.take_script(keys, [*amounts, *windows]))
        except Exception as exc:
            state.failed(exc)
    wait = max(limit.wait(key) for limit, key in limits)
    if not wait:
        for limit, key in limits:
            limit.count(key)
    return wait


def counter(key: str, window: int) -> int:
    """Add one to a counter that lives ``window`` seconds from its first count; its value."""
    return int(_storage_call("incr", f"coop/{key}", window))


def value(key: str) -> int:
    return int(_storage_call("get", f"coop/{key}"))


def expires_in(key: str) -> int:
    return max(0, math.ceil(float(_storage_call("get_expiry", f"coop/{key}")) - time.time()))


def clear(key: str) -> None:
    _storage_call("clear", f"coop/{key}")


def wait_text(seconds: int) -> str:
    """How long to wait, in words: "30 seconds", "4 minutes"."""
    from flask_babel import ngettext

    if seconds < 60:
        return str(ngettext("%(num)d second", "%(num)d seconds", seconds))
    minutes = math.ceil(seconds / 60)
    return str(ngettext("%(num)d minute", "%(num)d minutes", minutes))
