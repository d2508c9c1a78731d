"""The resident's own data export speaks the resident's language: one zip with the machine-
readable JSON and, next to it, a readable document with labels and readable values in Dutch or
English, never internal codes such as ``withdrawn`` or ``terraced``."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile

import pytest
from flask import Flask
from flask.testing import FlaskClient

from coop.actions.models import MeasureUnit
from coop.core.models import EmailStatus
from coop.extensions import db
from coop.participation.models import AmbassadorStatus, RsvpStatus
from coop.registrations.models import DwellingType, Ownership, RegistrationStatus
from coop.residents import services
from coop.residents.export import FIELD_LABELS
from tests import factories
from tests.login import sign_in

# Every code the export's JSON can hold as a value, and every key it uses.
CODES = {
    str(value)
    for enum in (
        RegistrationStatus,
        DwellingType,
        Ownership,
        MeasureUnit,
        RsvpStatus,
        AmbassadorStatus,
        EmailStatus,
    )
    for value in enum
}


def exported(app: Flask, client: FlaskClient, language: str) -> tuple[dict, str]:
    with app.app_context():
        act = factories.action()
        registration = factories.confirmed_registration(act, measures={"roof": 40})
        user = registration.user
        services.withdraw(registration, "We verhuizen.", actor=user)
        db.session.commit()
        user_id = user.id
        codes = CODES | {m.measure.code for m in act.measures} | {act.slug}
    client.get(f"/language/{language}")
    sign_in(client, user_id)
    response = client.get("/my/export")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert 'filename="coop-my-data.zip"' in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(archive.namelist()) == ["coop-my-data.html", "coop-my-data.json"]
    data = json.loads(archive.read("coop-my-data.json"))
    document = archive.read("coop-my-data.html").decode()
    # Each value the reader sees (the <dd>s): none is a code or a key of the JSON.
    values = [html.unescape(v).strip() for v in re.findall(r"<dd>(.*?)</dd>", document, re.S)]
    headings = [html.unescape(h) for h in re.findall(r"<h\d>(.*?)</h\d>", document)]
    labels = [html.unescape(d) for d in re.findall(r"<dt>(.*?)</dt>", document)]
    leaked = [v for v in values + headings + labels if v in codes or v in FIELD_LABELS]
    assert not leaked, leaked
    assert all(values), "a field without a value"
    assert f'<html lang="{language}">' in document
    return data, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", document)).split())


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "nl",
            ["Je aanmeldingen", "Afgemeld", "Tussenwoning", "Eigenaar-bewoner", "Dakisolatie"],
        ),
        ("en", ["Your registrations", "Withdrawn", "Terraced house", "Owner-occupier"]),
    ],
)
def test_the_export_has_a_readable_document_in_the_residents_language(
    app: Flask, client: FlaskClient, language: str, words: list[str]
) -> None:
    data, text = exported(app, client, language)
    # The machine-readable part keeps its codes.
    [registration] = data["registrations"]
    assert registration["status"] == "withdrawn"
    assert registration["dwelling"]["type"] == "terraced"
    for word in words:
        assert word in text, word
    for code in ("withdrawn", "terraced", "pending_confirmation", "owner", "roof", "m2"):
        assert not re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text), code
    # Dates as the language writes them: "5 december 2026, 01:02" / "5 December 2026, 01:02".
    month = r"[a-z]+" if language == "nl" else r"[A-Z][a-z]+"
    assert re.search(rf"\b\d{{1,2}} {month} \d{{4}}, \d\d:\d\d\b", text)
    assert "We verhuizen." in text
