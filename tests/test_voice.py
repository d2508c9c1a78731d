"""One voice: every Dutch text says "je", never "u" – to residents on every page and in every
email (the work phase, payments and the emails an installer's action sends included), and to
installers and desk staff too, whose pages already said "je" in most places.

The rule is written in the header of ``coop/translations/nl/LC_MESSAGES/messages.po`` (which
``make extract-messages`` keeps). Texts the desk writes itself (an action's own wording, a
survey's questions) are the desk's and are not checked here.
"""

from __future__ import annotations

import re

import pytest
from babel.messages.catalog import Catalog

from tests.test_translations import NL_PO, _extract_fresh, _forms, _read

# The formal second person as whole words ("U-waarde", the insulation value, is another word).
_FORMAL = re.compile(r"(?<![\w-])(?:u|uw|U|Uw|UW)(?![\w-])")


@pytest.fixture(scope="module")
def source_texts(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return _extract_fresh(tmp_path_factory.mktemp("pot"))


def test_the_formal_words_are_found() -> None:
    found = [bool(_FORMAL.search(t)) for t in ("Uw offerte", "Dank u wel", "voor u.", "(uw)")]
    assert found == [True, True, True, True]
    missed = ("Je offerte", "uitvoeren", "U-waarde", "Uitnodiging", "bureau", "nu")
    assert not any(_FORMAL.search(t) for t in missed)


def test_every_dutch_text_says_je_not_u(source_texts: Catalog) -> None:
    dutch = _read(NL_PO, "nl")
    formal: list[str] = []
    for message in source_texts:
        if not message.id:
            continue
        entry = dutch.get(message.id, context=message.context)
        if entry is None:
            continue  # test_translations reports it as missing
        for _source, translated in _forms(entry):
            if _FORMAL.search(translated):
                where = sorted({path for path, _ in message.locations})
                formal.append(f"{where}: {translated!r}")
                break
    assert len(source_texts) > 300
    assert not formal, (
        'texts in the u-form; coop says "je" to everyone (see the header of messages.po):\n'
        + "\n".join(formal)
    )
