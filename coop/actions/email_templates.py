"""Staff's own wording of the emails an action sends to residents, per language.

The wording is plain text with placeholders (``{{ name }}``, ``{{ link }}``...). It is parsed in
Jinja's sandbox with ``StrictUndefined`` and checked before it is stored: a syntax error, an
unknown placeholder, a missing required one (a confirmation email without ``{{ link }}`` would
leave the resident stuck) or anything beyond placeholders and ``{% if %}`` is refused with the
reason. Loops, calls and attribute access are refused too: they are not needed for wording, and a
loop is how a template would keep a worker busy for ever.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from sqlalchemy import select

from coop.accounts.models import User
from coop.actions.models import Action, ActionEmailTemplate
from coop.core import audit, mail
from coop.core.formatting import local_date
from coop.core.time import utcnow
from coop.extensions import db

log = logging.getLogger(__name__)

LANGUAGES = ("nl", "en")
SUBJECT_MAX = 200
BODY_MAX = 10_000

PLACEHOLDER_HELP: dict[str, Any] = {
    "name": _l("the resident's name"),
    "link": _l("the resident's personal link to confirm the registration"),
    "action_title": _l("the title of the action, in the language of the email"),
    "address": _l("the registered address, like Hoofdstraat 12, 3521 AB Utrecht"),
    "contact_email": _l("the contact email address of the action"),
    "expires_on": _l("the date the registration lapses when it is not confirmed"),
    "reason": _l("the reason the resident gave for withdrawing"),
}


@dataclass(frozen=True)
class EmailKind:
    """One email residents get; ``name`` is the file template's name in ``templates/email``."""

    name: str
    label: Any
    placeholders: tuple[str, ...]
    required: frozenset[str] = frozenset()


EMAIL_KINDS: dict[str, EmailKind] = {
    kind.name: kind
    for kind in (
        EmailKind(
            "confirm_registration",
            _l("Confirm your registration"),
            ("name", "link", "action_title", "address", "contact_email"),
            frozenset({"link"}),
        ),
        EmailKind(
            "confirmation_reminder",
            _l("Reminder to confirm"),
            ("name", "link", "action_title", "address", "expires_on", "contact_email"),
            frozenset({"link"}),
        ),
        EmailKind(
            "registration_withdrawn",
            _l("Registration withdrawn"),
            ("name", "action_title", "address", "reason", "contact_email"),
        ),
    )
}

# Filters that only change letters or spaces; nothing that calls out or builds large strings.
_FILTERS = frozenset({"upper", "lower", "capitalize", "title", "trim"})
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.Not,
    nodes.Filter,
)
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# A web address, without the full stop or bracket that often follows one in a sentence.
_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)]")


class WordingRefusedError(Exception):
    """The wording was not stored; ``errors`` maps the field (subject, body) to the reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _check_nodes(node: nodes.Node, top_level: set[str], everywhere: set[str], in_if: bool) -> str:
    """Collect the placeholders used; returns a reason when something else is used."""
    if not isinstance(node, _ALLOWED_NODES):
        return str(
            gettext(
                "Only placeholders like {{ name }} and {%% if name %%} … {%% endif %%} can be used "
                "(found: %(what)s).",
                what=type(node).__name__,
            )
        )
    if isinstance(node, nodes.Filter) and node.name not in _FILTERS:
        return str(
            gettext(
                "The filter “%(filter)s” cannot be used; these can: %(filters)s.",
                filter=node.name,
                filters=", ".join(sorted(_FILTERS)),
            )
        )
    if isinstance(node, nodes.Name):
        everywhere.add(node.name)
        if not in_if:
            top_level.add(node.name)
    if isinstance(node, nodes.If):
        # What is inside an {% if %} may not be shown; the test itself counts as "used".
        problem = _check_nodes(node.test, set(), everywhere, True)
        if problem:
            return problem
        for child in [*node.body, *node.elif_, *node.else_]:
            problem = _check_nodes(child, top_level, everywhere, True)
            if problem:
                return problem
        return ""
    for child in node.iter_child_nodes():
        problem = _check_nodes(child, top_level, everywhere, in_if)
        if problem:
            return problem
    return ""


def _problem(kind: EmailKind, source: str, required: frozenset[str]) -> str | None:
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        return str(
            gettext(
                "There is a mistake on line %(line)d: %(reason)s.",
                line=exc.lineno,
                reason=(exc.message or "").rstrip("."),
            )
        )
    top_level: set[str] = set()
    everywhere: set[str] = set()
    problem = _check_nodes(tree, top_level, everywhere, False)
    if problem:
        return problem
    unknown = sorted(everywhere - set(kind.placeholders))
    if unknown:
        return str(
            gettext(
                "Unknown placeholder {{ %(name)s }}. This email can use: %(allowed)s.",
                name=unknown[0],
                allowed=", ".join(f"{{{{ {p} }}}}" for p in kind.placeholders),
            )
        )
    missing = sorted(required - top_level)
    if missing:
        return str(
            gettext(
                "The text must contain {{ %(name)s }} (not inside {%% if %%}): without it the "
                "resident cannot confirm.",
                name=missing[0],
            )
        )
    try:
        _env.from_string(source).render(**{p: "x" for p in kind.placeholders})
    except TemplateError as exc:
        return str(gettext("This text cannot be used: %(reason)s.", reason=str(exc).rstrip(".")))
    return None


def check_wording(kind_name: str, subject: str, body: str) -> dict[str, str]:
    """Why the wording cannot be stored, per field; empty when it can."""
    kind = EMAIL_KINDS[kind_name]
    errors: dict[str, str] = {}
    if not subject.strip():
        errors["subject"] = gettext("Enter a subject.")
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = gettext("Use at most %(n)d characters.", n=SUBJECT_MAX)
    elif "\n" in subject or "\r" in subject:
        errors["subject"] = gettext("A subject is one line.")
    else:
        problem = _problem(kind, subject, frozenset())
        if problem:
            errors["subject"] = problem
    if not body.strip():
        errors["body"] = gettext("Enter the text of the email.")
    elif len(body) > BODY_MAX:
        errors["body"] = gettext("Use at most %(n)d characters.", n=BODY_MAX)
    else:
        problem = _problem(kind, body, kind.required)
        if problem:
            errors["body"] = problem
    return errors


def render_wording(source: str, values: dict[str, str]) -> str:
    return _env.from_string(source).render(**values)


def _title(action: Action | Any, language: str) -> str:
    return str(action.title_en if language == "en" and action.title_en else action.title_nl)


def placeholder_values(kind_name: str, language: str, context: dict[str, Any]) -> dict[str, str]:
    """The placeholders' values from what the email job passes (the registration's objects)."""
    action = context["action"]
    household = context.get("household")
    values = {
        "name": str(context.get("name") or ""),
        "link": str(context.get("link") or ""),
        "action_title": _title(action, language),
        "address": household.address_line if household is not None else "",
        "contact_email": str(action.contact_email or ""),
        "expires_on": local_date(context.get("expires_at")),
        "reason": str(context.get("reason") or ""),
    }
    return {p: values[p] for p in EMAIL_KINDS[kind_name].placeholders}


def sample_values(kind_name: str, language: str, action: Action) -> dict[str, str]:
    """Made-up data for the preview, in ``language`` (call inside ``force_locale``)."""
    values = {
        "name": "Anna de Vries",
        "link": f"{current_app.config['BASE_URL']}/login/voorbeeld",
        "action_title": _title(action, language),
        "address": "Hoofdstraat 12, 3521 AB Utrecht",
        "contact_email": action.contact_email,
        "expires_on": local_date(utcnow() + timedelta(days=5)),
        "reason": gettext("We are moving house."),
    }
    return {p: values[p] for p in EMAIL_KINDS[kind_name].placeholders}


# A date no real email carries, so it can be found in the rendered default and replaced.
_SENTINEL_DATE = datetime(2099, 12, 31, 12, 0, tzinfo=UTC)


def default_wording(kind_name: str, language: str) -> tuple[str, str]:
    """The file template's subject and text in ``language``, with placeholders for the values,
    as the starting point for staff's own wording."""
    kind = EMAIL_KINDS[kind_name]
    tokens = {p: "{{ " + p + " }}" for p in PLACEHOLDER_HELP}
    context = {
        "name": tokens["name"],
        "link": tokens["link"],
        "reason": tokens["reason"],
        "expires_at": _SENTINEL_DATE,
        "action": SimpleNamespace(
            title_nl=tokens["action_title"],
            title_en=tokens["action_title"],
            contact_email=tokens["contact_email"],
        ),
        "household": SimpleNamespace(address_line=tokens["address"]),
        "registration": None,
    }
    with force_locale(language):
        subject = render_template(f"email/{kind.name}.subject.txt", **context)
        body = render_template(f"email/{kind.name}.txt", **context)
        date_text = local_date(_SENTINEL_DATE)
    subject = " ".join(subject.split()).replace(date_text, tokens["expires_on"])
    body = body.strip().replace(date_text, tokens["expires_on"]) + "\n"
    return subject, body


def wording_of(action_id: int, kind_name: str, language: str) -> ActionEmailTemplate | None:
    return db.session.scalar(
        select(ActionEmailTemplate).where(
            ActionEmailTemplate.action_id == action_id,
            ActionEmailTemplate.kind == kind_name,
            ActionEmailTemplate.language == language,
        )
    )


def wordings_of(action_id: int) -> dict[tuple[str, str], ActionEmailTemplate]:
    rows = db.session.scalars(
        select(ActionEmailTemplate).where(ActionEmailTemplate.action_id == action_id)
    )
    return {(row.kind, row.language): row for row in rows}


def current_wording(action: Action, kind_name: str, language: str) -> tuple[str, str, bool]:
    """Subject, body and whether it is staff's own wording (else the default)."""
    own = wording_of(action.id, kind_name, language)
    if own is not None:
        return own.subject, own.body, True
    subject, body = default_wording(kind_name, language)
    return subject, body, False


def preview(
    action: Action, kind_name: str, language: str, subject: str, body: str
) -> tuple[str, str]:
    """Subject and text with sample data; the wording must have passed ``check_wording``."""
    with force_locale(language):
        values = sample_values(kind_name, language, action)
    return " ".join(render_wording(subject, values).split()), render_wording(body, values)


def save_wording(
    actor: User, action: Action, kind_name: str, language: str, subject: str, body: str
) -> ActionEmailTemplate:
    """Store staff's wording for one email in one language; refused (nothing stored) when bad."""
    errors = check_wording(kind_name, subject, body)
    if errors:
        raise WordingRefusedError(errors)
    body = body.replace("\r\n", "\n")
    row = wording_of(action.id, kind_name, language)
    before = {"subject": row.subject, "body": row.body} if row is not None else None
    if row is None:
        row = ActionEmailTemplate(action_id=action.id, kind=kind_name, language=language)
        db.session.add(row)
    row.subject = subject.strip()
    row.body = body
    row.updated_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        action.organisation_id,
        "action.email_wording_save",
        row,
        before=before,
        after={"kind": kind_name, "language": language, "subject": row.subject, "body": body},
    )
    db.session.commit()
    return row


def reset_wording(actor: User, action: Action, kind_name: str, language: str) -> bool:
    """Back to the default wording; False when there was no own wording."""
    row = wording_of(action.id, kind_name, language)
    if row is None:
        return False
    audit.record(
        actor,
        action.organisation_id,
        "action.email_wording_reset",
        row,
        before={"kind": kind_name, "language": language, "subject": row.subject, "body": row.body},
        after=None,
    )
    db.session.delete(row)
    db.session.commit()
    return True


def text_to_html(text: str) -> Markup:
    """Plain text as HTML paragraphs: escaped, line breaks kept, web addresses made links."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block))
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    # Safe: every piece of the text was escaped above; only our own tags are added.
    return Markup("\n".join(paragraphs))  # noqa: S704


@mail.own_wording.provide
def render_own_wording(
    action_id: int, kind_name: str, language: str, context: dict[str, Any]
) -> tuple[str, str, str] | None:
    """Subject, text and HTML from staff's wording, or None to use the default templates.

    Provided to ``core.mail`` (its ``own_wording`` hook), which calls it inside ``force_locale(language)``. A wording that fails to render
    (it was checked when stored, so this means a bug) falls back to the default: a resident gets
    a correct default email rather than a broken one.
    """
    if kind_name not in EMAIL_KINDS:
        return None
    row = wording_of(action_id, kind_name, language)
    if row is None:
        return None
    try:
        values = placeholder_values(kind_name, language, context)
        subject = " ".join(render_wording(row.subject, values).split())
        text = render_wording(row.body, values)
    except (TemplateError, KeyError, AttributeError):
        log.exception(
            "own wording failed, default used action=%s kind=%s lang=%s",
            action_id,
            kind_name,
            language,
        )
        return None
    html = render_template("email/_own_wording.html", subject=subject, body_html=text_to_html(text))
    return subject, text, html
