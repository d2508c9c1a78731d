"""One place that says who may do what with which object.

Views call ``require(user, obj, action)``; it aborts with 404 rather than 403 for someone else's
object, so guessing ids tells nothing about what exists. ``role_required`` guards whole pages.

The rules themselves live with their domain, next to its models (``coop/<domain>/permissions.py``):
each registers a policy per kind of object with ``@policy(Model)``, and ``coop.accounts`` says
who an actor is (``resolve_actor``). ``create_app`` imports every domain's permissions, so
``authorize()`` knows every rule once the application exists; ``tests/test_authorization.py`` is
the one table that checks them all.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from coop.core.hooks import Hook

F = TypeVar("F", bound=Callable[..., Any])
# (user, object, action) -> allowed; ``user`` is the active account or None.
Policy = Callable[[Any, Any, str], bool]

_policies: dict[type, Policy] = {}

# The actor (the session's user, anonymous or None) as the active account, or None.
resolve_actor: Hook[Callable[[Any], Any]] = Hook("resolve_actor", lambda actor: None)


def policy(kind: type) -> Callable[[Policy], Policy]:
    """Register the rules for objects of ``kind`` (and of its subclasses)."""

    def register(rules: Policy) -> Policy:
        _policies[kind] = rules
        return rules

    return register


def authorize(actor: Any, obj: Any, action: str) -> bool:
    # ``obj.__class__``, not ``type(obj)``: Flask-Login's ``current_user`` is a proxy that
    # answers ``__class__`` with its user's class.
    for kind in obj.__class__.__mro__:
        rules = _policies.get(kind)
        if rules is not None:
            return rules(resolve_actor.call(actor), obj, action)
    # A kind of object nobody wrote rules for: nobody may do anything with it.
    return False


def require(actor: Any, obj: Any, action: str) -> None:
    if obj is None or not authorize(actor, obj, action):
        abort(404)


def role_required(*roles: Any) -> Callable[[F], F]:
    """Only logged-in users with one of ``roles``; others get 404 (or the login page)."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles or not current_user.is_active:
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
