"""The web application never loads the matching engine: OR-Tools, SciPy, pandas, NumPy and
Numba cost a web process about 160 MiB and a second of start-up, and only the matching job
needs them (``coop.matching.solve`` imports the engine on first use). Nor does ``create_app()``
load what only a few routes or jobs use (``ON_USE``).

Checked in a fresh interpreter, after building the app and serving the pages that show
matching: the desk's matching page, a proposal, the form that moves a group, and approving it
(whose job runs in the process on the embedded default).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

HEAVY = ("ortools", "scipy", "pandas", "numpy", "numba")
# Loaded by the few routes and jobs that use them, not by every web process: migrations (Alembic
# through Flask-Migrate, 9 MiB), password strength (zxcvbn's word lists, 12 MiB), Stripe (5 MiB),
# Dutch holidays for deadlines (3.6 MiB), calendar files (3 MiB), password hashing (argon2 and
# its cffi bindings; a sign-up never hashes a password) and two-factor codes (pyotp).
ON_USE = (
    "alembic",
    "flask_migrate",
    "zxcvbn",
    "stripe",
    "holidays",
    "icalendar",
    "argon2",
    "pyotp",
)

SCRIPT = r"""
import json, sys

from coop import create_app
from tests.conftest import base_config

app = create_app(base_config(sys.argv[1]))
loaded_by_create_app = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in sys.argv[2:]})

from coop.actions import services as actions
from coop.actions.catalogue import ensure_catalogue
from coop.core import jobs
from coop.extensions import db
from coop.orders import services as orders
from coop.orders.models import MatchingRun, ProposedAssignment, RunStatus, RunTrigger
from tests import factories
from tests.login import sign_in

with app.test_request_context():
    ensure_catalogue()
    org = factories.organisation()
    staff = factories.staff(org)
    act = factories.action(org)
    roofer = factories.installer(org, "Dakwerk Lunetten", area="3521", offers={"roof": (4000, 5)})
    for n in range(1, 4):
        factories.confirmed_registration(act, postcode="3521 AB", number=n)
    actions.close_action(staff, act)
    jobs.dispatcher().run_pending()  # the batches
    homes = orders.unassigned_homes(act.id)
    [batch] = orders.ensure_batches(act, homes).values()
    # The proposal as the matching job stores it (that job, and only it, loads the engine).
    run = MatchingRun(
        action_id=act.id, trigger=RunTrigger.STAFF, status=RunStatus.PROPOSED,
        use_registry_prices=True, progress=100, stage="done",
        homes_total=3, homes_covered=3, cost_cents=4000 * 120, optimal=True,
    )
    run.proposals = [
        ProposedAssignment(
            batch_id=batch.id, installer_id=roofer.id, homes=3, quantity=120,
            unit_price_cents=4000, cost_cents=4000 * 120,
            explanation_en="3521 roof -> Dakwerk Lunetten", explanation_nl="3521 dak",
        )
    ]
    db.session.add(run)
    db.session.commit()
    ids = {"action": act.id, "slug": act.slug, "run": run.id, "batch": batch.id, "staff": staff.id}

client = app.test_client()
statuses = {}
for url in ["/", f"/actions/{ids['slug']}", f"/actions/{ids['slug']}/register"]:
    statuses[url] = client.get(url).status_code
sign_in(client, ids["staff"])
desk = f"/desk/actions/{ids['action']}"
run_url = f"{desk}/matching/{ids['run']}"
for url in ["/desk/", f"{desk}/matching", run_url, f"{run_url}/batches/{ids['batch']}"]:
    statuses[url] = client.get(url).status_code
page = client.get(run_url).get_data(as_text=True)
token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
statuses["approve"] = client.post(f"{run_url}/approve", data={"csrf_token": token}).status_code
for url in [run_url, f"{desk}/orders"]:
    statuses[url] = client.get(url).status_code
with app.app_context():
    approved = db.session.get(MatchingRun, ids["run"]).status.value

heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in sys.argv[2:]})
print(json.dumps({
    "create_app": loaded_by_create_app, "heavy": heavy, "statuses": statuses, "run": approved,
}))
"""


def test_the_web_application_loads_no_solver_and_only_what_its_routes_use(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "coop.sqlite3"
    shutil.copy(sqlite_template, database)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{database}", *HEAVY, *ON_USE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["create_app"] == [], "create_app() imports them"
    assert set(report["statuses"].values()) <= {200, 302}, report["statuses"]
    assert report["run"] == "approved"
    # Approving computes the orders' deadline in working days: only that loads the holidays
    # (argon2: the factory gives the staff member a password).
    assert set(report["heavy"]) <= {"holidays", "argon2"}, "serving the matching pages imports them"
