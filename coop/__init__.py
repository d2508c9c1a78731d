"""coop: collective purchase actions for insulation and heat pumps, and the participation
around them. ``create_app()`` builds the Flask application."""

from __future__ import annotations

import importlib
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
    """Every domain plugs into the app here, bottom-up: its rules for ``coop.core.authz``, the
    hooks it provides, its event receivers, its job handlers and its blueprints."""
    _import_domains()
    from coop.accounts import sessions

    login_manager.user_loader(sessions.load_user)
    from coop.accounts.views import bp as accounts_bp
    from coop.actions.desk_views import bp as actions_desk_bp
    from coop.actions.views import bp as actions_bp
    from coop.core.address_views import bp as address_bp
    from coop.desk.update_views import unsubscribe_bp
    from coop.desk.views import bp as desk_bp
    from coop.installers.views import bp as installers_desk_bp
    from coop.orders.desk_views import bp as orders_desk_bp
    from coop.orders.portal_views import bp as portal_bp
    from coop.orders.vat_views import bp as vat_desk_bp
    from coop.orders.views import bp as orders_bp
    from coop.participation.desk_views import bp as participation_desk_bp
    from coop.participation.views import bp as participation_bp
    from coop.payments.desk_views import bp as payments_desk_bp
    from coop.payments.views import bp as payments_bp
    from coop.registrations.desk_views import bp as registrations_desk_bp
    from coop.registrations.views import bp as registrations_bp
    from coop.tenders.desk_views import bp as tenders_desk_bp
    from coop.tenders.portal_views import bp as tenders_portal_bp

    for blueprint in (
        actions_bp,
        address_bp,
        registrations_bp,
        accounts_bp,
        desk_bp,
        unsubscribe_bp,
        installers_desk_bp,
        registrations_desk_bp,
        actions_desk_bp,
        payments_bp,
        payments_desk_bp,
        orders_desk_bp,
        vat_desk_bp,
        tenders_desk_bp,
        participation_bp,
        participation_desk_bp,
        # The installer's portal and the resident's steps in the work on their home.
        portal_bp,
        tenders_portal_bp,
        orders_bp,
    ):
        app.register_blueprint(blueprint)


def _import_domains() -> None:
    """Importing a module registers what it declares: the domain's authorisation rules
    (``permissions``), the hooks it provides to lower layers, its event receivers and its job
    handlers and periodic tasks (``jobs``). Imports below run in layer order."""
    for name in DOMAIN_MODULES:
        importlib.import_module(name)


# Bottom-up, so that event receivers connect (and run) lower domain first: a cancelled action's
# orders end before its deposits are settled (``coop.core.events``).
DOMAIN_MODULES = (
    "coop.accounts.permissions",
    "coop.accounts.jobs",
    "coop.actions.permissions",
    "coop.actions.email_templates",  # an action's own wording of its emails (``core.mail``)
    "coop.actions.jobs",
    "coop.installers.permissions",
    "coop.registrations.permissions",
    "coop.registrations.services",  # participant counts (``actions``), confirmation links
    "coop.registrations.jobs",
    "coop.tenders.permissions",
    "coop.tenders.jobs",
    "coop.orders.permissions",
    "coop.orders.services",  # the open demand (``tenders``); receives action events
    "coop.orders.jobs",
    "coop.orders.reviews",  # reviews on the action and installer pages
    "coop.payments.permissions",
    "coop.payments.services",  # receives action and quote events; the page after accepting
    "coop.payments.search",  # payment references in the registrations' search
    "coop.payments.jobs",
    "coop.participation.permissions",
    "coop.participation.jobs",
    "coop.participation.findable",  # what is open, on the action pages
    "coop.participation.survey_desk_views",  # routes on the participation desk's blueprint
    # The resident's pages across the domains add their routes to the registrations'
    # blueprints (before these are registered); their jobs are the withdrawal's emails.
    "coop.residents.views",
    "coop.residents.desk_views",
    "coop.residents.jobs",
    "coop.desk.permissions",
    "coop.desk.services",  # the desk's address-lookup switch (``core.address_lookup``)
    "coop.desk.jobs",
    "coop.desk.update_views",  # routes on the desk's blueprint
)


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
