"""Failed passwords and codes per account: a delay that grows, never a lock.

Limits per client address do not stop a sprayer with many addresses, so failures are also
counted per account (the email address typed, whether or not it has an account, so the answer
tells nothing about who has one; for a code, the user). After ``LOGIN_ACCOUNT_FREE_FAILURES``
failures within 15 minutes, each further attempt must wait: 2 seconds, then 4, 8... up to
``LOGIN_ACCOUNT_MAX_DELAY``. An attempt during the wait is refused without checking the password,
and once the wait is over one attempt, not many at once, gets through. A staff member whose
account is under attack waits at most that long; never locked out.
"""

from __future__ import annotations

from flask import current_app

from coop.core import ratelimit

WINDOW = 15 * 60
# One claimed attempt holds its turn this long at most (a request that dies mid-way).
_TURN = 10


def _base(kind: str, subject: str) -> str:
    return f"account/{kind}/{ratelimit.fingerprint(subject)}"


def _free() -> int:
    return int(current_app.config["LOGIN_ACCOUNT_FREE_FAILURES"])


def delay_after(failures: int) -> int:
    """Seconds to wait after the ``failures``-th failure in a row."""
    free = _free()
    if failures < free:
        return 0
    return int(min(2 ** (failures - free + 1), int(current_app.config["LOGIN_ACCOUNT_MAX_DELAY"])))


def wait(kind: str, subject: str) -> int:
    """Seconds before an attempt on this account may be tried; 0 lets this attempt go ahead
    (and, past the free attempts, claims the one turn that the wait allows)."""
    if not ratelimit.enabled():
        return 0
    base = _base(kind, subject)
    failures = ratelimit.value(f"{base}/n")
    if failures < _free():
        return 0
    if ratelimit.value(f"{base}/wait"):
        return max(1, ratelimit.expires_in(f"{base}/wait"))
    if ratelimit.counter(f"{base}/turn/{failures}", _TURN) > 1:
        return max(1, ratelimit.expires_in(f"{base}/turn/{failures}"))
    return 0


def failed(kind: str, subject: str) -> None:
    if not ratelimit.enabled():
        return
    base = _base(kind, subject)
    failures = ratelimit.counter(f"{base}/n", WINDOW)
    delay = delay_after(failures)
    if delay:
        ratelimit.clear(f"{base}/wait")
        ratelimit.counter(f"{base}/wait", delay)


def succeeded(kind: str, subject: str) -> None:
    if not ratelimit.enabled():
        return
    base = _base(kind, subject)
    ratelimit.clear(f"{base}/n")
    ratelimit.clear(f"{base}/wait")
