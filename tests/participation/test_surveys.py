"""Surveys: one response per household (by address), changeable until the survey closes;
results never show fewer than five households in a cell; response rates per PC4 and ownership
type against the household counts; open answers exported without whose they are."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from coop.core import jobs
from coop.core.models import EmailLog
from coop.extensions import db
from coop.participation import neighbourhoods, surveys
from coop.participation.models import CountDimension, SurveyResponse
from coop.participation.services import HouseholdAddress, ParticipationError, link_token
from coop.registrations.models import Ownership
from tests import factories


def respondent(number: int, ownership: Ownership = Ownership.OWNER, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "address": HouseholdAddress(extra.pop("postcode", "3524 BA"), number, "", "Hondsrug"),
        "ownership": ownership,
        "name": "",
        "email": f"bewoner{number}@example.nl",
        "language": "nl",
        "contact_opt_in": False,
        "consent": True,
    }
    values.update(extra)
    return surveys.Respondent(**values)


def answers(survey: Any, choice: int = 0, scale: int = 4, text: str | None = None) -> dict:
    single, multiple, scale_q, open_q = survey.questions
    return {
        single.id: single.options[choice].id,
        multiple.id: [multiple.options[0].id],
        scale_q.id: scale,
        open_q.id: text,
    }


def test_one_response_per_household_changeable_until_closed(ctx: Flask) -> None:
    org = factories.organisation()
    survey = factories.survey(factories.neighbourhood(org))
    response = surveys.respond(survey, respondent(12), answers(survey, choice=0))
    with pytest.raises(ParticipationError) as second:
        surveys.respond(survey, respondent(12, email="partner@example.nl"), answers(survey, 2))
    assert second.value.code == "already_responded"
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 1

    surveys.update_response(response, answers(survey, choice=2), contact_opt_in=True)
    assert surveys.answers_of(response)[survey.questions[0].id] == survey.questions[0].options[2].id
    surveys.close_survey(factories.staff(org), survey)
    with pytest.raises(ParticipationError, match="survey_not_open"):
        surveys.update_response(response, answers(survey), contact_opt_in=False)
    jobs.dispatcher().run_pending()
    assert db.session.scalar(select(func.count()).select_from(EmailLog)) == 1  # the edit link


def test_answers_are_checked_against_the_questions(ctx: Flask) -> None:
    survey = factories.survey(factories.neighbourhood(factories.organisation()))
    single, multiple, scale_q, _ = survey.questions
    bad = answers(survey)
    bad[single.id] = multiple.options[0].id  # an option of another question
    with pytest.raises(ParticipationError, match="answer_invalid"):
        surveys.respond(survey, respondent(1), bad)
    missing = answers(survey)
    missing[scale_q.id] = None
    with pytest.raises(ParticipationError, match="answer_missing"):
        surveys.respond(survey, respondent(1), missing)
    with pytest.raises(ParticipationError, match="outside_neighbourhood"):
        surveys.respond(survey, respondent(1, postcode="1011 AB"), answers(survey))
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_results_never_show_fewer_than_five_households(ctx: Flask) -> None:
    org = factories.organisation()
    nb = factories.neighbourhood(org, pc4s="3524,3523", households=100)
    survey = factories.survey(nb)
    for number in range(1, 4):
        surveys.respond(survey, respondent(number), answers(survey, choice=0))
    assert not surveys.results(survey).shown  # three responses: nothing at all
    for number in range(4, 10):
        surveys.respond(
            survey, respondent(number, Ownership.CORPORATION_TENANT), answers(survey, 1)
        )
    surveys.respond(survey, respondent(10), answers(survey, choice=2))
    # 3 + 1 owners choose "good idea"/"rather not"; 6 tenants "don't know".
    result = surveys.results(survey)
    assert result.shown and result.responses == 10
    single = result.questions[0]
    counts = [(c.count, c.hidden) for c in single.cells]
    assert counts == [(3, True), (6, False), (1, True)]
    # One hidden cell next to a shown total is hidden together with the next smallest.
    assert [c.hidden for c in surveys.protect([3, 6, 8], total_shown=True)] == [True, True, False]
    assert [c.hidden for c in surveys.protect([3, 6, 8], total_shown=False)] == [True, False, False]


def test_four_households_are_a_small_cell_too(ctx: Flask) -> None:
    """The boundary: a cell of four is hidden (and four responses show nothing), five is shown."""
    org = factories.organisation()
    nb = factories.neighbourhood(org, pc4s="3524,3523", households=100)
    survey = factories.survey(nb)
    for number in range(1, 5):
        surveys.respond(survey, respondent(number), answers(survey, choice=0))
    assert not surveys.results(survey).shown  # four responses: nothing at all
    for number in range(5, 10):
        surveys.respond(survey, respondent(number), answers(survey, choice=1))
    for number in range(10, 16):
        surveys.respond(survey, respondent(number), answers(survey, choice=2))
    result = surveys.results(survey)
    assert result.shown and result.responses == 15
    counts = [(c.count, c.hidden) for c in result.questions[0].cells]
    # Four hidden; five hidden with it, else 15 - 5 - 6 would give the four away; six shown.
    assert counts == [(4, True), (5, True), (6, False)]
    assert [c.hidden for c in surveys.protect([4, 5, 6], total_shown=False)] == [True, False, False]
    assert [c.hidden for c in surveys.protect([5, 5, 6], total_shown=True)] == [False] * 3


def test_response_rates_per_pc4_and_ownership_against_household_counts(ctx: Flask) -> None:
    org = factories.organisation()
    nb = factories.neighbourhood(org, pc4s="3524,3523", households=100)
    neighbourhoods.save_household_counts(
        factories.staff(org),
        nb,
        {
            CountDimension.PC4: {"3524": 40, "3523": 60},
            CountDimension.OWNERSHIP: {"owner": 50, "corporation_tenant": 30},
        },
    )
    survey = factories.survey(nb)
    for number in range(1, 11):
        surveys.respond(survey, respondent(number), answers(survey))
    result = surveys.results(survey)
    by_pc4 = {r.label: r.cell for r in result.by_pc4}
    assert by_pc4["3524"].rate == pytest.approx(10 / 40)
    assert by_pc4["3523"].count == 0 and by_pc4["3523"].rate == 0.0  # a street not reached
    by_ownership = {r.label: r.cell for r in result.by_ownership}
    assert by_ownership["owner"].rate == pytest.approx(10 / 50)
    assert by_ownership["corporation_tenant"].rate == 0.0
    assert by_ownership["private_tenant"].denominator is None  # unknown, not zero
    assert result.response_rate == pytest.approx(0.1)


def test_open_answers_export_only_from_five_responses_and_without_addresses(
    ctx: Flask,
) -> None:
    survey = factories.survey(factories.neighbourhood(factories.organisation()))
    for number in range(1, 5):
        surveys.respond(survey, respondent(number), answers(survey, text=f"Idee {number}"))
    with pytest.raises(ParticipationError, match="too_few_responses"):
        list(surveys.open_answers(survey))
    surveys.respond(survey, respondent(5), answers(survey, text="=HYPERLINK(1)"))
    rows = list(surveys.open_answers(survey))
    assert len(rows) == 5
    assert all(len(row) == 2 for row in rows)  # question and answer, nothing else
    assert "Hondsrug" not in repr(rows)


def test_survey_through_the_page_twice_and_changed_by_the_link(client: Any, app: Flask) -> None:
    with app.test_request_context():
        survey = factories.survey(factories.neighbourhood(factories.organisation()))
        single, multiple, scale_q, open_q = survey.questions
        ids = (survey.id, single.id, single.options[1].id, multiple.id, multiple.options[0].id)
        scale_id, open_id = scale_q.id, open_q.id
    survey_id, single_id, option_id, multiple_id, multi_option = ids
    url = f"/surveys/{survey_id}"
    data = {
        f"q_{single_id}": str(option_id),
        f"q_{multiple_id}": str(multi_option),
        f"q_{scale_id}": "3",
        f"q_{open_id}": "Graag meer uitleg over de kosten.",
        "postcode": "3524 ba",
        "house_number": "7",
        "street": "Hondsrug",
        "ownership": "owner",
        "email": "jan@example.nl",
        "consent": "y",
    }
    empty = factories.post_form(client, url, {})
    assert empty.status_code == 200 and "Er is een probleem" in empty.get_data(as_text=True)
    bad_choice = factories.post_form(client, url, {**data, f"q_{single_id}": "99999"})
    assert bad_choice.status_code == 200
    assert factories.post_form(client, url, data).status_code == 302
    twice = factories.post_form(client, url, {**data, "email": "partner@example.nl"})
    assert "al ingevuld" in twice.get_data(as_text=True)
    with app.test_request_context():
        response = db.session.scalars(select(SurveyResponse)).one()
        link = f"/surveys/response/{link_token('response', response.id)}"
    page = client.get(link)
    assert page.status_code == 200 and "checked" in page.get_data(as_text=True)
    changed = factories.post_form(client, link, {**data, f"q_{scale_id}": "5"})
    assert changed.status_code == 302
    with app.app_context():
        response = db.session.scalars(select(SurveyResponse)).one()
        assert {a.scale_value for a in response.answers if a.scale_value} == {5}
        assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
