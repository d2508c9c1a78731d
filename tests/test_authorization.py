"""Every route, for every role, on one's own and on someone else's objects.

The routes come from ``app.url_map``; the expected answers from ``EXPECTED`` below, written out by
hand. A route (or a method, or a kind of object in its URL) without an entry fails the test, so a
new page cannot go live without someone deciding who may open it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from coop.accounts.models import Role, User
from coop.actions.models import Action, ActionStatus, Neighbourhood
from coop.core.time import utcnow
from coop.desk.models import SegmentUpdate
from coop.extensions import db
from coop.installers.models import Installer
from coop.orders.models import (
    Batch,
    LineStatus,
    MatchingRun,
    Order,
    OrderLine,
    OrderStatus,
    ProposedAssignment,
    Quote,
    QuoteItem,
    RunStatus,
    RunTrigger,
    VatRate,
)
from coop.payments.models import Payment, PaymentMode, PaymentStatus
from coop.payments.services import reference_for
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationMeasure,
    RegistrationStatus,
    StatusChange,
)
from coop.tenders.models import TenderInvitation, TenderRound
from tests import factories
from tests.login import sign_in

ROLES = (
    "anonymous",
    "resident_a",
    "resident_b",
    "installer",  # a user of installer A (inst_a)
    "installer_b",  # a user of installer B (inst_b): another company
    "staff_a",  # a desk admin of organisation A
    "staff_a_member",  # staff of organisation A without admin rights
    "staff_b",  # a desk admin of organisation B
)
RESIDENTS = ("resident_a", "resident_b")
STAFF_A = ("staff_a", "staff_a_member")
STAFF = (*STAFF_A, "staff_b")
ADMINS = ("staff_a", "staff_b")
INSTALLERS = ("installer", "installer_b")
LOGGED_IN = ROLES[1:]
LOGIN = "login"  # a redirect to the login page
Expected = int | str
Table = dict[str, Expected]

# What each URL parameter (or combination) is tried with. Objects:
#   open_a / draft_b    an open action of organisation A / a draft action of organisation B
#   reg_a / reg_b       resident A's registration (A's action) / resident B's (B's action)
#   offer_a / offer_b   a measure offered by open_a / by draft_b
#   inst_a / inst_b     an installer in A's registry / in B's ("installer" works for inst_a,
#                       "installer_b" for inst_b)
#   order_a / order_b   an accepted order of inst_a (A's action) / of inst_b (B's)
#   line_a / line_b     resident A's household in order_a / resident B's in order_b (quoted)
#   quote_a / quote_b   the quote of line_a / line_b, expired unanswered: deciding is refused
#   inv_a / inv_b       inst_a's invitation to A's open tender round / inst_b's to B's
#   cal_a / bogus_key   inst_a's calendar feed secret / a key nobody has
#   nb_a / nb_b         a neighbourhood of A / of B
#   upd_a / upd_b       a draft update to residents by A / by B
#   member_a / member_b a colleague invited at A / at B (no password yet)
#   meet_a / meet_b     a meeting of A / of B (public)
#   survey_a / survey_b an open survey of A / a draft survey of B
#   camp_a / camp_b     a heat-network interest campaign of A / of B (public)
#   amb_a / amb_b       resident A's approved ambassadorship (A's neighbourhood) / resident B's,
#                       only volunteered (B's); nb_a has a public neighbourhood page, nb_b a
#                       page not yet public
#   vat_a / vat_b       the 21% VAT rate of A / of B (each desk keeps its own rates)
TARGETS: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {
    (): ((),),
    ("slug",): (("open_a",), ("draft_b",)),
    ("registration_id",): (("reg_a",), ("reg_b",)),
    ("action_id",): (("open_a",), ("draft_b",)),
    ("action_id", "offer_id"): (
        ("open_a", "offer_a"),
        ("draft_b", "offer_b"),
        ("open_a", "offer_b"),  # a measure of another action: never through this one
    ),
    ("action_id", "kind"): (("open_a", "kind"), ("draft_b", "kind")),
    ("action_id", "kind", "language"): (("open_a", "kind", "nl"), ("draft_b", "kind", "nl")),
    ("installer_id",): (("inst_a",), ("inst_b",)),
    ("action_id", "round_id"): (
        ("open_a", "round_a"),
        ("draft_b", "round_b"),
        ("open_a", "round_b"),  # another action's round: never through this one
    ),
    ("action_id", "run_id"): (("open_a", "run_a"), ("draft_b", "run_b"), ("open_a", "run_b")),
    ("action_id", "run_id", "batch_id"): (
        ("open_a", "run_a", "batch_a"),
        ("draft_b", "run_b", "batch_b"),
        ("open_a", "run_a", "batch_b"),  # a group of another action's run
    ),
    ("neighbourhood_id",): (("nb_a",), ("nb_b",)),
    ("payment_id",): (("pay_a",), ("pay_b",)),
    ("action_id", "fmt"): (("open_a", "csv"), ("draft_b", "csv")),
    ("update_id",): (("upd_a",), ("upd_b",)),
    ("user_id",): (("member_a",), ("member_b",)),
    ("order_id",): (("order_a",), ("order_b",)),
    ("line_id",): (("line_a",), ("line_b",)),
    ("quote_id",): (("quote_a",), ("quote_b",)),
    ("invitation_id",): (("inv_a",), ("inv_b",)),
    ("key",): (("cal_a",), ("bogus_key",)),
    ("fmt",): (("csv",),),
    ("token",): (("bogus_token",),),
    ("code",): (("en",),),
    ("meeting_id",): (("meet_a",), ("meet_b",)),
    ("survey_id",): (("survey_a",), ("survey_b",)),
    ("survey_id", "fmt"): (("survey_a", "csv"), ("survey_b", "csv")),
    ("campaign_id",): (("camp_a",), ("camp_b",)),
    ("ambassador_id",): (("amb_a",), ("amb_b",)),
    ("rate_id",): (("vat_a",), ("vat_b",)),
}


def everyone(expected: Expected) -> Table:
    return dict.fromkeys(ROLES, expected)


def only(
    allowed: dict[str, Expected], others: Expected = 404, anonymous: Expected = LOGIN
) -> Table:
    """``allowed`` roles get their answer, anonymous visitors ``anonymous``, the rest ``others``."""
    table = dict.fromkeys(ROLES, others)
    table["anonymous"] = anonymous
    table.update(allowed)
    return table


def roles(names: tuple[str, ...], expected: Expected = 200) -> dict[str, Expected]:
    return dict.fromkeys(names, expected)


def owner(resident: str) -> Table:
    """A resident's own page: the owner gets it; everyone else logged in, a 404."""
    return only({resident: 200})


def of_a(expected: Expected = 200) -> Table:
    """A desk page about organisation A's object: A's staff only."""
    return only(roles(STAFF_A, expected))


def of_b(expected: Expected = 200) -> Table:
    return only({"staff_b": expected})


NOBODY = only({})
RESIDENT_PAGE = only(roles(RESIDENTS))
DRAFT_B = only({"staff_b": 200}, anonymous=404)  # public pages of a draft: only its own desk
ANY_STAFF = only(roles(STAFF))
STAFF_OR_INSTALLER = only(roles((*STAFF, *INSTALLERS)))


def per_action(a: Table, b: Table) -> dict[str, Table]:
    return {"open_a": a, "draft_b": b}


def by_target(method: str, tables: dict[str, Table]) -> dict[tuple[str, str], Table]:
    return {(method, target): table for target, table in tables.items()}


# endpoint -> (method, target) -> role -> expected status (or LOGIN). POSTs carry a valid CSRF
# token and no other data, so an allowed POST mostly answers with its form's errors.
EXPECTED: dict[str, dict[tuple[str, str], Table]] = {
    # --- everyone ------------------------------------------------------------------------
    "core.set_language": {("GET", "en"): everyone(302)},
    "core.healthz": {("GET", ""): everyone(200)},
    # The forms' address lookup: public (street and town are public data), rate-limited.
    "address.lookup": {("GET", ""): everyone(200)},
    # With DEV_MAILBOX on (development); off, it is a 404 for all (see the test below).
    "core.dev_mailbox": {("GET", ""): everyone(200)},
    "actions.index": {("GET", ""): everyone(200)},
    "actions.detail": by_target("GET", per_action(everyone(200), DRAFT_B)),
    "registrations.register": {
        **by_target("GET", per_action(everyone(200), DRAFT_B)),  # B sees "closed"
        **by_target("POST", per_action(everyone(200), DRAFT_B)),
    },
    "registrations.registered": by_target("GET", per_action(everyone(200), DRAFT_B)),
    "registrations.send_access": by_target(
        "POST", per_action(everyone(302), only({"staff_b": 302}, anonymous=404))
    ),
    "unsubscribe.unsubscribe": {
        ("GET", "bogus_token"): everyone(404),
        ("POST", "bogus_token"): everyone(404),
    },
    "unsubscribe.one_click_unsubscribe": {("POST", "bogus_token"): everyone(404)},
    # --- logging in ----------------------------------------------------------------------
    "accounts.login": {("GET", ""): everyone(200), ("POST", ""): everyone(200)},
    "accounts.check_email": {("GET", ""): everyone(200)},
    "accounts.use_link": {
        ("GET", "bogus_token"): everyone(400),  # checked on opening (nothing is used)
        ("POST", "bogus_token"): everyone(400),
    },
    "accounts.staff_login": {("GET", ""): everyone(200), ("POST", ""): everyone(200)},
    # Without a right password a moment ago, back to the password step.
    "accounts.staff_login_code": {("GET", ""): everyone(302), ("POST", ""): everyone(302)},
    "accounts.accept_invitation": {
        ("GET", "bogus_token"): everyone(400),
        ("POST", "bogus_token"): everyone(400),
    },
    "accounts.logout": {("POST", ""): only(roles(LOGGED_IN, 302))},
    "accounts.security": {("GET", ""): STAFF_OR_INSTALLER},
    "accounts.security_setup": {("POST", ""): only(roles((*STAFF, *INSTALLERS), 302))},
    "accounts.security_confirm": {("POST", ""): STAFF_OR_INSTALLER},
    "accounts.security_disable": {("POST", ""): only(roles((*STAFF, *INSTALLERS), 302))},
    # An empty post of the password form gets its errors.
    "accounts.change_password": {("GET", ""): STAFF_OR_INSTALLER, ("POST", ""): STAFF_OR_INSTALLER},
    # --- the resident's own pages --------------------------------------------------------
    "registrations.mine": {("GET", ""): RESIDENT_PAGE},
    "registrations.detail": {
        ("GET", "reg_a"): owner("resident_a"),
        ("GET", "reg_b"): owner("resident_b"),
    },
    "registrations.edit": {
        (method, f"reg_{x}"): owner(f"resident_{x}") for method in ("GET", "POST") for x in "ab"
    },
    "registrations.withdraw": {
        (method, f"reg_{x}"): owner(f"resident_{x}") for method in ("GET", "POST") for x in "ab"
    },
    "registrations.export": {("GET", ""): RESIDENT_PAGE},
    "registrations.erase": {("GET", ""): RESIDENT_PAGE, ("POST", ""): RESIDENT_PAGE},
    # --- the desk ------------------------------------------------------------------------
    "desk.home": {("GET", ""): ANY_STAFF},
    # The old address of the installer's start page leads to the portal.
    "desk.installer_home": {("GET", ""): only(roles(INSTALLERS, 302))},
    "desk.action_dashboard": by_target("GET", per_action(of_a(), of_b())),
    "desk.neighbourhood_dashboard": {("GET", "nb_a"): of_a(), ("GET", "nb_b"): of_b()},
    "desk.updates_index": {("GET", ""): ANY_STAFF},
    "desk.compose_update": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "desk.edit_update": {
        ("GET", "upd_a"): of_a(),
        ("GET", "upd_b"): of_b(),
        # Fields left out keep their value (WTForms), so the draft is saved unchanged.
        ("POST", "upd_a"): of_a(302),
        ("POST", "upd_b"): of_b(302),
    },
    "desk.update_detail": {("GET", "upd_a"): of_a(), ("GET", "upd_b"): of_b()},
    "desk.send_update": {("POST", "upd_a"): of_a(302), ("POST", "upd_b"): of_b(302)},
    "desk.cancel_update": {("POST", "upd_a"): of_a(302), ("POST", "upd_b"): of_b(302)},
    "desk.audit_log": {("GET", ""): only(roles(ADMINS))},
    # The desk's settings: its admins only (a POST with just the token saves and redirects).
    "desk.settings": {("GET", ""): only(roles(ADMINS)), ("POST", ""): only(roles(ADMINS, 302))},
    "accounts.team": {("GET", ""): only(roles(ADMINS)), ("POST", ""): only(roles(ADMINS))},
    # A desk's VAT rates: its staff read them, its admin adds, ends and withdraws them (a post
    # with just the token gets the form's errors, and changes nothing); another desk's, a 404.
    "vat_desk.index": {("GET", ""): ANY_STAFF},
    "vat_desk.add": {("GET", ""): only(roles(ADMINS)), ("POST", ""): only(roles(ADMINS))},
    "vat_desk.end": {
        ("GET", "vat_a"): only({"staff_a": 200}),
        ("POST", "vat_a"): only({"staff_a": 200}),
        ("GET", "vat_b"): only({"staff_b": 200}),
        ("POST", "vat_b"): only({"staff_b": 200}),
    },
    # The 21% rates apply already: withdrawing one is refused (409) and changes nothing.
    "vat_desk.withdraw": {
        ("POST", "vat_a"): only({"staff_a": 409}),
        ("POST", "vat_b"): only({"staff_b": 409}),
    },
    "accounts.resend_invitation": {
        ("POST", "member_a"): only({"staff_a": 302}),
        ("POST", "member_b"): only({"staff_b": 302}),
    },
    # A desk admin ends (and gives back) a colleague's access; nobody else, at no other desk.
    **{
        endpoint: {
            ("POST", "member_a"): only({"staff_a": 302}),
            ("POST", "member_b"): only({"staff_b": 302}),
        }
        for endpoint in ("accounts.deactivate", "accounts.reactivate")
    },
    "installers_desk.index": {("GET", ""): ANY_STAFF},
    "installers_desk.create": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "installers_desk.detail": {("GET", "inst_a"): of_a(), ("GET", "inst_b"): of_b()},
    "installers_desk.edit": {
        **{(m, "inst_a"): of_a() for m in ("GET", "POST")},
        **{(m, "inst_b"): of_b() for m in ("GET", "POST")},
    },
    "installers_desk.invite": {
        **{(m, "inst_a"): of_a() for m in ("GET", "POST")},
        **{(m, "inst_b"): of_b() for m in ("GET", "POST")},
    },
    "installers_desk.export": {("GET", "csv"): ANY_STAFF},
    "registrations_desk.index": {("GET", ""): ANY_STAFF},
    "registrations_desk.export": {("GET", "csv"): ANY_STAFF},
    "registrations_desk.detail": {("GET", "reg_a"): of_a(), ("GET", "reg_b"): of_b()},
    "registrations_desk.add_note": {("POST", "reg_a"): of_a(), ("POST", "reg_b"): of_b()},
    # Without a choice the form comes back with its errors, and nothing is withdrawn.
    "registrations_desk.withdraw": {("POST", "reg_a"): of_a(), ("POST", "reg_b"): of_b()},
    "registrations_desk.choose_action": {("GET", ""): ANY_STAFF},
    "registrations_desk.register": {  # a draft takes no registrations: back to the list
        **by_target("GET", per_action(of_a(), of_b(302))),
        **by_target("POST", per_action(of_a(), of_b(302))),
    },
    "actions_desk.index": {("GET", ""): ANY_STAFF},
    "actions_desk.create": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "actions_desk.detail": by_target("GET", per_action(of_a(), of_b())),
    "actions_desk.edit": {
        **by_target("GET", per_action(of_a(), of_b())),
        **by_target("POST", per_action(of_a(), of_b())),
    },
    # 409: publishing what is already open. Otherwise done (or refused) and back to the action.
    "actions_desk.publish": by_target("POST", per_action(of_a(409), of_b(302))),
    "actions_desk.close": by_target("POST", per_action(of_a(302), of_b(302))),
    "actions_desk.reopen": by_target("POST", per_action(of_a(302), of_b(302))),
    "actions_desk.cancel": {
        **by_target("GET", per_action(of_a(), of_b())),
        **by_target("POST", per_action(of_a(), of_b())),
    },
    "actions_desk.add_measure": {
        **by_target("GET", per_action(of_a(), of_b())),
        **by_target("POST", per_action(of_a(), of_b())),
    },
    "actions_desk.edit_measure": {
        **{(m, "open_a+offer_a"): of_a() for m in ("GET", "POST")},
        **{(m, "draft_b+offer_b"): of_b() for m in ("GET", "POST")},
        **{(m, "open_a+offer_b"): NOBODY for m in ("GET", "POST")},
    },
    "actions_desk.remove_measure": {
        ("POST", "open_a+offer_a"): of_a(409),  # residents chose it: it stays
        ("POST", "draft_b+offer_b"): of_b(302),
        ("POST", "open_a+offer_b"): NOBODY,
    },
    "actions_desk.emails": by_target("GET", per_action(of_a(), of_b())),
    "actions_desk.preview_email": {("GET", "open_a+kind"): of_a(), ("GET", "draft_b+kind"): of_b()},
    "actions_desk.edit_email": {
        **{(m, "open_a+kind+nl"): of_a() for m in ("GET", "POST")},
        **{(m, "draft_b+kind+nl"): of_b() for m in ("GET", "POST")},
    },
    "actions_desk.reset_email": {
        ("POST", "open_a+kind+nl"): of_a(302),
        ("POST", "draft_b+kind+nl"): of_b(302),
    },
    # --- participation: public pages, the links from its emails, the ambassador ------------
    "participation.neighbourhood": {
        ("GET", "nb_a"): everyone(200),
        ("GET", "nb_b"): only({"staff_b": 200}, anonymous=404),  # not public yet: a preview
    },
    "participation.meeting": {
        (m, f"meet_{x}"): everyone(200) for m in ("GET", "POST") for x in "ab"
    },
    "participation.meeting_calendar": {("GET", f"meet_{x}"): everyone(200) for x in "ab"},
    "participation.my_rsvp": {(m, "bogus_token"): everyone(404) for m in ("GET", "POST")},
    "participation.survey": {
        **{(m, "survey_a"): everyone(200) for m in ("GET", "POST")},
        **{(m, "survey_b"): DRAFT_B for m in ("GET", "POST")},
    },
    "participation.survey_thanks": {
        ("GET", "survey_a"): everyone(200),
        ("GET", "survey_b"): DRAFT_B,
    },
    "participation.my_response": {(m, "bogus_token"): everyone(404) for m in ("GET", "POST")},
    "participation.campaign": {
        (m, f"camp_{x}"): everyone(200) for m in ("GET", "POST") for x in "ab"
    },
    "participation.my_pledge": {(m, "bogus_token"): everyone(404) for m in ("GET", "POST")},
    "participation.ambassador": {("GET", ""): RESIDENT_PAGE, ("POST", ""): RESIDENT_PAGE},
    "participation.log_contact": {
        ("POST", "amb_a"): only({"resident_a": 302}),
        ("POST", "amb_b"): only({"resident_b": 302}),
    },
    # --- participation: the desk ---------------------------------------------------------
    "participation_desk.index": {("GET", ""): ANY_STAFF},
    "participation_desk.create_meeting": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "participation_desk.meeting": {("GET", "meet_a"): of_a(), ("GET", "meet_b"): of_b()},
    "participation_desk.attendance": {
        ("POST", "meet_a"): of_a(302),
        ("POST", "meet_b"): of_b(302),
    },
    "participation_desk.follow_up": {("POST", "meet_a"): of_a(), ("POST", "meet_b"): of_b()},
    # An empty POST: the form's errors (edit); a cancellation without a message (cancel), and
    # once cancelled, the edit page says so (200) and cancelling again says so (302).
    "participation_desk.edit_meeting": {
        **{(m, "meet_a"): of_a() for m in ("GET", "POST")},
        **{(m, "meet_b"): of_b() for m in ("GET", "POST")},
    },
    "participation_desk.cancel_meeting": {
        ("GET", "meet_a"): of_a(),
        ("GET", "meet_b"): of_b(),
        ("POST", "meet_a"): of_a(302),
        ("POST", "meet_b"): of_b(302),
    },
    "participation_desk.create_survey": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "participation_desk.survey": {("GET", "survey_a"): of_a(), ("GET", "survey_b"): of_b()},
    "participation_desk.add_question": {
        ("POST", "survey_a"): of_a(),
        ("POST", "survey_b"): of_b(),
    },
    "participation_desk.open_survey": {
        ("POST", "survey_a"): of_a(302),
        ("POST", "survey_b"): of_b(302),
    },
    "participation_desk.close_survey": {
        ("POST", "survey_a"): of_a(302),
        ("POST", "survey_b"): of_b(302),
    },
    # Fewer than five responses: no export, back to the survey with the reason.
    "participation_desk.export_open_answers": {
        ("GET", "survey_a+csv"): of_a(302),
        ("GET", "survey_b+csv"): of_b(302),
    },
    "participation_desk.create_campaign": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    "participation_desk.campaign": {("GET", "camp_a"): of_a(), ("GET", "camp_b"): of_b()},
    "participation_desk.neighbourhood": {("GET", "nb_a"): of_a(), ("GET", "nb_b"): of_b()},
    "participation_desk.save_compass": {("POST", "nb_a"): of_a(), ("POST", "nb_b"): of_b()},
    "participation_desk.save_household_counts": {
        ("POST", "nb_a"): of_a(302),
        ("POST", "nb_b"): of_b(302),
    },
    "participation_desk.approve_ambassador": {
        ("POST", "amb_a"): of_a(302),
        ("POST", "amb_b"): of_b(302),
    },
    "actions_desk.neighbourhoods": {("GET", ""): ANY_STAFF},
    # --- tenders, matching and orders on the desk -------------------------------------------
    # An empty post of the tender form gets its errors; starting matching on an action that
    # is not closed is refused (409).
    "tenders_desk.open_round": {
        **by_target("GET", per_action(of_a(), of_b())),
        **by_target("POST", per_action(of_a(), of_b())),
    },
    "tenders_desk.bids": {
        ("GET", "open_a+round_a"): of_a(),
        ("GET", "draft_b+round_b"): of_b(),
        ("GET", "open_a+round_b"): NOBODY,
    },
    # POSTs without a date or a message: the form's errors, nothing changed.
    **{
        endpoint: {
            **{(m, "open_a+round_a"): of_a() for m in ("GET", "POST")},
            **{(m, "draft_b+round_b"): of_b() for m in ("GET", "POST")},
            **{(m, "open_a+round_b"): NOBODY for m in ("GET", "POST")},
        }
        for endpoint in ("tenders_desk.change_deadline", "tenders_desk.cancel_round")
    },
    "orders_desk.matching": by_target("GET", per_action(of_a(), of_b())),
    "orders_desk.start_matching": by_target("POST", per_action(of_a(409), of_b(409))),
    **{
        endpoint: {
            ("GET", "open_a+run_a"): of_a(),
            ("GET", "draft_b+run_b"): of_b(),
            ("GET", "open_a+run_b"): NOBODY,
        }
        for endpoint in ("orders_desk.run", "orders_desk.run_status")
    },
    # An empty post gives the whole group to nobody (302); approving needs a closed action.
    "orders_desk.reassign": {
        **{(m, "open_a+run_a+batch_a"): of_a(200 if m == "GET" else 302) for m in ("GET", "POST")},
        **{(m, "draft_b+run_b+batch_b"): of_b(200 if m == "GET" else 302) for m in ("GET", "POST")},
        **{(m, "open_a+run_a+batch_b"): NOBODY for m in ("GET", "POST")},
    },
    "orders_desk.approve": {
        ("POST", "open_a+run_a"): of_a(409),
        ("POST", "draft_b+run_b"): of_b(409),
        ("POST", "open_a+run_b"): NOBODY,
    },
    "orders_desk.orders": by_target("GET", per_action(of_a(), of_b())),
    # --- deposits --------------------------------------------------------------------------
    # Without Stripe keys (the embedded default) the pay button says to transfer (302) and
    # the webhook does not exist. pay_a/pay_b are unpaid deposits of reg_a/reg_b.
    "payments.deposit": {
        ("GET", "pay_a"): owner("resident_a"),
        ("GET", "pay_b"): owner("resident_b"),
    },
    "payments.pay": {
        ("POST", "pay_a"): only({"resident_a": 302}),
        ("POST", "pay_b"): only({"resident_b": 302}),
    },
    "payments.stripe_webhook": {("POST", ""): everyone(404)},
    "payments_desk.overview": by_target("GET", per_action(of_a(), of_b())),
    # An empty post of the deposit form gets its errors.
    "payments_desk.settings": {
        **by_target("GET", per_action(of_a(), of_b())),
        **by_target("POST", per_action(of_a(), of_b())),
    },
    "payments_desk.export": {("GET", "open_a+csv"): of_a(), ("GET", "draft_b+csv"): of_b()},
    # Refunding everything is for cancelled actions only.
    "payments_desk.refund_all": by_target("POST", per_action(of_a(409), of_b(409))),
    "payments_desk.detail": {("GET", "pay_a"): of_a(), ("GET", "pay_b"): of_b()},
    # An empty post has no amount (its error, 200); an unpaid deposit cannot be refunded (409).
    "payments_desk.received": {("POST", "pay_a"): of_a(), ("POST", "pay_b"): of_b()},
    "payments_desk.refund": {("POST", "pay_a"): of_a(409), ("POST", "pay_b"): of_b(409)},
    "payments_desk.refunded": {("POST", "pay_a"): of_a(409), ("POST", "pay_b"): of_b(409)},
    "actions_desk.create_neighbourhood": {("GET", ""): ANY_STAFF, ("POST", ""): ANY_STAFF},
    # --- the installer's portal -------------------------------------------------------------
    **{
        endpoint: {("GET", ""): only(roles(INSTALLERS))}
        for endpoint in ("portal.home", "portal.orders", "portal.orders_csv", "portal.calendar")
    },
    # A new secret for the company's feed; back to the page that shows it.
    "portal.renew_calendar": {("POST", ""): only(roles(INSTALLERS, 302))},
    # Calendar apps cannot log in: the secret in the address is the permission, for anyone.
    # (The feed's route comes before the renewal's in the URL map, so it is tried first.)
    "portal.calendar_feed": {("GET", "cal_a"): everyone(200), ("GET", "bogus_key"): everyone(404)},
    "portal.order": {
        ("GET", "order_a"): only({"installer": 200}),
        ("GET", "order_b"): only({"installer_b": 200}),
    },
    # The orders are accepted already (409); a decline without a reason gets its error.
    "portal.accept_order": {
        ("POST", "order_a"): only({"installer": 409}),
        ("POST", "order_b"): only({"installer_b": 409}),
    },
    "portal.decline_order": {
        ("POST", "order_a"): only({"installer": 200}),
        ("POST", "order_b"): only({"installer_b": 200}),
    },
    # An empty post of a household's form gets the form's errors.
    **{
        endpoint: {
            **{(m, "line_a"): only({"installer": 200}) for m in ("GET", "POST")},
            **{(m, "line_b"): only({"installer_b": 200}) for m in ("GET", "POST")},
        }
        for endpoint in (
            "portal.plan_survey",
            "portal.send_quote",
            "portal.plan_installation",
            "portal.mark_installed",
        )
    },
    # An empty bid offers nothing: refused with its message.
    "tenders_portal.bid": {
        ("GET", "inv_a"): only({"installer": 200}),
        ("GET", "inv_b"): only({"installer_b": 200}),
        ("POST", "inv_a"): only({"installer": 409}),
        ("POST", "inv_b"): only({"installer_b": 409}),
    },
    # --- the resident's steps in the work on their home --------------------------------------
    "orders.quote": {
        ("GET", "quote_a"): owner("resident_a"),
        ("GET", "quote_b"): owner("resident_b"),
    },
    # The quotes have expired: accepting or declining is refused (409) and changes nothing.
    "orders.accept_quote": {
        ("POST", "quote_a"): only({"resident_a": 409}),
        ("POST", "quote_b"): only({"resident_b": 409}),
    },
    "orders.decline_quote": {
        ("GET", "quote_a"): owner("resident_a"),
        ("GET", "quote_b"): owner("resident_b"),
        ("POST", "quote_a"): only({"resident_a": 409}),
        ("POST", "quote_b"): only({"resident_b": 409}),
    },
    # No survey is planned: an empty request gets its error (200) first.
    "orders.survey_change": {
        (m, f"line_{x}"): owner(f"resident_{x}") for m in ("GET", "POST") for x in "ab"
    },
    # Nothing is installed yet: confirming (with no rating, which is fine) is refused.
    "orders.confirm": {
        ("GET", "line_a"): owner("resident_a"),
        ("GET", "line_b"): owner("resident_b"),
        ("POST", "line_a"): only({"resident_a": 409}),
        ("POST", "line_b"): only({"resident_b": 409}),
    },
    # Nothing is confirmed yet: the page says so; a post without a rating gets its error.
    "orders.rate": {
        (m, f"line_{x}"): owner(f"resident_{x}") for m in ("GET", "POST") for x in "ab"
    },
    "actions_desk.edit_neighbourhood": {
        **{(m, "nb_a"): of_a() for m in ("GET", "POST")},
        **{(m, "nb_b"): of_b() for m in ("GET", "POST")},
    },
}


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: who may open what does not depend on the database, and the matrix makes
    about a thousand requests (each role on a fresh world), too many to repeat on PostgreSQL."""
    path = tmp_path / "coop.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    target: str  # "" for a URL without parameters; "open_a+offer_a" for two
    url: str


def value_of(parameter: str, target: str, world: dict[str, Any]) -> Any:
    """What goes in the URL: an action is named by its slug on public pages, else by its id."""
    if parameter == "slug":
        return world["slugs"][target]
    return world["objects"][target]


def cases_of(rule: Rule, world: dict[str, Any]) -> tuple[list[Case], str | None]:
    """The requests that try ``rule``; or why it cannot be tried."""
    parameters = tuple(sorted(rule.arguments, key=rule.rule.index))
    combinations = TARGETS.get(parameters)
    if combinations is None:
        return [], f"no test objects for the parameters {parameters} (add them to TARGETS)"
    cases = []
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        for combination in combinations:
            values = {
                p: value_of(p, o, world) for p, o in zip(parameters, combination, strict=True)
            }
            url = rule.build(values)[1]  # type: ignore[index]
            cases.append(Case(rule.endpoint, method, "+".join(combination), url))
    return cases, None


def all_cases(app: Flask, world: dict[str, Any]) -> list[Case]:
    """Every request to try; fails when the table does not say what one of them should give."""
    cases: list[Case] = []
    missing: list[str] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        rule_cases, problem = cases_of(rule, world)
        if problem:
            missing.append(f"{rule.endpoint} {rule.rule}: {problem}")
        table = EXPECTED.get(rule.endpoint, {})
        for case in rule_cases:
            entry = table.get((case.method, case.target))
            if entry is None:
                missing.append(f"{case.endpoint}: no entry for ({case.method!r}, {case.target!r})")
            elif set(entry) != set(ROLES):
                missing.append(f"{case.endpoint} {case.method} {case.target}: not every role")
        cases += rule_cases
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing += [f"{e}: in EXPECTED but no such route" for e in EXPECTED if e not in endpoints]
    if missing:
        pytest.fail(
            "Authorisation table incomplete:\n" + "\n".join(sorted(set(missing))), pytrace=False
        )
    return cases


def household(number: int) -> Household:
    return Household(
        postcode="3524 BA",
        house_number=number,
        house_number_addition="",
        street="Hondsrug",
        city="Utrecht",
        dwelling_type=DwellingType.TERRACED,
        build_year=1978,
        ownership=Ownership.OWNER,
    )


def confirmed_registration(act: Action, number: int, resident: User) -> Registration:
    now = utcnow()
    return Registration(
        action=act,
        household=household(number),
        user=resident,
        status=RegistrationStatus.CONFIRMED,
        consent_at=now,
        consent_version="test",
        created_at=now,
        measures=[RegistrationMeasure(action_measure_id=act.measures[0].id, quantity=40)],
        history=[StatusChange(to_status=RegistrationStatus.CONFIRMED, at=now)],
    )


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    return build_world(app)


def build_world(app: Flask) -> dict[str, Any]:
    """Two desks, each with actions, a neighbourhood, an installer, an update and an invited
    colleague; a resident with a registration at each; staff of both and an installer user."""
    with app.app_context():
        orgs = {
            "a": factories.organisation("Energieloket Utrecht"),
            "b": factories.organisation("Energiecoöperatie Zeist"),
        }
        open_a = factories.action(orgs["a"], slug="samen-isoleren")
        open_b = factories.action(orgs["b"], slug="zeist-isoleert")
        draft_b = factories.action(orgs["b"], slug="plannen-zeist", status=ActionStatus.DRAFT)
        users = {
            "staff_a": factories.staff(orgs["a"], "staff-a@example.nl"),
            "staff_a_member": factories.staff(orgs["a"], "member-a@example.nl"),
            "staff_b": factories.staff(orgs["b"], "staff-b@example.nl"),
        }
        users["staff_a"].is_desk_admin = True
        users["staff_b"].is_desk_admin = True
        objects: dict[str, Any] = {}
        for key, org in orgs.items():
            installer = Installer(
                organisation_id=org.id,
                company_name=f"Isolatie {key.upper()} BV",
                kvk_number="12345678",
                email=f"info@isolatie-{key}.example",
                city="Utrecht",
            )
            neighbourhood = Neighbourhood(
                organisation_id=org.id,
                name=f"Wijk {key.upper()}",
                municipality=org.municipality,
                postcode_areas="3524",
            )
            update = SegmentUpdate(
                organisation_id=org.id,
                action_id=(open_a if key == "a" else open_b).id,
                subject_nl="Informatieavond",
                subject_en="Information evening",
                body_nl="Kom ook.",
                body_en="Do come.",
            )
            invited = User(
                email=f"invited-{key}@example.nl",
                name=f"Invited {key.upper()}",
                role=Role.STAFF,
                organisation_id=org.id,
            )
            resident = User(email=f"resident-{key}@example.nl", name=f"Resident {key.upper()}")
            registration = confirmed_registration(
                open_a if key == "a" else open_b, ord(key), resident
            )
            db.session.add_all([installer, neighbourhood, update, invited, resident, registration])
            db.session.flush()
            target = open_a if key == "a" else draft_b
            tender = TenderRound(
                action_id=target.id, deadline=utcnow() + timedelta(days=3), opened_by_id=None
            )
            # Not the measure the matrix removes from draft_b (remove_measure): the second one.
            batch = Batch(action_id=target.id, action_measure_id=target.measures[1].id, pc4="3524")
            db.session.add_all([tender, batch])
            db.session.flush()
            run = MatchingRun(
                action_id=target.id,
                trigger=RunTrigger.STAFF,
                status=RunStatus.PROPOSED,
                proposals=[
                    ProposedAssignment(
                        batch_id=batch.id,
                        installer_id=installer.id,
                        homes=1,
                        quantity=40,
                        unit_price_cents=4000,
                        cost_cents=160000,
                    )
                ],
            )
            db.session.add(run)
            db.session.flush()
            # An accepted order of this desk's installer with the resident's home in it, quoted
            # with a quote that expired yesterday; and the installer's invitation to the round.
            now = utcnow()
            order = Order(
                action_id=target.id,
                batch_id=batch.id,
                installer_id=installer.id,
                run_id=run.id,
                status=OrderStatus.ACCEPTED,
                unit_price_cents=4000,
                sent_at=now,
                respond_by=now + timedelta(days=5),
                answered_at=now,
                lines=[
                    OrderLine(
                        registration=registration,
                        registration_measure=registration.measures[0],
                        quantity=40,
                        status=LineStatus.QUOTED,
                        quotes=[
                            Quote(
                                valid_until=(now - timedelta(days=2)).date(),
                                total_excl_vat_cents=160000,
                                vat_cents=14400,
                                total_cents=174400,
                                items=[
                                    QuoteItem(
                                        position=1,
                                        description="Dakisolatie",
                                        quantity=40,
                                        unit_price_cents=4000,
                                        vat_rate=9,
                                    )
                                ],
                            )
                        ],
                    )
                ],
            )
            invitation = TenderInvitation(round_id=tender.id, installer_id=installer.id)
            db.session.add_all([order, invitation])
            db.session.flush()
            users[f"resident_{key}"] = resident
            objects |= {
                f"inst_{key}": installer.id,
                f"nb_{key}": neighbourhood.id,
                f"upd_{key}": update.id,
                f"member_{key}": invited.id,
                f"reg_{key}": registration.id,
                f"round_{key}": tender.id,
                f"run_{key}": run.id,
                f"batch_{key}": batch.id,
                f"order_{key}": order.id,
                f"line_{key}": order.lines[0].id,
                f"quote_{key}": order.lines[0].quotes[0].id,
                f"inv_{key}": invitation.id,
            }
            payment = Payment(
                action_id=registration.action_id,
                registration_id=registration.id,
                mode=PaymentMode.OFFLINE,
                amount_cents=25000,
            )
            db.session.add(payment)
            db.session.flush()
            payment.reference = reference_for(payment.id)
            objects[f"pay_{key}"] = payment.id
        objects |= participation_world(open_a, open_b, objects, users)
        users["installer"] = User(
            email="fitter@isolatie-a.example",
            name="Fatima Fitter",
            role=Role.INSTALLER,
            installer_id=objects["inst_a"],
            password_hash=factories.password_hash(),
        )
        users["installer_b"] = User(
            email="planner@isolatie-b.example",
            name="Bas Planner",
            role=Role.INSTALLER,
            installer_id=objects["inst_b"],
        )
        installer_a = db.session.get(Installer, objects["inst_a"])
        assert installer_a is not None
        installer_a.calendar_key = "calendar-key-of-installer-a-0123456789"
        db.session.add_all([users["installer"], users["installer_b"]])
        db.session.commit()
        objects |= {
            **{
                f"vat_{desk}": next(
                    rate.id for rate in factories.vat_rates(org) if rate.percent == 21
                )
                for desk, org in orgs.items()
            },
            "open_a": open_a.id,
            "draft_b": draft_b.id,
            "offer_a": open_a.measures[0].id,
            "offer_b": draft_b.measures[0].id,
            "kind": "confirm_registration",
            "nl": "nl",
            "csv": "csv",
            "bogus_token": "not-a-real-token",
            "cal_a": "calendar-key-of-installer-a-0123456789",
            "bogus_key": "not-the-key-of-anyone-0123456789",
            "en": "en",
        }
        slugs = {"open_a": open_a.slug, "draft_b": draft_b.slug}
        return {
            "users": {role: user.id for role, user in users.items()},
            "objects": objects,
            "slugs": slugs,
        }


def participation_world(
    open_a: Action, open_b: Action, objects: dict[str, Any], users: dict[str, User]
) -> dict[str, int]:
    """A meeting, a survey and an interest campaign per desk, a neighbourhood page for each
    (A's public), and each resident's ambassadorship of their street (A's approved)."""
    from coop.participation.models import (
        Ambassador,
        AmbassadorStatus,
        NeighbourhoodProfile,
        SurveyStatus,
    )

    made: dict[str, int] = {}
    for key, act in (("a", open_a), ("b", open_b)):
        org = act.organisation
        neighbourhood = db.session.get(Neighbourhood, objects[f"nb_{key}"])
        meeting = factories.meeting(org)
        survey = factories.survey(neighbourhood, open_=(key == "a"))
        if key == "b":
            assert survey.status is SurveyStatus.DRAFT
            survey.questions.clear()
        campaign = factories.campaign(neighbourhood)
        db.session.add(
            NeighbourhoodProfile(neighbourhood_id=neighbourhood.id, is_public=key == "a")
        )
        role = Ambassador(
            user_id=users[f"resident_{key}"].id,
            neighbourhood_id=neighbourhood.id,
            street="Hondsrug",
            pc4="3524",
            status=AmbassadorStatus.ACTIVE if key == "a" else AmbassadorStatus.VOLUNTEERED,
        )
        db.session.add(role)
        db.session.commit()
        made |= {
            f"meet_{key}": meeting.id,
            f"survey_{key}": survey.id,
            f"camp_{key}": campaign.id,
            f"amb_{key}": role.id,
        }
    return made


def act_as(client: FlaskClient, user_id: int | None) -> None:
    sign_in(client, user_id)


def outcome(response: Any) -> Expected:
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location.split("?")[0] == "/login":
        return LOGIN
    return int(response.status_code)


def test_every_route_has_an_entry_in_the_table(app: Flask, world: dict[str, Any]) -> None:
    assert all_cases(app, world)


def test_the_table_fails_for_a_route_without_an_entry(app: Flask, world: dict[str, Any]) -> None:
    app.add_url_rule("/secret-new-page", "core.secret_new_page", lambda: "hello")
    with pytest.raises(pytest.fail.Exception, match=r"core\.secret_new_page: no entry"):
        all_cases(app, world)


# One run per role, each on a fresh world: an allowed POST (publish, close, send...) changes
# things, and must not change what the next role is shown.
@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_the_role_as_the_table_says(
    app: Flask, world: dict[str, Any], role: str
) -> None:
    try:
        cases = all_cases(app, world)
    except pytest.fail.Exception:
        pytest.skip("the table is incomplete; see test_every_route_has_an_entry_in_the_table")
    client = app.test_client()
    user_id = world["users"].get(role)
    # A valid CSRF token on every POST, so the answer is about who asks, not about the token.
    # It lives in the session, which keeps it whoever is logged in.
    token = factories.csrf_token(client, "/login")
    wrong: list[str] = []
    act_as(client, user_id)
    for case in cases:
        if case.method == "POST":
            response = client.post(case.url, data={"csrf_token": token})
        else:
            response = client.open(case.url, method=case.method)
        response.get_data()  # a streamed download runs to its end inside its own request
        response.close()
        if case.endpoint == "accounts.logout" and response.status_code == 302:
            # Logged out, with a new session (and CSRF token): log in again for the next pages.
            token = factories.csrf_token(client, "/login")
            act_as(client, user_id)
        expected = EXPECTED[case.endpoint][(case.method, case.target)][role]
        got = outcome(response)
        if got != expected:
            wrong.append(
                f"{case.method:4} {case.url} ({case.target}): expected {expected}, got {got}"
            )
        # Pages with personal data, exports, feeds: no browser or proxy keeps a copy (every
        # answer, so that no page is forgotten).
        if "no-store" not in response.headers.get("Cache-Control", ""):
            wrong.append(f"{case.method:4} {case.url}: Cache-Control is not no-store")
    if wrong:
        # (pytrace=False: the report is the list; CPython 3.11 trips over this file's source.)
        pytest.fail(f"as {role}:\n" + "\n".join(wrong), pytrace=False)
    if role not in STAFF:
        # Trying everything changed nothing: nobody withdrew, erased or edited anything.
        with app.app_context():
            for key in ("reg_a", "reg_b"):
                registration = db.session.get(Registration, world["objects"][key])
                assert registration is not None
                assert registration.status is RegistrationStatus.CONFIRMED
                assert [m.quantity for m in registration.measures] == [40]
            for key in ("pay_a", "pay_b"):
                payment = db.session.get(Payment, world["objects"][key])
                assert payment is not None and payment.status is PaymentStatus.PENDING
            for key in ("vat_a", "vat_b"):
                rate = db.session.get(VatRate, world["objects"][key])
                assert rate is not None and rate.valid_until is None


@pytest.mark.parametrize("app_config", [{"DEV_MAILBOX": False}])
def test_dev_mailbox_is_gone_without_dev_mailbox(app: Flask, world: dict[str, Any]) -> None:
    for role in ROLES:
        client = app.test_client()
        act_as(client, world["users"].get(role))
        assert client.get("/dev/mailbox").status_code == 404, role
