"""The catalogue is looked up once per request and language (``coop.extensions``), not for every
text; a switch of language within the request (an email in the resident's language) still
translates in that language, and back."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_babel import Domain, force_locale, gettext, refresh

from tests import factories


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The catalogue lookups Flask-Babel's own domain makes (by locale)."""
    from flask_babel import get_locale

    seen: list[str] = []
    original = Domain.get_translations

    def counted(self: Domain) -> Any:
        seen.append(str(get_locale()))
        return original(self)

    monkeypatch.setattr(Domain, "get_translations", counted)
    return seen


def test_a_page_looks_its_catalogue_up_once(app: Flask, lookups: list[str]) -> None:
    with app.app_context():
        url = f"/actions/{factories.action().slug}/register"
    page = app.test_client().get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'name="consent"' in page.get_data(as_text=True)  # the whole form, in English
    assert lookups == ["en"]


def test_force_locale_and_refresh_switch_language_within_a_request(
    app: Flask, lookups: list[str]
) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert gettext("Choose at least one measure.") == "Choose at least one measure."
        with force_locale("nl"):
            assert gettext("Choose at least one measure.") == "Kies minstens één maatregel."
            assert gettext("Choose at least one measure.") == "Kies minstens één maatregel."
        assert gettext("Choose at least one measure.") == "Choose at least one measure."
        refresh()
        assert gettext("Choose at least one measure.") == "Choose at least one measure."
    # English, Dutch inside force_locale, English again (kept from before), after refresh.
    assert lookups == ["en", "nl", "en"]
