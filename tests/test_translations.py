"""The Dutch catalogue is complete and used: every text in code and templates has a Dutch
translation, pages are Dutch by default and English on request, emails go out in the
recipient's language.

When this fails after you added or changed a text: run ``make extract-messages``, translate
the new entries in ``coop/translations/nl/LC_MESSAGES/messages.po`` (plural entries in the
English catalogue need both forms too) and run ``make translations``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from flask import Flask
from flask.testing import FlaskClient

from tests import factories

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "coop" / "translations"
NL_PO = TRANSLATIONS / "nl" / "LC_MESSAGES" / "messages.po"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"

# A %-placeholder as Python and Jinja's newstyle gettext format it: %(name)s, %d, %%.
_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[#0\- +]*(?:\d+)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def _makefile_keywords() -> list[str]:
    """The extra ``-k`` keywords of ``make extract-messages``, so this test and the Makefile
    cannot disagree on which calls hold texts."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "pybabel extract" in line:
            words = shlex.split(line)
            return [words[i + 1] for i, word in enumerate(words) if word == "-k"]
    raise AssertionError("the Makefile has no pybabel extract line")


def _extract_fresh(tmp_path: Path) -> Catalog:
    """Extract the texts of the current tree, as ``make extract-messages`` does, via a .pot."""
    keywords = dict(DEFAULT_KEYWORDS)
    keywords.update(dict.fromkeys(_makefile_keywords()))
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    template = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    pot = tmp_path / "messages.pot"
    with pot.open("wb") as out:
        write_po(out, template, sort_output=True)
    with pot.open("rb") as source:
        return read_po(source)


def _read(po: Path, locale: str) -> Catalog:
    with po.open("rb") as source:
        return read_po(source, locale=locale)


def _forms(message: Message) -> list[tuple[str, str]]:
    """(source text, translation) per form; plural form 0 pairs with the singular msgid."""
    ids = list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]
    strings = (
        list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]
    )
    return [(ids[min(i, len(ids) - 1)], string or "") for i, string in enumerate(strings)]


def _placeholder_problem(source: str, translated: str) -> str | None:
    """Templates format every text with ``%``; a placeholder renamed, lost or a stray ``%``
    breaks the page or the email, so they must match the English exactly."""
    if sorted(_PLACEHOLDER.findall(translated)) != sorted(_PLACEHOLDER.findall(source)):
        return f"placeholders {sorted(_PLACEHOLDER.findall(source))} expected"
    if translated.count("%") != source.count("%"):
        return "a % that is not a placeholder (write %% for a percent sign)"
    return None


class _AnyValue(dict[str, object]):
    """Every named placeholder gets a value, so only a broken format string fails."""

    def __missing__(self, key: str) -> object:
        return 1


def _formats(text: str) -> bool:
    try:
        text % _AnyValue()
    except (TypeError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def source_texts(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog = _extract_fresh(tmp_path_factory.mktemp("pot"))
    assert len(catalog) > 100, "extraction found almost no texts: is babel.cfg still right?"
    return catalog


def test_every_text_has_a_dutch_translation(source_texts: Catalog) -> None:
    dutch = _read(NL_PO, "nl")
    assert dutch.num_plurals == 2
    problems: list[str] = []
    for message in source_texts:
        if not message.id:
            continue
        entry = dutch.get(message.id, context=message.context)
        key = message.id if isinstance(message.id, str) else message.id[0]
        if entry is None:
            problems.append(f"missing: {key!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy (needs review): {key!r}")
        forms = _forms(entry)
        if message.pluralizable and len(forms) != dutch.num_plurals:
            problems.append(f"needs {dutch.num_plurals} plural forms: {key!r}")
        for source, translated in forms:
            if not translated.strip():
                problems.append(f"not translated: {key!r}")
                break
            problem = _placeholder_problem(source, translated)
            if problem:
                problems.append(f"{problem}: {key!r} -> {translated!r}")
    problems += [f"babel check: {m.id!r}: {errors}" for m, errors in dutch.check()]
    assert not problems, "Dutch catalogue incomplete:\n" + "\n".join(problems)


def test_english_catalogue_does_not_blank_out_plurals() -> None:
    # An empty singular msgstr falls back to the msgid, but a compiled plural entry with empty
    # forms is used as is: the page would show nothing where "3 households" should be. (A plural
    # text not in the catalogue at all falls back to the msgids, which is fine.)
    english = _read(EN_PO, "en")
    assert english.num_plurals == 2
    problems: list[str] = []
    for message in english:
        if not message.id:
            continue
        forms = _forms(message)
        if message.pluralizable and not all(translated.strip() for _, translated in forms):
            problems.append(f"plural without both forms: {message.id[0]!r}")
        for source, translated in forms:
            problem = translated and _placeholder_problem(source, translated)
            if problem:
                problems.append(f"{problem}: {message.id!r} -> {translated!r}")
    assert not problems, "English catalogue:\n" + "\n".join(problems)


def test_texts_in_templates_survive_jinja_formatting(source_texts: Catalog) -> None:
    # Jinja's newstyle gettext runs every template text through %, with or without variables:
    # a literal "50%" or "{% if %}" inside _() makes the page fail with a TypeError.
    broken = [
        f"{message.locations[0][0]}: {text!r}"
        for message in source_texts
        if message.id and any(path.startswith("templates") for path, _ in message.locations)
        for text in ([message.id] if isinstance(message.id, str) else message.id)
        if not _formats(text)
    ]
    assert not broken, "write %% for a literal % in these template texts:\n" + "\n".join(broken)


# --- the catalogues at work ---------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled_catalogues() -> Iterator[None]:
    """The app reads the .mo files, which are generated and git-ignored. Compile those older
    than their .po, as ``make translations`` does, so the pages below show the current texts."""
    recompiled = False
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        catalog = _read(po, po.parts[-3])
        partial = mo.with_name(f".{mo.name}.{os.getpid()}")
        with partial.open("wb") as out:
            write_mo(out, catalog, use_fuzzy=True)
        os.replace(partial, mo)  # atomic: a test run next door never reads half a file
        recompiled = True
    if recompiled:
        # Flask-Babel caches loaded catalogues per process; forget any stale one.
        from coop.extensions import babel

        babel.domain_instance.cache.clear()
    yield


@pytest.mark.usefixtures("compiled_catalogues")
def test_pages_are_dutch_by_default_and_english_on_request(client: FlaskClient) -> None:
    home = client.get("/")
    page = home.get_data(as_text=True)
    assert home.status_code == 200
    assert '<html lang="nl">' in page
    assert home.headers["Content-Language"] == "nl"
    assert "Samen met je buurt isoleren en overstappen op een warmtepomp" in page
    assert "Direct naar de inhoud" in page
    assert "Insulate and switch to a heat pump" not in page
    # A form label from Python (lazy_gettext) is translated when the page renders, too.
    login = client.get("/login").get_data(as_text=True)
    assert ">E-mailadres</label>" in login

    switch = client.get("/language/en?next=/")
    assert switch.status_code == 302
    assert switch.headers["Location"].endswith("/")

    home = client.get("/")
    page = home.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert home.headers["Content-Language"] == "en"
    assert "Insulate and switch to a heat pump, together with your neighbourhood" in page
    assert "Samen met je buurt isoleren" not in page
    login = client.get("/login").get_data(as_text=True)
    assert ">Email address</label>" in login


@pytest.mark.usefixtures("compiled_catalogues")
def test_plural_texts_follow_the_count_in_both_languages(app: Flask) -> None:
    # The English catalogue's plural entries must not blank out; the Dutch ones pick the form.
    from flask import render_template_string
    from flask_babel import force_locale

    template = '{{ ngettext("piece", "pieces", n) }}'

    def render(language: str, n: int) -> str:
        with force_locale(language):
            return render_template_string(template, n=n)

    with app.test_request_context():
        rendered = {(language, n): render(language, n) for language in ("nl", "en") for n in (1, 3)}
    assert rendered == {
        ("nl", 1): "stuk",
        ("nl", 3): "stuks",
        ("en", 1): "piece",
        ("en", 3): "pieces",
    }


@pytest.mark.usefixtures("compiled_catalogues")
def test_email_is_written_in_the_recipients_language(app: Flask) -> None:
    from coop.core.mail import render_email

    with app.test_request_context():
        action = factories.action()
        context: dict[str, Any] = {
            "name": "Anna de Vries",
            "household": SimpleNamespace(address_line="Hondsrug 12-A, 3524 BA Utrecht"),
            "action": action,
            "link": "http://localhost/login/token",
        }
        nl_subject, nl_text, nl_html = render_email("confirm_registration", "nl", **context)
        en_subject, en_text, en_html = render_email("confirm_registration", "en", **context)

    assert nl_text.startswith("Beste Anna de Vries,")
    assert "Bevestig je aanmelding" in nl_text
    assert nl_subject == "Bevestig je aanmelding voor Samen isoleren"
    assert '<html lang="nl">' in nl_html and "<p>Beste Anna de Vries,</p>" in nl_html
    assert "Hello" not in nl_text + nl_html

    assert en_text.startswith("Hello Anna de Vries,")
    assert en_subject == "Confirm your registration for Insulating together"
    assert '<html lang="en">' in en_html and "<p>Hello Anna de Vries,</p>" in en_html
    assert "Beste" not in en_text + en_html

    assert nl_text != en_text and nl_html != en_html
    # The link is the same in both: only the words change.
    assert "http://localhost/login/token" in nl_text and "http://localhost/login/token" in en_text
