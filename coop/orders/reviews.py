"""The residents' reviews of installers: rating later, and reading them anonymised.

The rating form promises that other residents of the action read a review without the name, so
what leaves this module for a page is only the measure, the month, the stars and the text: never
the resident, the address, the email or the exact day (a day and a street together could name
a neighbour). Confirming the work without a rating does not close the chance to rate: a
completed line without a review can be rated later, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from coop.accounts.models import User
from coop.actions import page_hooks as action_pages
from coop.actions.models import ActionMeasure, Measure
from coop.core.time import AMSTERDAM, utcnow
from coop.extensions import db
from coop.installers import page_hooks as installer_pages
from coop.installers.models import Installer
from coop.orders.fieldwork import MAX_COMMENT, _lock, _resident_of
from coop.orders.models import Batch, LineStatus, Order, OrderLine, Review
from coop.orders.services import OrderError


@dataclass(frozen=True)
class PublicReview:
    """One review as others may read it: nothing that points at the household."""

    measure: Measure
    month: date  # the first day of the month it was written
    rating: int
    comment: str


@dataclass
class InstallerReviews:
    """An installer's reviews with their count and average (1 to 5)."""

    installer_id: int
    company_name: str
    reviews: list[PublicReview] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.reviews)

    @property
    def average(self) -> float:
        return sum(r.rating for r in self.reviews) / len(self.reviews) if self.reviews else 0.0


def _month_of(moment: datetime) -> date:
    local = moment.astimezone(AMSTERDAM)
    return date(local.year, local.month, 1)


def _grouped(rows: list[tuple[Review, Installer, Measure]]) -> list[InstallerReviews]:
    by_installer: dict[int, InstallerReviews] = {}
    for review, installer, measure in rows:
        group = by_installer.setdefault(
            installer.id, InstallerReviews(installer.id, installer.company_name)
        )
        group.reviews.append(
            PublicReview(measure, _month_of(review.created_at), review.rating, review.comment)
        )
    return sorted(by_installer.values(), key=lambda g: g.company_name.casefold())


def _query() -> Select[Review, Installer, Measure]:
    return (
        select(Review, Installer, Measure)
        .join(OrderLine, OrderLine.id == Review.line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Installer, Installer.id == Review.installer_id)
        .join(Batch, Batch.id == Order.batch_id)
        .join(ActionMeasure, ActionMeasure.id == Batch.action_measure_id)
        .join(Measure, Measure.id == ActionMeasure.measure_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
    )


@action_pages.reviews_of_action.provide
def reviews_for_action(action_id: int) -> list[InstallerReviews]:
    """The reviews of the work in this action, per installer, newest first."""
    rows = db.session.execute(_query().where(Order.action_id == action_id)).all()
    return _grouped(list(rows))


@installer_pages.reviews_of_installer.provide
def reviews_of_installer(installer_id: int) -> InstallerReviews:
    """Every review of one installer, over all actions (the desk's installer page)."""
    installer = db.session.get(Installer, installer_id)
    rows = db.session.execute(_query().where(Review.installer_id == installer_id)).all()
    groups = _grouped(list(rows))
    if groups:
        return groups[0]
    return InstallerReviews(installer_id, installer.company_name if installer else "")


def can_rate(line: OrderLine) -> bool:
    """The work is confirmed and not rated yet: the resident may still rate it."""
    return line.status is LineStatus.COMPLETED and line.review is None and not line.detached


def rate_installation(
    actor: User,
    line: OrderLine,
    rating: int | None,
    comment: str = "",
    *,
    now: datetime | None = None,
) -> Review:
    """Rate confirmed work afterwards (once; a second rating of the same work is refused)."""
    _resident_of(actor, line)
    comment = comment.strip()
    if rating is None or not 1 <= rating <= 5:
        raise OrderError("rating_required")
    if len(comment) > MAX_COMMENT:
        raise OrderError("message_too_long")
    _lock(line)
    if line.status is not LineStatus.COMPLETED:
        raise OrderError("rate_not_possible")
    if db.session.scalar(select(Review.id).where(Review.line_id == line.id)) is not None:
        raise OrderError("already_rated")
    review = Review(
        line_id=line.id,
        installer_id=line.order.installer_id,
        rating=rating,
        comment=comment,
        created_at=now or utcnow(),
    )
    db.session.add(review)
    try:
        db.session.commit()
    except IntegrityError:  # a second tab won the race (SQLite has no row lock)
        db.session.rollback()
        raise OrderError("already_rated") from None
    return review
