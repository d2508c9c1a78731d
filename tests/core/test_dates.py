"""One date format per language, everywhere: the day first and the month in words, Dutch
"13 januari 2027", English "13 January 2027" (never "January 13, 2027"), on pages and in
emails alike."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale

from coop.core.formatting import local_date, local_datetime
from coop.extensions import db
from tests import factories

# A month name followed by a day: the English order we do not use.
_MONTH_FIRST = re.compile(
    r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\.? \d{1,2}\b"
)


def test_the_helpers_put_the_day_first_in_both_languages(app: Flask) -> None:
    moment = datetime(2027, 1, 13, 9, 5, tzinfo=UTC)  # 10:05 in Amsterdam
    with app.test_request_context():
        formatted = {}
        for language in ("nl", "en"):
            with force_locale(language):
                formatted[language] = (
                    local_date(date(2026, 11, 14)),
                    local_date(moment, "medium"),
                    local_datetime(moment, "long"),
                )
    assert formatted["nl"] == ("14 november 2026", "13 jan 2027", "13 januari 2027, 10:05")
    assert formatted["en"] == ("14 November 2026", "13 Jan 2027", "13 January 2027, 10:05")


@pytest.mark.parametrize(
    ("language", "closes", "milestone"),
    [
        ("nl", "13 januari 2027, 10:00", "14 februari 2027"),
        ("en", "13 January 2027, 10:00", "14 February 2027"),
    ],
)
def test_the_action_page_writes_dates_one_way(
    app: Flask, client: FlaskClient, language: str, closes: str, milestone: str
) -> None:
    with app.app_context():
        action = factories.action()
        action.registration_closes_at = datetime(2027, 1, 13, 9, 0, tzinfo=UTC)
        action.milestones[0].on_date = date(2027, 2, 14)
        db.session.commit()
        slug = action.slug
    client.get(f"/language/{language}")
    page = client.get(f"/actions/{slug}").get_data(as_text=True)
    assert closes in page
    assert milestone in page
    assert not _MONTH_FIRST.search(page), _MONTH_FIRST.search(page)


@pytest.mark.parametrize(
    ("language", "expected"), [("nl", "14 november 2026"), ("en", "14 November 2026")]
)
def test_an_email_writes_dates_one_way(app: Flask, language: str, expected: str) -> None:
    from coop.core.mail import render_email

    with app.test_request_context():
        subject, text, html = render_email(
            "quote_reminder",
            language,
            name="Anna",
            installer=SimpleNamespace(company_name="Dakwerk BV"),
            measure=SimpleNamespace(name_nl="spouwmuurisolatie", name_en="cavity wall insulation"),
            quote=SimpleNamespace(total_cents=123450, valid_until=date(2026, 11, 14)),
            action=factories.action(),
            link="http://localhost/my",
        )
    assert subject.endswith(expected)
    assert expected in text and expected in html
    assert not _MONTH_FIRST.search(subject + text + html)
