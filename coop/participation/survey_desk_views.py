"""The staff's survey pages under /desk/participation: writing a survey and its questions,
opening and closing it, its results and the export of its open answers.

The routes belong to ``desk_views.bp``; ``coop.create_app`` imports this module before it
registers the blueprint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from werkzeug.wrappers import Response as Redirect

from coop.accounts.permissions import staff_required
from coop.core import exports
from coop.core.authz import require
from coop.core.charts import Chart, Datum
from coop.core.web import localized
from coop.participation import surveys
from coop.participation.desk_forms import QuestionForm, SurveyForm
from coop.participation.desk_views import _organisation_neighbourhoods, bp
from coop.participation.forms import ButtonForm
from coop.participation.models import (
    QuestionKind,
    SurveyStatus,
)
from coop.participation.services import SMALL_CELL, ParticipationError
from coop.participation.views import _count, _language, _percent, _survey, message
from coop.registrations.desk_services import OWNERSHIP_LABELS
from coop.registrations.models import Ownership


@bp.route("/surveys/new", methods=["GET", "POST"])
@staff_required
def create_survey() -> Any:
    form = SurveyForm()
    options = _organisation_neighbourhoods()
    form.set_neighbourhoods(options, optional=False)
    if form.validate_on_submit():
        chosen = next((n for n in options if n.id == form.neighbourhood_id()), None)
        require(current_user, chosen, "manage")
        assert chosen is not None
        item = surveys.create_survey(
            current_user,
            chosen,
            surveys.SurveyDetails(
                title_nl=form.title_nl.data,
                title_en=form.title_en.data or "",
                intro_nl=form.intro_nl.data or "",
                intro_en=form.intro_en.data or "",
            ),
        )
        flash(gettext("The survey is saved as a draft. Add its questions."), "success")
        return redirect(url_for("participation_desk.survey", survey_id=item.id))
    return render_template(
        "participation/desk/survey_form.html", form=form, has_neighbourhoods=bool(options)
    )


def _survey_charts(
    result: surveys.SurveyResults,
) -> list[tuple[surveys.QuestionResult, Chart | None]]:
    english = _language() == "en"
    charts: list[tuple[surveys.QuestionResult, Chart | None]] = []
    for index, question_result in enumerate(result.questions):
        question = question_result.question
        if question.kind is QuestionKind.OPEN:
            charts.append((question_result, None))
            continue
        title = localized(question, "text")
        data = tuple(
            Datum(
                (en or nl) if english else nl,
                None if cell.hidden else cell.count,
                gettext("fewer than 5") if cell.hidden else _count(cell.count),
            )
            for (nl, en), cell in zip(question_result.labels, question_result.cells, strict=True)
        )
        charts.append(
            (
                question_result,
                Chart(
                    id=f"chart-q{index + 1}",
                    title=title,
                    description=gettext(
                        "%(title)s. The same figures are in the table next to this chart.",
                        title=title,
                    ),
                    label_heading=gettext("Answer"),
                    value_heading=gettext("Households"),
                    data=data,
                    empty_text=gettext("No answers yet."),
                ),
            )
        )
    return charts


def _reach_chart(chart_id: str, title: str, heading: str, rows: list[tuple[str, Any]]) -> Chart:
    return Chart(
        id=chart_id,
        title=title,
        description=gettext(
            "%(title)s. The same figures are in the table next to this chart.", title=title
        ),
        label_heading=heading,
        value_heading=gettext("Response rate"),
        extra_headings=(gettext("Responses"), gettext("Households")),
        data=tuple(
            Datum(
                label,
                None if cell.rate is None else cell.rate * 100,
                gettext("fewer than 5") if cell.hidden else _percent(cell.rate),
                (
                    gettext("fewer than 5") if cell.hidden else _count(cell.count),
                    gettext("unknown") if cell.denominator is None else _count(cell.denominator),
                ),
            )
            for label, cell in rows
        ),
        scale_max=100,
    )


@bp.get("/surveys/<int:survey_id>", endpoint="survey")
@staff_required
def survey_detail(survey_id: int) -> str:
    return _render_desk_survey(_survey(survey_id, "manage"), QuestionForm(formdata=None))


def _render_desk_survey(item: Any, question_form: QuestionForm, problem: str | None = None) -> str:
    result = surveys.results(item) if item.status is not SurveyStatus.DRAFT else None
    reach: list[Chart] = []
    if result is not None and result.shown:
        reach = [
            _reach_chart(
                "chart-reach-pc4",
                gettext("Response rate per postcode area"),
                gettext("Postcode area"),
                [(r.label, r.cell) for r in result.by_pc4],
            ),
            _reach_chart(
                "chart-reach-ownership",
                gettext("Response rate per ownership type"),
                gettext("Ownership"),
                [(str(OWNERSHIP_LABELS[Ownership(r.label)]), r.cell) for r in result.by_ownership],
            ),
        ]
    return render_template(
        "participation/desk/survey.html",
        survey=item,
        question_form=question_form,
        button=ButtonForm(),
        problem=problem,
        result=result,
        charts=_survey_charts(result) if result is not None and result.shown else [],
        reach=reach,
        responses=surveys.response_count(item),
        small=SMALL_CELL,
    )


@bp.post("/surveys/<int:survey_id>/questions")
@staff_required
def add_question(survey_id: int) -> Any:
    item = _survey(survey_id, "manage")
    form = QuestionForm()
    problem = None
    if form.validate_on_submit():
        try:
            surveys.add_question(
                current_user,
                item,
                kind=QuestionKind(form.kind.data),
                text_nl=form.text_nl.data,
                text_en=form.text_en.data or "",
                required=bool(form.required.data),
                options=form.option_pairs(),
            )
        except ParticipationError as exc:
            problem = message(exc)
        else:
            flash(gettext("The question is added."), "success")
            return redirect(url_for("participation_desk.survey", survey_id=item.id))
    return _render_desk_survey(item, form, problem)


def _survey_step(survey_id: int, step: Callable[..., None], done: str) -> Redirect:
    item = _survey(survey_id, "manage")
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        step(current_user, item)
    except ParticipationError as exc:
        flash(message(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("participation_desk.survey", survey_id=item.id))


@bp.post("/surveys/<int:survey_id>/open")
@staff_required
def open_survey(survey_id: int) -> Redirect:
    return _survey_step(survey_id, surveys.open_survey, gettext("The survey is open for answers."))


@bp.post("/surveys/<int:survey_id>/close")
@staff_required
def close_survey(survey_id: int) -> Redirect:
    return _survey_step(survey_id, surveys.close_survey, gettext("The survey is closed."))


@bp.get("/surveys/<int:survey_id>/open-answers/<fmt>")
@staff_required
def export_open_answers(survey_id: int, fmt: str) -> Any:
    item = _survey(survey_id, "manage")
    if fmt not in exports.FORMATS:
        abort(404)
    try:
        rows = list(surveys.open_answers(item))
    except ParticipationError as exc:
        flash(message(exc), "error")
        return redirect(url_for("participation_desk.survey", survey_id=item.id))
    table = exports.Table(
        title=gettext("Open answers"),
        headers=[gettext("Question"), gettext("Answer")],
        rows=rows,
    )
    return exports.response(table, fmt, stem=f"survey-{item.id}-open-answers")
