"""Settings from environment variables, with embedded defaults that need nothing running.

Without configuration coop runs on SQLite in the instance folder, runs jobs in-process and
writes email to the log and the development mailbox. Each variable below switches one part to
the real service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"  # noqa: S105


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to set."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from the environment; ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    production = env.get("COOP_ENV", "development") == "production"
    database_url = env.get("DATABASE_URL") or "sqlite:///" + str(
        Path(instance_path) / "coop.sqlite3"
    )
    # Heroku-style URLs say postgres://; SQLAlchemy wants an explicit driver (psycopg 3).
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    redis_url = env.get("REDIS_URL") or None
    mail_server = env.get("MAIL_SERVER") or None

    config: dict[str, Any] = {
        "COOP_ENV": "production" if production else "development",
        "SECRET_KEY": env.get("SECRET_KEY") or DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url, env),
        "REDIS_URL": redis_url,
        "RQ_QUEUE": env.get("RQ_QUEUE", "coop"),
        # Jobs that have not finished this many seconds after they were handed over are handed
        # over again by the sweep (they are idempotent, so a second hand-over is harmless).
        "OUTBOX_REDISPATCH_AFTER": _int(env, "OUTBOX_REDISPATCH_AFTER", 300),
        "OUTBOX_MAX_ATTEMPTS": _int(env, "OUTBOX_MAX_ATTEMPTS", 8),
        # Outbox rows committed together go to a worker in RQ jobs of at most this many.
        "OUTBOX_BATCH_SIZE": max(1, _int(env, "OUTBOX_BATCH_SIZE", 50)),
        "MAIL_SERVER": mail_server,
        "MAIL_PORT": _int(env, "MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool(env.get("MAIL_USE_TLS"), False),
        "MAIL_USE_SSL": _bool(env.get("MAIL_USE_SSL"), False),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "coop <noreply@coop.localhost>"),
        "MAIL_TIMEOUT": _int(env, "MAIL_TIMEOUT", 20),
        # Flask-Mail suppresses sending when app.testing; we decide ourselves: no server, no send.
        "MAIL_SUPPRESS_SEND": mail_server is None,
        "DEV_MAILBOX": _bool(env.get("DEV_MAILBOX"), not production and mail_server is None),
        "BASE_URL": env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "MAGIC_LINK_TTL_MINUTES": _int(env, "MAGIC_LINK_TTL_MINUTES", 60 * 24),
        "CONFIRMATION_REMINDER_AFTER_HOURS": _int(env, "CONFIRMATION_REMINDER_AFTER_HOURS", 48),
        "CONFIRMATION_EXPIRES_AFTER_HOURS": _int(env, "CONFIRMATION_EXPIRES_AFTER_HOURS", 7 * 24),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or redis_url or "memory://",
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SIGNUP": env.get("RATELIMIT_SIGNUP", "20 per hour"),
        "RATELIMIT_LOGIN": env.get("RATELIMIT_LOGIN", "10 per 15 minutes"),
        "BABEL_DEFAULT_LOCALE": "nl",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Amsterdam",
        "RSVP_RETENTION_DAYS": _int(env, "RSVP_RETENTION_DAYS", 28),
        "LANGUAGES": ["nl", "en"],
        "WTF_CSRF_TIME_LIMIT": 4 * 3600,
        # A form field may hold up to 2 MB so that an over-long field gets a message at the
        # field (its Length validator) instead of a bare 413 for the whole request.
        "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        # Behind a reverse proxy that sets X-Forwarded-For/-Proto (one hop): trust those headers.
        "TRUST_PROXY": _bool(env.get("TRUST_PROXY"), False),
        # Seconds the matching engine may search for a better proposal (it stops sooner when it
        # has proven the best one).
        "MATCHING_TIME_LIMIT": _int(env, "MATCHING_TIME_LIMIT", 20),
        # With a secret key deposits go through Stripe Checkout; without, residents pay by bank
        # transfer and staff mark what arrived ("offline" mode).
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        # Seconds a webhook's signed timestamp may be old (Stripe's libraries use 300).
        "STRIPE_WEBHOOK_TOLERANCE": _int(env, "STRIPE_WEBHOOK_TOLERANCE", 300),
        # Where the Stripe library sends its requests; tests point it at a stand-in on loopback.
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "STRIPE_TIMEOUT": _int(env, "STRIPE_TIMEOUT", 20),
        # The library's own retries of a request that got no answer (same idempotency key).
        "STRIPE_MAX_NETWORK_RETRIES": _int(env, "STRIPE_MAX_NETWORK_RETRIES", 2),
        # Days after paying a deposit in which a resident can withdraw and get it back.
        "COOLING_OFF_DAYS": _int(env, "COOLING_OFF_DAYS", 14),
    }
    if production:
        check_production(config)
    return config


def _engine_options(database_url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = env or {}
    if database_url.startswith("sqlite"):
        # Jobs run in the same process as requests on the embedded default; wait for the
        # write lock rather than failing at once.
        return {"connect_args": {"timeout": 30}}
    # A database that does not answer (a failover, a network cut) is given up after 5 s, so the
    # page says "try again in a minute" (503) before the proxy or gunicorn give up on us.
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    # Behind PgBouncer in transaction mode (before 1.21, or without max_prepared_statements)
    # a server-side prepared statement may land on another server connection: turn them off.
    if _bool(env.get("DATABASE_NO_PREPARED_STATEMENTS"), False):
        connect_args["prepare_threshold"] = None
    # Connections per process = at most pool size + overflow (see the README's production
    # section for what a node needs).
    return {
        "pool_pre_ping": True,
        "pool_size": max(1, _int(env, "DATABASE_POOL_SIZE", 5)),
        "max_overflow": max(0, _int(env, "DATABASE_MAX_OVERFLOW", 10)),
        "connect_args": connect_args,
    }


def check_production(config: Mapping[str, Any]) -> None:
    """Refuse to run in production with settings that are only safe on a laptop."""
    if config["SECRET_KEY"] == DEV_SECRET_KEY or len(str(config["SECRET_KEY"])) < 32:
        raise ConfigError(
            "COOP_ENV=production needs SECRET_KEY set to a random value of at least 32 "
            "characters (for example: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if config["STRIPE_SECRET_KEY"] and not config["STRIPE_WEBHOOK_SECRET"]:
        raise ConfigError(
            "STRIPE_SECRET_KEY is set without STRIPE_WEBHOOK_SECRET: payments would never be "
            "confirmed. Set the signing secret of the webhook endpoint (whsec_...)"
        )
    if config["DEV_MAILBOX"]:
        raise ConfigError(
            "DEV_MAILBOX shows every email on a web page; it cannot be on in production"
        )
