"""The Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

from typing import Any

import flask_babel
from flask import request
from flask_babel import Babel, Domain
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints make migrations reproducible on every database (SQLite needs names to
    # alter a constraint in batch mode).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )

    @classmethod
    def __table_cls__(cls, *args: Any, **kwargs: Any) -> Table:
        # SQLite gives a new row the id of a deleted last row unless the table is AUTOINCREMENT;
        # ids make outbox keys ("login-link:47") and Stripe idempotency keys, which must never
        # repeat. Every table is AUTOINCREMENT there (migration 0009); other databases' sequences
        # never go back anyway.
        kwargs.setdefault("sqlite_autoincrement", True)
        return Table(*args, **kwargs)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()


class _TranslationsPerRequest(Domain):
    """Flask-Babel's domain, keeping the translations it looks up for the rest of the request.

    Flask-Babel looks the locale and its catalogue up again for every text (about 17 µs each;
    a sign-up form and its POST translate some 150 texts: 2.5 ms). They are kept in the
    request's ``babel_translations``, which Flask-Babel itself clears whenever the locale may
    change: ``force_locale`` (an email in the resident's language) and ``refresh``."""

    def get_translations(self) -> Any:
        ctx = flask_babel._get_current_context()
        if ctx is None:
            return super().get_translations()
        kept = getattr(ctx, "babel_translations", None)
        if kept is None:
            kept = ctx.babel_translations = super().get_translations()
        return kept


babel = Babel()
babel.domain_instance = _TranslationsPerRequest()


def _client_address() -> str:
    # Behind the compose proxy the address comes from ProxyFix; fall back to the socket peer.
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=_client_address, default_limits=[])
