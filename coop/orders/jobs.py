"""Background jobs of orders: the matching run, the approval that creates the orders, every
email about orders, surveys, quotes and installations, and the periodic rounds (deadlines,
reminders, expiry).

Each job takes ids, reads what it needs, and sends under a key of its own, so running it twice
sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask import current_app

from coop.accounts.mail import email_user
from coop.accounts.models import LoginPurpose, User
from coop.accounts.services import issue_login_token, login_link
from coop.core.calendar import CalendarEvent, calendar_bytes
from coop.core.jobs import job, periodic
from coop.extensions import db
from coop.installers.mail import email_installer
from coop.orders import fieldwork, services
from coop.orders.models import MatchingRun, Order, OrderLine, OrderStatus, Quote, SiteSurvey
from coop.registrations.models import Registration


def _give_up_run(run_id: int, error: str) -> None:
    services.fail_run(run_id, error)


@job("orders.run_matching", on_give_up=_give_up_run)
def run_matching(run_id: int) -> None:
    services.compute_run(run_id)


def _give_up_approval(run_id: int, error: str) -> None:
    services.approval_failed(run_id, error)


@job("orders.approve_run", on_give_up=_give_up_approval)
def approve_run(run_id: int) -> None:
    services.carry_out_approval(run_id)


@job("orders.prepare_batches")
def prepare_batches(action_id: int) -> None:
    services.prepare_batches(action_id)


# --- who gets the email -----------------------------------------------------------------------


def _base() -> str:
    return str(current_app.config["BASE_URL"])


def _resident_link(user: User, path: str) -> str:
    """A login link that opens ``path``: residents have no password."""
    token = issue_login_token(user, LoginPurpose.LOGIN, next_path=path)
    return login_link(token)


def email_resident(
    registration: Registration,
    key: str,
    template: str,
    *,
    attachments: Iterable[tuple[str, str, bytes]] | None = None,
    **context: Any,
) -> None:
    user = registration.user
    email_user(
        user,
        template,
        key=key,
        action_id=registration.action_id,
        registration=registration,
        action=registration.action,
        household=registration.household,
        link=_resident_link(user, f"/my/registrations/{registration.id}"),
        attachments=list(attachments or ()),
        **context,
    )


def _portal_order_link(order: Order) -> str:
    return f"{_base()}/installer/orders/{order.id}"


def _portal_line_link(line: OrderLine) -> str:
    return f"{_base()}/installer/orders/{line.order_id}#line-{line.id}"


# --- staff ------------------------------------------------------------------------------------


@job("orders.send_proposal_ready")
def send_proposal_ready(run_id: int, user_id: int) -> None:
    run = db.session.get(MatchingRun, run_id)
    user = db.session.get(User, user_id)
    if run is None or user is None or not user.is_active:
        return
    email_user(
        user,
        "proposal_ready",
        key=f"proposal-ready:{run.id}:{user.id}",
        run=run,
        coverage=services.coverage(run),
        action=run.action,
        footer="work",
        link=f"{_base()}/desk/actions/{run.action_id}/matching/{run.id}",
    )


@job("orders.send_order_released")
def send_order_released(order_id: int, user_id: int) -> None:
    order = db.session.get(Order, order_id)
    user = db.session.get(User, user_id)
    if order is None or user is None or not user.is_active:
        return
    email_user(
        user,
        "order_released",
        key=f"order-released:{order.id}:{user.id}",
        order=order,
        action=order.action,
        installer=order.installer,
        homes=len(order.lines),
        footer="work",
        link=f"{_base()}/desk/actions/{order.action_id}/orders",
    )


# --- installers -------------------------------------------------------------------------------


def _order_email(order_id: int, kind: str, *, link: bool, unanswered_only: bool = False) -> None:
    """The installer's email about one of its orders: ``order_<kind>`` under ``order-<kind>``."""
    order = db.session.get(Order, order_id)
    if order is None or (unanswered_only and order.status is not OrderStatus.SENT):
        return
    email_installer(
        order.installer,
        f"order-{kind}:{order.id}",
        f"order_{kind}",
        order=order,
        action=order.action,
        measure=order.batch.action_measure.measure,  # the subject names it: one area, two orders
        homes=len(order.lines),
        **({"link": _portal_order_link(order)} if link else {}),
    )


@job("orders.send_order")
def send_order(order_id: int) -> None:
    _order_email(order_id, "sent", link=True)


@job("orders.send_order_reminder")
def send_order_reminder(order_id: int) -> None:
    _order_email(order_id, "reminder", link=True, unanswered_only=True)


@job("orders.send_order_expired")
def send_order_expired(order_id: int) -> None:
    _order_email(order_id, "expired", link=False)


@job("orders.send_order_cancelled")
def send_order_cancelled(order_id: int) -> None:
    _order_email(order_id, "cancelled", link=False)


@job("orders.send_household_withdrawn")
def send_household_withdrawn(line_id: int) -> None:
    """The installer stops the work on one household's measure. Also after an erasure, when the
    line is detached: the email then names the order, the measure and the dates the installer
    knows it by, without the address."""
    line = db.session.get(OrderLine, line_id)
    if line is None:
        return
    context = fieldwork.line_context(line)
    installer = context.pop("installer")
    email_installer(
        installer,
        f"household-withdrawn:{line.id}",
        "household_withdrawn",
        link=_portal_order_link(line.order) if line.detached else _portal_line_link(line),
        survey=line.surveys[-1] if line.surveys else None,
        quote=line.quote,
        **context,
    )


@job("orders.send_survey_change_requested")
def send_survey_change_requested(survey_id: int) -> None:
    survey = db.session.get(SiteSurvey, survey_id)
    if survey is None:
        return
    line = db.session.get(OrderLine, survey.line_id)
    if line is None or line.detached:
        return
    context = fieldwork.line_context(line)
    installer = context.pop("installer")
    email_installer(
        installer,
        f"survey-change:{survey.id}",
        "survey_change_requested",
        survey=survey,
        link=_portal_line_link(line),
        **context,
    )


def _quoteemail_installer(quote_id: int, key: str, template: str) -> None:
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.line.detached:
        return
    context = fieldwork.line_context(quote.line)
    installer = context.pop("installer")
    email_installer(
        installer, key, template, quote=quote, link=_portal_line_link(quote.line), **context
    )


@job("orders.send_quote_declined")
def send_quote_declined(quote_id: int) -> None:
    _quoteemail_installer(quote_id, f"quote-declined:{quote_id}", "quote_declined")


@job("orders.send_quote_expired")
def send_quote_expired(quote_id: int) -> None:
    _quoteemail_installer(quote_id, f"quote-expired:{quote_id}", "quote_expired")


@job("orders.send_quote_accepted")
def send_quote_accepted(quote_id: int) -> None:
    _quoteemail_installer(quote_id, f"quote-accepted:{quote_id}", "quote_accepted")
    quote = db.session.get(Quote, quote_id)
    if quote is None:
        return
    found = _resident_line_context(quote.line)
    if found is None:
        return
    registration, context = found
    email_resident(
        registration,
        f"quote-accepted-resident:{quote.id}",
        "quote_accepted_resident",
        quote=quote,
        **context,
    )


@job("orders.send_confirmed")
def send_confirmed(line_id: int) -> None:
    line = db.session.get(OrderLine, line_id)
    if line is None or line.detached:
        return
    context = fieldwork.line_context(line)
    installer = context.pop("installer")
    email_installer(
        installer,
        f"installation-confirmed:{line.id}",
        "installation_confirmed",
        review=line.review,
        link=_portal_line_link(line),
        **context,
    )


# --- residents --------------------------------------------------------------------------------


@job("orders.send_assigned")
def send_assigned(registration_id: int, run_id: int) -> None:
    registration = db.session.get(Registration, registration_id)
    if registration is None:
        return
    lines = [line for line in services.current_lines(registration) if line.order.run_id == run_id]
    if not lines:
        return
    email_resident(
        registration, f"assigned:{run_id}:{registration.id}", "registration_assigned", lines=lines
    )


@job("orders.send_installer_unavailable")
def send_installer_unavailable(order_id: int, registration_id: int) -> None:
    order = db.session.get(Order, order_id)
    registration = db.session.get(Registration, registration_id)
    if order is None or registration is None:
        return
    email_resident(
        registration,
        f"installer-unavailable:{order.id}:{registration.id}",
        "installer_unavailable",
        installer=order.installer,
        measure=order.batch.action_measure.measure,
    )


def _resident_line_context(line: OrderLine) -> tuple[Registration, dict[str, Any]] | None:
    """The resident and what their email about ``line`` needs; None once they erased their
    account (the line is detached: there is nobody to write to)."""
    if line.detached:
        return None
    context = fieldwork.line_context(line)
    registration = context.pop("registration")
    context.pop("action")
    context.pop("household")
    return registration, context


def survey_event(survey: SiteSurvey, line: OrderLine) -> CalendarEvent:
    registration = line.household_registration
    installer = line.order.installer
    measure = line.measure
    return CalendarEvent(
        uid=f"survey-{line.id}@coop",
        sequence=len(line.surveys),
        summary=f"{installer.company_name}: {measure.name_nl} / {measure.name_en}",
        starts=survey.starts_at,
        ends=survey.starts_at + timedelta(minutes=survey.duration_minutes),
        location=registration.household.address_line,
        description=f"{installer.company_name} {installer.phone or ''} {installer.email}".strip(),
    )


@job("orders.send_survey_planned")
def send_survey_planned(survey_id: int) -> None:
    survey = db.session.get(SiteSurvey, survey_id)
    if survey is None:
        return
    line = db.session.get(OrderLine, survey.line_id)
    assert line is not None
    found = _resident_line_context(line)
    if found is None:
        return
    registration, context = found
    invitation = calendar_bytes([survey_event(survey, line)])
    email_resident(
        registration,
        f"survey-planned:{survey.id}",
        "survey_planned",
        survey=survey,
        attachments=[("opname.ics", "text/calendar", invitation)],
        **context,
    )


@job("orders.send_quote")
def send_quote(quote_id: int) -> None:
    quote = db.session.get(Quote, quote_id)
    if quote is None:
        return
    found = _resident_line_context(quote.line)
    if found is None:
        return
    registration, context = found
    email_resident(registration, f"quote-sent:{quote.id}", "quote_sent", quote=quote, **context)


@job("orders.send_quote_reminder")
def send_quote_reminder(quote_id: int) -> None:
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.status.value != "sent":
        return
    found = _resident_line_context(quote.line)
    if found is None:
        return
    registration, context = found
    email_resident(
        registration, f"quote-reminder:{quote.id}", "quote_reminder", quote=quote, **context
    )


@job("orders.send_installation_planned")
def send_installation_planned(line_id: int) -> None:
    line = db.session.get(OrderLine, line_id)
    if line is None or line.installation_planned_on is None:
        return
    found = _resident_line_context(line)
    if found is None:
        return
    registration, context = found
    day = line.installation_planned_on
    event = CalendarEvent(
        uid=f"installation-{line.id}@coop",
        sequence=int(day.strftime("%Y%m%d")),  # a later plan always updates an earlier one
        summary=f"{context['installer'].company_name}: {context['measure'].name_nl}",
        starts=day,
        ends=day + timedelta(days=1),
        location=registration.household.address_line,
    )
    email_resident(
        registration,
        f"installation-planned:{line.id}:{day.isoformat()}",
        "installation_planned",
        attachments=[("installatie.ics", "text/calendar", calendar_bytes([event]))],
        **context,
    )


@job("orders.send_installed")
def send_installed(line_id: int) -> None:
    line = db.session.get(OrderLine, line_id)
    if line is None:
        return
    found = _resident_line_context(line)
    if found is None:
        return
    registration, context = found
    email_resident(registration, f"installed:{line.id}", "work_installed", **context)


# --- the periodic rounds ----------------------------------------------------------------------


@periodic("orders.start_after_tenders")
def start_after_tenders() -> int:
    return services.start_matching_after_tenders()


@periodic("orders.expire_orders")
def expire_orders() -> int:
    return services.expire_orders()


@periodic("orders.remind_orders")
def remind_orders() -> int:
    return services.remind_unanswered_orders()


@periodic("orders.expire_quotes")
def expire_quotes() -> int:
    return fieldwork.expire_quotes()


@periodic("orders.remind_quotes")
def remind_quotes() -> int:
    return fieldwork.remind_open_quotes()
