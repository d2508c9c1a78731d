"""What every page shares: security headers, error pages, language switch, health check,
template helpers and the development mailbox."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask_babel import get_locale, gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map, Rule
from werkzeug.wrappers import Response

from coop.core import jobs, ratelimit
from coop.core.formatting import local_date, local_datetime, money
from coop.core.models import EmailLog, JobStatus, OutboxJob
from coop.core.time import utcnow
from coop.extensions import db, limiter, login_manager

log = logging.getLogger(__name__)
bp = Blueprint("core", __name__)

# Seconds a client is asked to wait when the database is away (a restart or a failover).
DATABASE_RETRY_AFTER = 60

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'{checkout}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# The largest id a URL may carry: ids are 32-bit integers on PostgreSQL (and SQLite refuses
# numbers above 64 bits). A larger one cannot name anything: 404, not a database error.
MAX_ID = 2**31 - 1


def _up_to(limit: str) -> str:
    """A regular expression for the decimal numbers from 0 to ``limit`` (no sign, leading zeros
    allowed up to its length)."""
    shorter = f"\\d{{1,{len(limit) - 1}}}" if len(limit) > 1 else None
    same_length = []
    for position, digit in enumerate(limit):
        rest = len(limit) - position - 1
        if int(digit) > 0:
            lower = "0" if int(digit) == 1 else f"[0-{int(digit) - 1}]"
            same_length.append(f"{limit[:position]}{lower}" + (f"\\d{{{rest}}}" if rest else ""))
    same_length.append(limit)
    return "|".join([*(p for p in [shorter] if p), *same_length])


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: a whole number from 0 to ``MAX_ID``.

    The bound is in the regular expression too: a number that passes the path's expression but
    fails the converter would let werkzeug answer 405 for a route that shares the path."""

    regex = f"(?:{_up_to(str(MAX_ID))})"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


_LONG_NUMBER = re.compile(r"\d{10,}")


def _log_id_out_of_range() -> None:
    """A 404 for an id no row can have is worth a line: someone may be probing."""
    if any(int(n) > MAX_ID for n in _LONG_NUMBER.findall(request.path)):
        log.info("id out of range in %s %s", request.method, request.path[:200])


def content_security_policy(app: Any) -> str:
    """The CSP; the pay form redirects to Stripe Checkout, which ``form-action`` must allow
    (Chromium applies it to the redirect after a form's POST too)."""
    checkout = ""
    if app.config.get("STRIPE_SECRET_KEY") and app.config.get("STRIPE_CHECKOUT_ORIGIN"):
        parts = urlsplit(str(app.config["STRIPE_CHECKOUT_ORIGIN"]))
        if parts.scheme in ("https", "http") and parts.netloc:
            checkout = f" {parts.scheme}://{parts.netloc}"
    return _CSP.format(checkout=checkout)


# Email links, invitations and feeds carry their permission in the address (<token>, <key>):
# failed uses are limited per client address, so guessing gets nowhere. Generated from the URL
# map: a new route with a token or key in its address is limited without anyone remembering.
LINK_ARGUMENTS = frozenset({"token", "key"})
LINK_FAILURES = ratelimit.Limit("link-failures", "RATELIMIT_LOGIN")


def mark_issued_link() -> None:
    """The address's token carries our signature but can no longer be used (used or expired):
    opening it again is no guess, so it does not count towards the limit (a family computer
    opening last month's emails, or everyone of an office behind one address)."""
    g.issued_link = True


def is_link_route(rule: Rule | None) -> bool:
    return rule is not None and bool(LINK_ARGUMENTS & set(rule.arguments))


def _link_client() -> str:
    """Counted per client address and route: a calendar service polling an old feed address
    for many users (one address) does not block its users' unsubscribe links."""
    return f"{request.remote_addr or 'unknown'} {request.endpoint}"


def init_app(app: Flask) -> None:
    # Before any blueprint adds its routes: a route's converters are made when it is added.
    app.url_map.converters["int"] = IdConverter
    app.register_blueprint(bp)
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["datetime"] = local_datetime
    app.jinja_env.filters["date"] = local_date
    app.jinja_env.globals["localized"] = localized
    app.jinja_env.globals["now"] = utcnow
    app.jinja_env.globals["current_language"] = lambda: str(get_locale() or "nl")
    app.jinja_env.add_extension("jinja2.ext.i18n")  # Flask-Babel installs the callables
    login_manager.login_view = "accounts.login"
    login_manager.login_message = ""  # the login page itself explains what to do

    @app.before_request
    def _limit_link_failures() -> tuple[str, int, dict[str, str]] | None:
        if request.method in ("GET", "POST", "HEAD") and is_link_route(request.url_rule):
            wait = LINK_FAILURES.wait(_link_client())
            if wait:
                return _too_many_requests(wait)
        return None

    @app.before_request
    def _no_nul_in_path() -> None:
        # No page has NUL in its address, and PostgreSQL refuses it in a query (a 500).
        if "\x00" in request.path:
            abort(404)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if (
            is_link_route(request.url_rule)
            and response.status_code in (400, 404)
            and not g.get("issued_link")
        ):
            LINK_FAILURES.count(_link_client())
        # Pages show personal data once someone is logged in or holds a link, and exports
        # are personal data: no browser or proxy keeps a copy (the back button on a shared
        # computer, a proxy's cache). Only the static files may be kept.
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", content_security_policy(current_app))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "geolocation=(), camera=(), microphone=()"
        )
        if current_app.config["COOP_ENV"] == "production":
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        response.headers["Content-Language"] = str(get_locale() or "nl")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        return (
            render_template(
                "errors/error.html",
                code=400,
                title=gettext("This form has expired"),
                message=gettext(
                    "For your safety a form works for a limited time and only from this site. "
                    "Go back, reload the page and try again. Nothing was saved."
                ),
            ),
            400,
        )

    @app.errorhandler(429)
    def _rate_limited(error: HTTPException) -> tuple[str, int, dict[str, str]]:
        limit = limiter.current_limit
        wait = max(1, int(limit.reset_at - time.time())) if limit is not None else 60
        return _too_many_requests(wait)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        code = error.code or 500
        if code < 400:
            return error
        if code == 404:
            _log_id_out_of_range()
        title, message = _error_text(code)
        return render_template("errors/error.html", code=code, title=title, message=message), code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        title, message = _error_text(500)
        return render_template("errors/error.html", code=500, title=title, message=message), 500

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError) -> tuple[str, int, dict[str, str]] | tuple[str, int]:
        if not database_unreachable(error):
            return _unexpected(error)
        return database_away_page(error)


def database_unreachable(error: BaseException) -> bool:
    """The database cannot be reached or dropped the connection (restart, failover, network),
    as opposed to a query it refused: a matter of waiting, not a bug."""
    return isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def database_away_page(error: BaseException) -> tuple[str, int, dict[str, str]]:
    """503 with Retry-After, on a page that needs no database (the user stays anonymous)."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session.remove()
    log.error(
        "database unreachable on %s %s: %s",
        request.method,
        request.path,
        str(error).splitlines()[0] if str(error) else type(error).__name__,
    )
    # Flask-Login would ask the database for the logged-in user while the page is drawn.
    g._login_user = login_manager.anonymous_user()
    page = render_template(
        "errors/error.html",
        code=503,
        title=gettext("Briefly unavailable"),
        message=gettext(
            "We cannot reach our database at the moment. Please try again in a minute. "
            "If you had filled in a form, check afterwards whether it arrived before you "
            "send it again."
        ),
    )
    return page, 503, {"Retry-After": str(DATABASE_RETRY_AFTER)}


def _too_many_requests(wait: int) -> tuple[str, int, dict[str, str]]:
    """The 429 page, saying how long to wait."""
    return (
        render_template(
            "errors/error.html",
            code=429,
            title=gettext("Too many attempts"),
            message=gettext("Please wait %(wait)s and try again.", wait=ratelimit.wait_text(wait)),
        ),
        429,
        {"Retry-After": str(wait)},
    )


def _error_text(code: int) -> tuple[str, str]:
    texts = {
        400: (gettext("Something in the request was not right"), gettext("Go back and try again.")),
        403: (gettext("Not allowed"), gettext("You do not have access to this page.")),
        404: (
            gettext("Page not found"),
            gettext("This page does not exist (any more), or you do not have access to it."),
        ),
        405: (gettext("Not allowed"), gettext("This page cannot be used this way.")),
        413: (
            gettext("Too much text"),
            gettext("What you sent is too large. Shorten it and try again. Nothing was saved."),
        ),
        429: (
            gettext("Too many attempts"),
            gettext("Please wait a few minutes and try again."),
        ),
    }
    return texts.get(
        code,
        (
            gettext("Something went wrong on our side"),
            gettext("Nothing was lost. Please try again in a few minutes."),
        ),
    )


def localized(obj: Any, field: str) -> str:
    """``obj.<field>_en`` when the page is in English and it is filled in, else the Dutch text."""
    if str(get_locale() or "nl") == "en":
        english = getattr(obj, f"{field}_en", None)
        if english:
            return str(english)
    return str(getattr(obj, f"{field}_nl"))


def safe_next(target: str | None, default: str = "/") -> str:
    """Only paths on this site; never an open redirect to somewhere else."""
    if not target:
        return default
    # Checked as given and percent-decoded (twice: "%252F"), so that an encoded "//" or "\\"
    # cannot pass here and be decoded by a proxy or a browser on the way.
    decoded = unquote(unquote(target))
    for form in (target, decoded):
        # Browsers read "\" as "/" and drop tabs and newlines, so "/\evil.example" and
        # "/\t/evil.example" would leave the site as "//evil.example" does.
        if "\\" in form or any(ord(ch) < 32 or ord(ch) == 127 for ch in form):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc or not form.startswith("/") or form.startswith("//"):
            return default
    return target


@bp.get("/language/<code>")
def set_language(code: str) -> Response:
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.args.get("next")))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Database and queue state for load balancers and people on call."""
    report: dict[str, Any] = {}
    healthy = True
    try:
        db.session.execute(text("SELECT 1"))
        pending = db.session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.status == JobStatus.PENDING)
        )
        failed = db.session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.status == JobStatus.FAILED)
        )
        report["database"] = {"ok": True, "backend": db.engine.dialect.name}
        report["outbox"] = {"pending": pending, "failed": failed}
        # The scheduler is another process: it writes how each task fared, we read it here.
        failing = jobs.failing_tasks()
        last_round = jobs.last_round_at()
        report["periodic"] = {
            "ok": not failing,
            "last_round": last_round.isoformat() if last_round else None,
            "failing": [
                {
                    "task": state.name,
                    "since": state.failing_since.isoformat() if state.failing_since else None,
                    "rounds": state.failures,
                    # The exception's class only: this page is public.
                    "error": (state.last_error or "").partition(":")[0],
                }
                for state in failing
            ],
        }
        if failing:
            healthy = False
    except Exception as exc:
        healthy = False
        report["database"] = {"ok": False, "error": type(exc).__name__}
    finally:
        db.session.rollback()
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        try:
            from redis import Redis
            from rq import Queue

            connection = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
            connection.ping()
            # RQ jobs waiting per lane (a job carries up to OUTBOX_BATCH_SIZE outbox rows).
            queued = {
                lane: Queue(name, connection=connection).count
                for lane, name in jobs.queue_names(current_app._get_current_object()).items()  # type: ignore[attr-defined]
            }
            report["queue"] = {
                "ok": True,
                "backend": "rq",
                "queued": sum(queued.values()),
                "queued_per_lane": queued,
            }
        except Exception as exc:
            # Jobs wait in the outbox while Redis is away; the app still works, but say so.
            healthy = False
            report["queue"] = {"ok": False, "backend": "rq", "error": type(exc).__name__}
    else:
        report["queue"] = {"ok": True, "backend": "in-process"}
    report["status"] = "ok" if healthy else "degraded"
    return jsonify(report), 200 if healthy else 503


@bp.get("/dev/mailbox")
def dev_mailbox() -> str:
    """Development only: the messages that would have been sent, so the demo can be followed."""
    if not current_app.config.get("DEV_MAILBOX"):
        abort(404)
    messages = db.session.scalars(select(EmailLog).order_by(EmailLog.id.desc()).limit(50)).all()
    return render_template("core/dev_mailbox.html", messages=messages)
