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
from urllib.parse import urlsplit

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


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc


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
        # Outbox rows committed together go to a worker in RQ jobs of at most this many (a
        # worker takes the urgent lane first between two jobs: a bulk job of 200 emails keeps a
        # sign-up's link waiting for about a second).
        "OUTBOX_BATCH_SIZE": max(1, _int(env, "OUTBOX_BATCH_SIZE", 200)),
        # The rows of a chunk but its last commit without waiting for PostgreSQL's disk (see
        # coop/core/jobs.py ``_flush_later``); off: every email's commit waits for it.
        "OUTBOX_FLUSH_LATER": _bool(env.get("OUTBOX_FLUSH_LATER"), True),
        # A worker sends a large chunk over this many threads, each with its own database and
        # SMTP connection, so that one waits for the servers while another works (PostgreSQL
        # only; see coop/core/jobs.py ``execute_chunk``).
        "OUTBOX_SENDERS": max(1, _int(env, "OUTBOX_SENDERS", 2)),
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
        # Redis down must not turn sign-up and login into a 500: the limits are then kept in
        # this process's memory until Redis answers again, and an error is logged, not raised.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Ask a Redis that hangs for at most a second; the request goes on without it.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        # Per client address: sign-ups and other public forms that were accepted (a form sent
        # back for a typing error does not count), so a full information evening on one Wi-Fi
        # can register.
        "RATELIMIT_SIGNUP": env.get("RATELIMIT_SIGNUP", "60 per hour"),
        # Per client address: failed logins (a wrong password or code, a bad link), never
        # successful ones, so an office behind one address is not locked out.
        "RATELIMIT_LOGIN": env.get("RATELIMIT_LOGIN", "10 per 15 minutes"),
        # Per email address: sign-ups and login links sent to one address.
        "RATELIMIT_PER_EMAIL": env.get("RATELIMIT_PER_EMAIL", "5 per hour"),
        # Per account: after this many failed passwords or codes in 15 minutes each further
        # attempt waits, 2 seconds at first and doubling up to LOGIN_ACCOUNT_MAX_DELAY: a
        # sprayer with many addresses gets no more tries, the staff member is never locked out.
        "LOGIN_ACCOUNT_FREE_FAILURES": _int(env, "LOGIN_ACCOUNT_FREE_FAILURES", 10),
        "LOGIN_ACCOUNT_MAX_DELAY": _int(env, "LOGIN_ACCOUNT_MAX_DELAY", 60),
        # How long a login lasts: staff and installers without activity / at most; residents
        # (who log in by an emailed link) longer.
        "SESSION_IDLE_MINUTES": _int(env, "SESSION_IDLE_MINUTES", 30),
        "SESSION_LIFETIME_HOURS": _int(env, "SESSION_LIFETIME_HOURS", 12),
        "RESIDENT_SESSION_IDLE_MINUTES": _int(env, "RESIDENT_SESSION_IDLE_MINUTES", 4 * 60),
        "RESIDENT_SESSION_LIFETIME_HOURS": _int(env, "RESIDENT_SESSION_LIFETIME_HOURS", 7 * 24),
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
        # Where Stripe Checkout's pages are: the pay form's redirect goes there, so the
        # Content-Security-Policy's form-action must allow it (tests use the stand-in's address).
        "STRIPE_CHECKOUT_ORIGIN": env.get("STRIPE_CHECKOUT_ORIGIN", "https://checkout.stripe.com"),
        # Where the Stripe library sends its requests; tests point it at a stand-in on loopback.
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "STRIPE_TIMEOUT": _int(env, "STRIPE_TIMEOUT", 20),
        # The library's own retries of a request that got no answer (same idempotency key).
        "STRIPE_MAX_NETWORK_RETRIES": _int(env, "STRIPE_MAX_NETWORK_RETRIES", 2),
        # Days after accepting a quote in which a resident can withdraw the measure and get the
        # deposit back (counted from the acceptance: the contract; paying later does not move it).
        "COOLING_OFF_DAYS": _int(env, "COOLING_OFF_DAYS", 14),
        # Street and town from the BAG after postcode and house number (coop.core.address_lookup):
        # PDOK's Locatieserver by default; another address answering in its shape, or empty to
        # switch the lookup off.
        "ADDRESS_LOOKUP_URL": env.get(
            "ADDRESS_LOOKUP_URL", "https://api.pdok.nl/bzk/locatieserver/search/v3_1/free"
        ).strip(),
        "ADDRESS_LOOKUP_TIMEOUT": _float(env, "ADDRESS_LOOKUP_TIMEOUT", 2.0),
        # Seconds the lookup rests after a failure, so that an unreachable service delays one
        # sign-up rather than every one.
        "ADDRESS_LOOKUP_PAUSE": _float(env, "ADDRESS_LOOKUP_PAUSE", 30.0),
        "RATELIMIT_ADDRESS_LOOKUP": env.get("RATELIMIT_ADDRESS_LOOKUP", "60 per minute"),
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


# A random key of 32 characters or more has far more different characters than this; a key
# such as "aaaa..." or "abababab..." has fewer.
_MIN_DISTINCT_SECRET_CHARACTERS = 10


def _weak_secret(key: str) -> bool:
    return key == DEV_SECRET_KEY or len(key) < 32 or len(set(key)) < _MIN_DISTINCT_SECRET_CHARACTERS


def _https_or_loopback(base_url: str) -> bool:
    """https, or http to this machine only (the production shape tried on a laptop, as the
    docker-compose file does on http://localhost:8000): no link then travels over a network."""
    parts = urlsplit(base_url)
    if parts.scheme == "https" and parts.hostname:
        return True
    host = parts.hostname or ""
    loopback = host in {"localhost", "127.0.0.1", "::1"} or host.endswith(".localhost")
    return parts.scheme == "http" and loopback


def check_production(config: Mapping[str, Any]) -> None:
    """Refuse to run in production with settings that are only safe on a laptop."""
    if _weak_secret(str(config["SECRET_KEY"])):
        raise ConfigError(
            "COOP_ENV=production needs SECRET_KEY set to a random value of at least 32 "
            "characters (for example: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if not config.get("MAIL_SERVER"):
        raise ConfigError(
            "COOP_ENV=production needs MAIL_SERVER: without it emails, with working login "
            "links in them, are written to the log instead of sent"
        )
    if not _https_or_loopback(str(config["BASE_URL"])):
        raise ConfigError(
            "COOP_ENV=production needs BASE_URL to start with https://: the links in emails "
            "carry login tokens and must not travel unencrypted"
        )
    if not config.get("RATELIMIT_ENABLED"):
        raise ConfigError(
            "RATELIMIT_ENABLED is off: in production login, sign-up and links must be rate-limited"
        )
    if str(config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        raise ConfigError(
            "COOP_ENV=production keeps rate limits in Redis, shared by every web process: set "
            "REDIS_URL (or RATELIMIT_STORAGE_URI); in memory each process would count apart"
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
