"""The schema's migrations (Flask-Migrate over Alembic), loaded where they are used.

Alembic and Mako take about 9 MiB in every process that imports them, and a web process or a
worker never migrates. So ``init_app`` only records the settings: Flask-Migrate is set up for
the app by the first thing that needs it, a ``coop db ...`` command (the group imports its
commands when one is run) or ``flask_migrate.upgrade()`` and the like, which read
``app.extensions["migrate"]`` (tests, benchmarks, ``migrations/env.py``).
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask

from coop.extensions import db


def init_app(app: Flask, **options: Any) -> None:
    """``Migrate(app, db, **options)``, once something asks for it."""
    app.extensions["migrate"] = _Pending(app, options)
    app.cli.add_command(_Commands(app, options))


def load(app: Flask, options: dict[str, Any]) -> Any:
    """Set Flask-Migrate up for ``app`` now: its configuration, and its ``db`` commands."""
    from flask_migrate import Migrate

    Migrate(app, db, **options)
    return app.extensions["migrate"]


class _Pending:
    """Stands in ``app.extensions["migrate"]`` until an attribute is read."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options

    def __getattr__(self, name: str) -> Any:
        return getattr(load(self._app, self._options), name)


class _Commands(click.Group):
    """``coop db``: Flask-Migrate's commands, imported when one of them is asked for."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        super().__init__(
            name="db",
            help="Perform database migrations (Flask-Migrate).",
            # Flask-Migrate's own group takes these two; its callback keeps them for the command.
            params=[
                click.Option(["-d", "--directory"], default=None, help="Migration directory"),
                click.Option(["-x", "--x-arg"], multiple=True, help="Arguments for env.py"),
            ],
            callback=self._options_for_commands,
        )
        self._app = app
        self._options = options

    def _options_for_commands(self, **params: Any) -> None:
        callback = self._real().callback
        assert callback is not None
        callback(**params)

    def _real(self) -> click.Group:
        extension = self._app.extensions["migrate"]
        if isinstance(extension, _Pending):
            load(self._app, self._options)
        from flask_migrate.cli import db as commands

        group: click.Group = commands
        return group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._real().get_command(ctx, cmd_name)
