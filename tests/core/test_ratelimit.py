"""``ratelimit.take``: several limits checked and counted at once, in one round trip to Redis
(a sign-up's two limits took four: a read and a count each)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from redis.connection import AbstractConnection

from coop.core import ratelimit

PER_ADDRESS = ratelimit.Limit("test-address", "RATELIMIT_SIGNUP")
PER_EMAIL = ratelimit.Limit("test-email", "RATELIMIT_PER_EMAIL")


@pytest.fixture
def app_config(redis_url: str) -> dict[str, Any]:
    return {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_SIGNUP": "3 per minute",
        "RATELIMIT_PER_EMAIL": "2 per hour",
    }


def test_two_limits_in_one_round_trip(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[object] = []
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        sent.append(command)
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    with app.test_request_context():
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0  # script loaded
        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0
        assert len(sent) == 1  # one EVALSHA: its GETs and INCRs run inside Redis


def test_counts_only_when_every_limit_has_room(app: Flask) -> None:
    with app.test_request_context():
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0
        # The email's limit (2 per hour) is reached: the wait is the rest of its hour...
        wait = ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a"))
        assert 3500 < wait <= 3600
        # ...and the address was not counted for it: one place is left there.
        assert PER_ADDRESS.wait("192.0.2.1") == 0
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "b")) == 0
        wait = ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "c"))
        assert 0 < wait <= 60
        # The same counts as ``Limit.wait`` and ``Limit.count`` keep (the same keys).
        assert 0 < PER_ADDRESS.wait("192.0.2.1") <= 60
        assert PER_ADDRESS.wait("192.0.2.2") == 0


def test_in_memory_while_redis_is_away(app: Flask) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:9/0"  # nothing listens there
    with app.test_request_context():
        for _ in range(2):
            assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0
        assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) > 0


def test_nothing_counts_with_limits_switched_off(app: Flask) -> None:
    app.config["RATELIMIT_ENABLED"] = False
    with app.test_request_context():
        for _ in range(5):
            assert ratelimit.take((PER_ADDRESS, "192.0.2.1"), (PER_EMAIL, "a")) == 0
