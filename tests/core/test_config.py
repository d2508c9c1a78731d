"""Settings from the environment: embedded defaults for a laptop, and a production mode that
refuses to start with settings that are only safe on a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest

from coop import create_app
from coop.config import DEV_SECRET_KEY, ConfigError, load_config

LONG_KEY = "0123456789abcdef0123456789abcdef-production"
APP_VARIABLES = (
    "COOP_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "MAIL_SERVER",
    "DEV_MAILBOX",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_ENABLED",
    "BASE_URL",
)
# Everything production needs; each test below takes one away or spoils it.
SAFE = {
    "SECRET_KEY": LONG_KEY,
    "MAIL_SERVER": "smtp.example",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "BASE_URL": "https://coop.example.nl",
}


def production(**env: str) -> dict[str, str]:
    return {"COOP_ENV": "production", **env}


def test_development_defaults_need_nothing_running(tmp_path: Path) -> None:
    config = load_config(str(tmp_path), env={})
    assert config["COOP_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'coop.sqlite3'}"
    assert config["SQLALCHEMY_ENGINE_OPTIONS"] == {"connect_args": {"timeout": 30}}
    assert config["REDIS_URL"] is None
    assert config["MAIL_SERVER"] is None
    assert config["MAIL_SUPPRESS_SEND"] is True
    assert config["DEV_MAILBOX"] is True
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["SECRET_KEY"] == DEV_SECRET_KEY


def test_production_without_secret_key_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), env=production())


@pytest.mark.parametrize(
    "key",
    [
        DEV_SECRET_KEY,
        "short-key",
        "x" * 31,
        "x" * 64,  # long, but one character repeated
        "ab" * 32,
        "abc123" * 8,
    ],
)
def test_production_with_a_weak_secret_key_refuses(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), env=production(**{**SAFE, "SECRET_KEY": key}))


def test_production_with_development_mailbox_refuses(tmp_path: Path) -> None:
    env = production(**SAFE, DEV_MAILBOX="1")
    with pytest.raises(ConfigError, match="DEV_MAILBOX"):
        load_config(str(tmp_path), env=env)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # No mail server: emails, with working login links, would go to the log.
        ({"MAIL_SERVER": ""}, "MAIL_SERVER"),
        ({"BASE_URL": "http://coop.example.nl"}, "BASE_URL"),
        ({"BASE_URL": "http://192.168.1.20:8000"}, "BASE_URL"),
        ({"BASE_URL": "coop.example.nl"}, "BASE_URL"),
        ({"BASE_URL": "https://"}, "BASE_URL"),
        ({"RATELIMIT_ENABLED": "false"}, "RATELIMIT_ENABLED"),
        # Limits kept in each process's memory: every gunicorn worker counts apart.
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "RATELIMIT_STORAGE_URI"),
    ],
)
def test_production_refuses_each_unsafe_setting(
    tmp_path: Path, change: dict[str, str], named: str
) -> None:
    load_config(str(tmp_path), env=production(**SAFE))  # the safe settings start
    with pytest.raises(ConfigError, match=named):
        load_config(str(tmp_path), env=production(**{**SAFE, **change}))


@pytest.mark.parametrize("base_url", ["http://localhost:8000", "http://127.0.0.1:5000"])
def test_production_tried_on_this_machine_may_use_http(tmp_path: Path, base_url: str) -> None:
    """The docker-compose file runs the production shape on http://localhost:8000: no link
    leaves the machine there."""
    config = load_config(str(tmp_path), env=production(**{**SAFE, "BASE_URL": base_url}))
    assert config["BASE_URL"] == base_url


def test_production_with_real_settings_uses_secure_cookies(tmp_path: Path) -> None:
    config = load_config(str(tmp_path), env=production(**SAFE))
    assert config["COOP_ENV"] == "production"
    assert config["SECRET_KEY"] == LONG_KEY
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["PREFERRED_URL_SCHEME"] == "https"
    assert config["DEV_MAILBOX"] is False
    assert config["MAIL_SUPPRESS_SEND"] is False
    # Rate limits must be shared by all processes: on Redis, not in each process's memory.
    assert config["RATELIMIT_STORAGE_URI"] == "redis://cache.internal:6379/0"


@pytest.mark.parametrize(
    "given",
    [
        "postgres://coop:secret@db:5432/coop",
        "postgresql://coop:secret@db:5432/coop",
        "postgresql+psycopg://coop:secret@db:5432/coop",
    ],
)
def test_postgres_urls_use_the_psycopg_driver(tmp_path: Path, given: str) -> None:
    config = load_config(str(tmp_path), env={"DATABASE_URL": given})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://coop:secret@db:5432/coop"
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True


def test_a_number_that_is_not_a_number_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_PORT"):
        load_config(str(tmp_path), env={"MAIL_PORT": "twenty-five"})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'coop.sqlite3'}")
    return monkeypatch


def test_create_app_in_production_without_a_secret_key_refuses_to_start(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("COOP_ENV", "production")
    clean_env.setenv("MAIL_SERVER", "smtp.example")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()
    clean_env.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_create_app_in_production_sends_secure_cookies_and_hsts(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("COOP_ENV", "production")
    for name, value in SAFE.items():
        clean_env.setenv(name, value)
    # Checked when the settings are read; the test's own limiter needs no Redis.
    app = create_app({"RATELIMIT_STORAGE_URI": "memory://", "REDIS_URL": None})
    response = app.test_client().get("/language/en", base_url="https://coop.example")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # The development mailbox does not exist in production.
    assert app.test_client().get("/dev/mailbox").status_code == 404
