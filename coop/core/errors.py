"""One shape for every rule that stops an operation, and one way to show it.

A service raises its domain's ``DomainError`` subclass with a ``code`` that names the rule and
``params`` the message needs (which tier, which date); it never words the message. Each view
module keeps its domain's texts, ``{code: text}``, and turns the error into words with
``message_for`` (or ``refuse``, which also puts the words at the form field they are about).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext

from coop.extensions import db

# A text: a (lazy) string with %(name)s placeholders, or a function returning one.
Text = Any | Callable[[], Any]


class DomainError(Exception):
    """A rule stopped the operation; ``code`` names it, ``params`` fill in its message."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def message_for(error: DomainError, messages: Mapping[str, Text]) -> str:
    """The error in words, from the domain's texts; a code without a text says it plainly."""
    template = messages.get(error.code)
    if template is None:
        return str(gettext("This is not possible."))
    text = str(template() if callable(template) else template)
    return text % error.params if error.params else text


def refuse(
    form: Any, error: DomainError, messages: Mapping[str, Text], fields: Mapping[str, str]
) -> str | None:
    """Undo the operation's changes and put the refusal at its form field (``fields``: code ->
    field name); return it when it belongs above the form."""
    db.session.rollback()
    message = message_for(error, messages)
    field = getattr(form, fields.get(error.code, ""), None)
    if field is None:
        return message
    field.errors = [*field.errors, message]
    return None
