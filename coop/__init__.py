"""coop: collective purchase actions for insulation and heat pumps, and the participation
around them. ``create_app()`` builds the Flask application."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from coop.config import load_config
from coop.core import schema
from coop.core.db import render_migration_item
from coop.extensions import babel, csrf, db, limiter, login_manager, mail

__all__ = ["create_app"]


def source_folder(name: str) -> str:
    """``templates/`` or ``migrations/``, which sit beside the package in the source tree.

    coop runs from its source tree (``pip install -e .``, as ``make install`` and the image do).
    A copy of the package installed elsewhere (``pip install .``) has neither: say so at once
    rather than fail on the first page or migration.
    """
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name)
    if not os.path.isdir(path):
        raise RuntimeError(
            f"{path} does not exist: this copy of coop ({os.path.dirname(__file__)}) was installed "
            "away from its source tree; install it in place with `pip install -e .`"
        )
    return path


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment; ``config`` overrides (tests use it)."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=source_folder("templates"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)
    _configure_logging(app)

    from coop import models as _models  # noqa: F401  (the whole schema, before any query)
    from coop.core import widgets

    widgets.install()  # WTForms' attribute writer, the same output faster (coop/core/widgets.py)

    db.init_app(app)
    schema.init_app(
        app,
        directory=source_folder("migrations"),
        render_as_batch=True,
        compare_type=True,
        render_item=render_migration_item,
    )
    login_manager.init_app(app)
    mail.init_app(app)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=_select_locale,
        default_translation_directories=os.path.join(os.path.dirname(__file__), "translations"),
    )
    limiter.init_app(app)
    if app.config.get("TRUST_PROXY"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from coop.core import jobs, web

    jobs.init_app(app)
    web.init_app(app)
    _register_domains(app)

    from coop import cli

    cli.init_app(app)
    return app


def _register_domains(app: Flask) -> None:
    # Importing each domain's jobs module registers its job handlers and periodic tasks.
    from coop.accounts import jobs as _account_jobs  # noqa: F401
    from coop.accounts.views import bp as accounts_bp
    from coop.actions.views import bp as actions_bp
    from coop.core.address_views import bp as address_bp
    from coop.desk.views import bp as desk_bp
    from coop.registrations import jobs as _registration_jobs  # noqa: F401
    from coop.registrations.views import bp as registrations_bp

    app.register_blueprint(actions_bp)
    app.register_blueprint(address_bp)
    app.register_blueprint(registrations_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(desk_bp)
    from coop.desk import jobs as _desk_jobs  # noqa: F401
    from coop.desk.views import unsubscribe_bp

    app.register_blueprint(unsubscribe_bp)
    from coop.installers.views import bp as installers_desk_bp
    from coop.registrations.desk_views import bp as registrations_desk_bp

    app.register_blueprint(installers_desk_bp)
    app.register_blueprint(registrations_desk_bp)
    from coop.actions import jobs as _action_jobs  # noqa: F401
    from coop.actions.desk_views import bp as actions_desk_bp

    app.register_blueprint(actions_desk_bp)
    from coop.orders import jobs as _order_jobs  # noqa: F401
    from coop.orders.desk_views import bp as orders_desk_bp
    from coop.payments import jobs as _payment_jobs  # noqa: F401
    from coop.payments.desk_views import bp as payments_desk_bp
    from coop.payments.views import bp as payments_bp

    app.register_blueprint(payments_bp)
    app.register_blueprint(payments_desk_bp)
    from coop.tenders import jobs as _tender_jobs  # noqa: F401
    from coop.tenders.desk_views import bp as tenders_desk_bp

    app.register_blueprint(orders_desk_bp)
    app.register_blueprint(tenders_desk_bp)
    from coop.participation import jobs as _participation_jobs  # noqa: F401
    from coop.participation.views import bp as participation_bp
    from coop.participation.views import desk_bp as participation_desk_bp

    app.register_blueprint(participation_bp)
    app.register_blueprint(participation_desk_bp)
    # The installer's portal and the resident's steps in the work on their home.
    from coop.orders.portal_views import bp as portal_bp
    from coop.orders.views import bp as orders_bp
    from coop.tenders.portal_views import bp as tenders_portal_bp

    app.register_blueprint(portal_bp)
    app.register_blueprint(tenders_portal_bp)
    app.register_blueprint(orders_bp)


def _select_locale() -> str:
    languages: list[str] = ["nl", "en"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    # Dutch by default; English only when the browser prefers it over Dutch.
    best = request.accept_languages.best_match(languages, default="nl")
    return best or "nl"


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("LOG_LEVEL", "INFO"),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
