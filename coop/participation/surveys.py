"""Surveys: staff build a short survey for a neighbourhood, open and close it; each household
(by address) answers once and can change its answers until the survey closes; staff read the
results, how representative they are, and export the open answers.

Published figures follow one rule: a cell about 1 to 4 households shows "fewer than 5", and
when that one hidden cell could be worked out from the total, the next smallest is hidden too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from coop.accounts.models import User
from coop.actions.models import Neighbourhood
from coop.core import audit, jobs
from coop.core.time import utcnow
from coop.extensions import db
from coop.participation.models import (
    SCALE_VALUES,
    CountDimension,
    HouseholdCount,
    QuestionKind,
    Survey,
    SurveyAnswer,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
    SurveyStatus,
)
from coop.participation.services import (
    SMALL_CELL,
    HouseholdAddress,
    ParticipationError,
    is_small,
)
from coop.registrations.models import Ownership

log = logging.getLogger(__name__)

MAX_OPTIONS = 12
MAX_QUESTIONS = 30
CHOICE_KINDS = (QuestionKind.SINGLE, QuestionKind.MULTIPLE)

# One answer as the form gives it: an option id, option ids, a scale value, a text, or nothing.
AnswerValue = int | list[int] | str | None


@dataclass
class SurveyDetails:
    title_nl: str
    title_en: str
    intro_nl: str
    intro_en: str


def create_survey(actor: User, neighbourhood: Neighbourhood, details: SurveyDetails) -> Survey:
    survey = Survey(
        organisation_id=neighbourhood.organisation_id,
        neighbourhood_id=neighbourhood.id,
        **details.__dict__,
    )
    db.session.add(survey)
    db.session.flush()
    audit.record(
        actor, survey.organisation_id, "survey.create", survey, after={"title": survey.title_nl}
    )
    db.session.commit()
    return survey


def get_survey(survey_id: int) -> Survey | None:
    return db.session.scalar(
        select(Survey)
        .where(Survey.id == survey_id)
        .options(selectinload(Survey.questions).selectinload(SurveyQuestion.options))
    )


def surveys_of(organisation_id: int) -> list[Survey]:
    return list(
        db.session.scalars(
            select(Survey)
            .where(Survey.organisation_id == organisation_id)
            .order_by(Survey.created_at.desc(), Survey.id.desc())
        )
    )


def open_surveys(neighbourhood_id: int) -> list[Survey]:
    return list(
        db.session.scalars(
            select(Survey)
            .where(Survey.neighbourhood_id == neighbourhood_id, Survey.status == SurveyStatus.OPEN)
            .order_by(Survey.opened_at)
        )
    )


def add_question(
    actor: User,
    survey: Survey,
    *,
    kind: QuestionKind,
    text_nl: str,
    text_en: str,
    required: bool,
    options: Sequence[tuple[str, str]] = (),
) -> SurveyQuestion:
    """A question at the end; choice questions need 2 to 12 options (Dutch, English)."""
    if survey.status is not SurveyStatus.DRAFT:
        raise ParticipationError("survey_not_draft")
    if len(survey.questions) >= MAX_QUESTIONS:
        raise ParticipationError("too_many_questions")
    if kind in CHOICE_KINDS and not 2 <= len(options) <= MAX_OPTIONS:
        raise ParticipationError("options_needed")
    question = SurveyQuestion(
        kind=kind,
        text_nl=text_nl,
        text_en=text_en,
        required=required,
        position=len(survey.questions),
    )
    if kind in CHOICE_KINDS:
        question.options = [
            SurveyOption(position=i, text_nl=nl, text_en=en) for i, (nl, en) in enumerate(options)
        ]
    survey.questions.append(question)
    db.session.flush()
    audit.record(
        actor, survey.organisation_id, "survey.question_add", survey, after={"question": text_nl}
    )
    db.session.commit()
    return question


def open_survey(actor: User, survey: Survey, now: datetime | None = None) -> None:
    if survey.status is not SurveyStatus.DRAFT:
        raise ParticipationError("survey_not_draft")
    if not survey.questions:
        raise ParticipationError("no_questions")
    survey.status = SurveyStatus.OPEN
    survey.opened_at = now or utcnow()
    audit.record(actor, survey.organisation_id, "survey.open", survey)
    db.session.commit()


def close_survey(actor: User, survey: Survey, now: datetime | None = None) -> None:
    if survey.status is not SurveyStatus.OPEN:
        raise ParticipationError("survey_not_open")
    survey.status = SurveyStatus.CLOSED
    survey.closed_at = now or utcnow()
    audit.record(actor, survey.organisation_id, "survey.close", survey)
    db.session.commit()


# --- answering -------------------------------------------------------------------------------


@dataclass
class Respondent:
    address: HouseholdAddress
    ownership: Ownership
    name: str
    email: str
    language: str
    contact_opt_in: bool
    consent: bool


def find_response(survey: Survey, address: HouseholdAddress) -> SurveyResponse | None:
    return db.session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.survey_id == survey.id,
            SurveyResponse.postcode == address.postcode,
            SurveyResponse.house_number == address.house_number,
            SurveyResponse.house_number_addition == address.addition,
        )
    )


def get_response(response_id: int) -> SurveyResponse | None:
    return db.session.get(SurveyResponse, response_id)


def _answer_rows(survey: Survey, answers: dict[int, AnswerValue]) -> list[SurveyAnswer]:
    """Checks every answer against its question; the form did too, this is the rule."""
    rows: list[SurveyAnswer] = []
    for question in survey.questions:
        value = answers.get(question.id)
        if value in (None, "", []):
            if question.required:
                raise ParticipationError("answer_missing", question_id=question.id)
            continue
        options = {o.id for o in question.options}
        if question.kind is QuestionKind.SINGLE:
            if not isinstance(value, int) or value not in options:
                raise ParticipationError("answer_invalid", question_id=question.id)
            rows.append(SurveyAnswer(question_id=question.id, option_id=value))
        elif question.kind is QuestionKind.MULTIPLE:
            chosen = value if isinstance(value, list) else []
            if not chosen or not set(chosen) <= options:
                raise ParticipationError("answer_invalid", question_id=question.id)
            rows += [
                SurveyAnswer(question_id=question.id, option_id=o) for o in sorted(set(chosen))
            ]
        elif question.kind is QuestionKind.SCALE:
            if not isinstance(value, int) or value not in SCALE_VALUES:
                raise ParticipationError("answer_invalid", question_id=question.id)
            rows.append(SurveyAnswer(question_id=question.id, scale_value=value))
        else:
            if not isinstance(value, str):
                raise ParticipationError("answer_invalid", question_id=question.id)
            rows.append(SurveyAnswer(question_id=question.id, text=value[:2000]))
    return rows


def respond(
    survey: Survey,
    respondent: Respondent,
    answers: dict[int, AnswerValue],
    now: datetime | None = None,
) -> SurveyResponse:
    """Store a household's answers and email a link to change them. A second response from
    the same address raises ``already_responded`` (with the first) and stores nothing."""
    now = now or utcnow()
    if survey.status is not SurveyStatus.OPEN:
        raise ParticipationError("survey_not_open")
    if not respondent.consent:
        raise ParticipationError("no_consent")
    if respondent.address.pc4 not in survey.neighbourhood.pc4_list:
        raise ParticipationError("outside_neighbourhood")
    existing = find_response(survey, respondent.address)
    if existing is not None:
        raise ParticipationError("already_responded", response=existing)
    rows = _answer_rows(survey, answers)
    address = respondent.address
    response = SurveyResponse(
        survey_id=survey.id,
        postcode=address.postcode,
        pc4=address.pc4,
        house_number=address.house_number,
        house_number_addition=address.addition,
        street=address.street,
        ownership=respondent.ownership,
        name=respondent.name,
        email=respondent.email.strip().lower(),
        language=respondent.language,
        contact_opt_in=respondent.contact_opt_in,
        consent_at=now,
        created_at=now,
        updated_at=now,
        answers=rows,
    )
    db.session.add(response)
    try:
        db.session.flush()
        jobs.enqueue(
            "participation.send_survey_link",
            f"survey-response:{response.id}",
            response_id=response.id,
        )
        db.session.commit()
    except IntegrityError:
        # Two people of one household at the same moment: the first one stored is the answer.
        db.session.rollback()
        raise ParticipationError(
            "already_responded", response=find_response(survey, respondent.address)
        ) from None
    log.info("survey response id=%s survey=%s", response.id, survey.id)
    return response


def update_response(
    response: SurveyResponse,
    answers: dict[int, AnswerValue],
    *,
    contact_opt_in: bool,
    now: datetime | None = None,
) -> None:
    """Change the answers (by the link from the email) while the survey is open."""
    survey = response.survey
    if survey.status is not SurveyStatus.OPEN:
        raise ParticipationError("survey_not_open")
    rows = _answer_rows(survey, answers)
    response.answers.clear()
    db.session.flush()
    response.answers.extend(rows)
    response.contact_opt_in = contact_opt_in
    response.updated_at = now or utcnow()
    db.session.commit()


def erase_response(response: SurveyResponse) -> None:
    """Part of erasing a person; the caller commits. The response is deleted with its answers
    rather than kept as anonymous answers, because:

    * the address is what makes it one response per household. Answers kept without it could
      not stop the same household from answering again, and the response rate and the figures
      per PC4 and ownership would count it twice; answers kept with it are not erased (an
      address is personal data).
    * what would remain is not reliably anonymous: open answers are free text that can name
      the writer, and PC4, ownership and the answers together can single out a household in
      the small groups the results are about.

    The results are computed from the stored responses each time (``results``, with the
    small-numbers rule), so afterwards they are exactly those of the households still taking
    part, as if this one had not answered. A job still queued for the response finds it gone.
    """
    db.session.delete(response)


def answers_of(response: SurveyResponse) -> dict[int, AnswerValue]:
    """The stored answers in the form's shape, to fill the form for a change."""
    values: dict[int, AnswerValue] = {}
    kinds = {q.id: q.kind for q in response.survey.questions}
    for answer in response.answers:
        kind = kinds.get(answer.question_id)
        if kind is QuestionKind.MULTIPLE:
            chosen = values.setdefault(answer.question_id, [])
            assert isinstance(chosen, list) and answer.option_id is not None
            chosen.append(answer.option_id)
        elif kind is QuestionKind.SINGLE:
            values[answer.question_id] = answer.option_id
        elif kind is QuestionKind.SCALE:
            values[answer.question_id] = answer.scale_value
        else:
            values[answer.question_id] = answer.text
    return values


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A count of households as it may be shown: ``hidden`` when it is about 1 to 4."""

    count: int
    hidden: bool = False
    denominator: int | None = None  # the households it is a share of, when known

    @property
    def rate(self) -> float | None:
        if self.hidden or not self.denominator:
            return None
        return self.count / self.denominator


def protect(counts: Sequence[int], total_shown: bool) -> list[Cell]:
    """Hide 1-4; where exactly one is hidden and the total is shown, hide the next smallest
    non-zero count too, so the hidden one cannot be worked out by subtraction."""
    cells = [Cell(c, is_small(c)) for c in counts]
    hidden = [i for i, c in enumerate(cells) if c.hidden]
    if total_shown and len(hidden) == 1:
        others = [(c.count, i) for i, c in enumerate(cells) if not c.hidden and c.count > 0]
        if others:
            _, index = min(others)
            cells[index] = Cell(cells[index].count, True)
    return cells


@dataclass
class QuestionResult:
    question: SurveyQuestion
    answered: int
    labels: list[tuple[str, str]]  # (Dutch, English) per row
    cells: list[Cell]
    open_answers: int = 0


@dataclass
class Representation:
    label: str  # a PC4, or an ownership value
    cell: Cell


@dataclass
class SurveyResults:
    survey: Survey
    responses: int
    shown: bool  # results appear from SMALL_CELL responses on
    questions: list[QuestionResult] = field(default_factory=list)
    by_pc4: list[Representation] = field(default_factory=list)
    by_ownership: list[Representation] = field(default_factory=list)
    households: int | None = None

    @property
    def response_rate(self) -> float | None:
        if not self.households or not self.shown:
            return None
        return self.responses / self.households


def response_count(survey: Survey) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.survey_id == survey.id)
        )
        or 0
    )


def household_counts(neighbourhood_id: int) -> dict[CountDimension, dict[str, int]]:
    found: dict[CountDimension, dict[str, int]] = {d: {} for d in CountDimension}
    for row in db.session.scalars(
        select(HouseholdCount).where(HouseholdCount.neighbourhood_id == neighbourhood_id)
    ):
        found[row.dimension][row.value] = row.households
    return found


def results(survey: Survey) -> SurveyResults:
    """Counts per option and scale value, and response rates per PC4 and ownership type; all
    by GROUP BY in the database."""
    total = response_count(survey)
    outcome = SurveyResults(survey, total, total >= SMALL_CELL)
    outcome.households = survey.neighbourhood.household_count or None
    if not outcome.shown:
        return outcome
    option_rows = db.session.execute(
        select(SurveyAnswer.question_id, SurveyAnswer.option_id, func.count())
        .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
        .where(SurveyResponse.survey_id == survey.id, SurveyAnswer.option_id.is_not(None))
        .group_by(SurveyAnswer.question_id, SurveyAnswer.option_id)
    ).all()
    scale_rows = db.session.execute(
        select(SurveyAnswer.question_id, SurveyAnswer.scale_value, func.count())
        .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
        .where(SurveyResponse.survey_id == survey.id, SurveyAnswer.scale_value.is_not(None))
        .group_by(SurveyAnswer.question_id, SurveyAnswer.scale_value)
    ).all()
    answered_rows = db.session.execute(
        select(SurveyAnswer.question_id, func.count(func.distinct(SurveyAnswer.response_id)))
        .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
        .where(SurveyResponse.survey_id == survey.id)
        .group_by(SurveyAnswer.question_id)
    ).all()
    per_option: dict[int, int] = {int(o): n for _, o, n in option_rows if o is not None}
    per_scale: dict[tuple[int, int], int] = {
        (q, int(v)): n for q, v, n in scale_rows if v is not None
    }
    answered = {q: int(n) for q, n in answered_rows}
    for question in survey.questions:
        n = answered.get(question.id, 0)
        if question.kind is QuestionKind.OPEN:
            outcome.questions.append(QuestionResult(question, n, [], [], open_answers=n))
            continue
        if question.kind is QuestionKind.SCALE:
            labels = [(str(v), str(v)) for v in SCALE_VALUES]
            counts = [per_scale.get((question.id, v), 0) for v in SCALE_VALUES]
        else:
            labels = [(o.text_nl, o.text_en) for o in question.options]
            counts = [per_option.get(o.id, 0) for o in question.options]
        # Single choice and scale add up to the number who answered: a hidden cell could be
        # derived from the others. Multiple choice does not add up.
        cells = protect(counts, total_shown=question.kind is not QuestionKind.MULTIPLE)
        outcome.questions.append(QuestionResult(question, n, labels, cells))
    _representation(survey, outcome)
    return outcome


def _representation(survey: Survey, outcome: SurveyResults) -> None:
    known = household_counts(survey.neighbourhood_id)
    pc4_rows = dict(
        db.session.execute(
            select(SurveyResponse.pc4, func.count())
            .where(SurveyResponse.survey_id == survey.id)
            .group_by(SurveyResponse.pc4)
        ).all()
    )
    ownership_rows = dict(
        db.session.execute(
            select(SurveyResponse.ownership, func.count())
            .where(SurveyResponse.survey_id == survey.id)
            .group_by(SurveyResponse.ownership)
        ).all()
    )
    pc4s = survey.neighbourhood.pc4_list
    pc4_cells = protect([int(pc4_rows.get(p, 0)) for p in pc4s], total_shown=True)
    outcome.by_pc4 = [
        Representation(p, Cell(c.count, c.hidden, known[CountDimension.PC4].get(p)))
        for p, c in zip(pc4s, pc4_cells, strict=True)
    ]
    owners = list(Ownership)
    ownership_cells = protect([int(ownership_rows.get(o, 0)) for o in owners], total_shown=True)
    outcome.by_ownership = [
        Representation(
            o.value, Cell(c.count, c.hidden, known[CountDimension.OWNERSHIP].get(o.value))
        )
        for o, c in zip(owners, ownership_cells, strict=True)
    ]


def open_answers(survey: Survey) -> Iterator[tuple[str, str]]:
    """(question, answer) for every open answer, sorted by question and text, with nothing that
    says whose answer it is (no address, no time); only from SMALL_CELL responses on."""
    if response_count(survey) < SMALL_CELL:
        raise ParticipationError("too_few_responses")
    questions = {q.id: q for q in survey.questions if q.kind is QuestionKind.OPEN}
    rows = db.session.execute(
        select(SurveyAnswer.question_id, SurveyAnswer.text)
        .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
        .where(
            SurveyResponse.survey_id == survey.id,
            SurveyAnswer.question_id.in_(list(questions)),
            SurveyAnswer.text.is_not(None),
        )
    ).all()
    grouped: dict[int, list[str]] = defaultdict(list)
    for question_id, text in rows:
        grouped[question_id].append(text or "")
    for question in survey.questions:
        for text in sorted(grouped.get(question.id, [])):
            yield question.text_nl, text
