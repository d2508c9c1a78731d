"""The audit log page: desk admins of the organisation only, newest first, paginated, with
who, what, when and the changes as readable "field: old -> new" lines."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from coop.accounts.models import Organisation, User
from coop.actions.models import Action
from coop.core import audit
from coop.core.audit import AuditEntry
from coop.core.time import utcnow
from coop.extensions import db
from tests import factories
from tests.desk.test_dashboard import login, resident
from tests.login import sign_in


@pytest.fixture
def orgs(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Elders")
        action = factories.action(org_a)
        admin = factories.staff(org_a, "admin@utrecht.example.nl")
        admin.is_desk_admin = True
        admin.name = "Ada Admin"
        plain = factories.staff(org_a, "plain@utrecht.example.nl")
        admin_b = factories.staff(org_b, "admin@elders.example.nl")
        admin_b.is_desk_admin = True
        db.session.commit()
        start = utcnow() - timedelta(hours=1)
        entry = audit.record(
            plain,
            org_a.id,
            "action.publish",
            action,
            before={"status": "draft", "closed_at": None},
            after={"status": "open", "closed_at": None},
        )
        entry.at = start
        newer = audit.record(
            admin, org_a.id, "update.compose", action, after={"subject_nl": "Informatieavond"}
        )
        newer.at = start + timedelta(minutes=5)
        secret = audit.record(admin_b, org_b.id, "action.cancel", action, after={"secret": "B's"})
        secret.at = start + timedelta(minutes=10)
        db.session.commit()
        return {
            "org_a": org_a.id,
            "action": action.id,
            "admin": admin.id,
            "plain": plain.id,
            "admin_b": admin_b.id,
            "publish": entry.id,
            "compose": newer.id,
        }


def as_user(app: Flask, client: FlaskClient, user_id: int) -> FlaskClient:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        login(client, user)
    client.get("/language/en")
    return client


def test_admin_reads_who_did_what_when_newest_first(
    app: Flask, client: FlaskClient, orgs: dict[str, Any]
) -> None:
    as_user(app, client, orgs["admin"])
    home = client.get("/desk/").get_data(as_text=True)
    assert 'href="/desk/audit"' in home
    response = client.get("/desk/audit")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'<tr id="entry-(\d+)">', page)]
    assert ids == [orgs["compose"], orgs["publish"]]  # newest first, org B's entry absent
    publish = page.split(f'id="entry-{orgs["publish"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Sanne Staff" in publish and "plain@utrecht.example.nl" in publish
    assert "published an action" in publish and f"Action #{orgs['action']}" in publish
    assert re.search(r"<code>status</code>: draft → open", publish)
    assert re.search(r"<code>closed_at</code>: — → —", publish)
    compose = page.split(f'id="entry-{orgs["compose"]}"', 1)[1].split("</tr>", 1)[0]
    assert "composed an update" in compose and "Ada Admin" in compose
    assert re.search(r"<code>subject_nl</code>: Informatieavond<", compose)
    assert "B&#39;s" not in page and "B's" not in page


def test_staff_who_are_not_admins_get_404(
    app: Flask, client: FlaskClient, orgs: dict[str, Any]
) -> None:
    as_user(app, client, orgs["plain"])
    assert client.get("/desk/audit").status_code == 404
    assert 'href="/desk/audit"' not in client.get("/desk/").get_data(as_text=True)


def test_admin_of_another_organisation_sees_only_their_own(
    app: Flask, client: FlaskClient, orgs: dict[str, Any]
) -> None:
    as_user(app, client, orgs["admin_b"])
    page = client.get("/desk/audit").get_data(as_text=True)
    assert len(re.findall(r'<tr id="entry-', page)) == 1
    assert "cancelled an action" in page and "published an action" not in page
    assert (
        client.get(f"/desk/audit?organisation={orgs['org_a']}")
        .get_data(as_text=True)
        .count('<tr id="entry-')
        == 1
    )


def test_residents_and_visitors_get_no_audit_log(
    app: Flask, client: FlaskClient, orgs: dict[str, Any]
) -> None:
    response = client.get("/desk/audit")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        user = resident("curious@example.nl")
        db.session.commit()
        user_id = user.id
    sign_in(client, user_id)
    assert client.get("/desk/audit").status_code == 404


def test_pages_of_fifty_and_nonsense_page_numbers(
    app: Flask, client: FlaskClient, orgs: dict[str, Any]
) -> None:
    with app.app_context():
        organisation = db.session.get(Organisation, orgs["org_a"])
        action = db.session.get(Action, orgs["action"])
        admin = db.session.get(User, orgs["admin"])
        assert organisation is not None and action is not None and admin is not None
        base = utcnow()
        for index in range(58):
            entry = audit.record(
                admin, organisation.id, "action.update", action, after={"n": index}
            )
            entry.at = base + timedelta(seconds=index)
        db.session.commit()
        newest = db.session.query(AuditEntry.id).order_by(AuditEntry.id.desc()).first()
        assert newest is not None
    as_user(app, client, orgs["admin"])
    first = client.get("/desk/audit").get_data(as_text=True)
    assert len(re.findall(r'<tr id="entry-', first)) == 50
    assert first.index(f'id="entry-{newest[0]}"') < first.index("<code>n</code>: 8<")
    assert 'href="/desk/audit?page=2"' in first and "page=0" not in first
    second = client.get("/desk/audit?page=2").get_data(as_text=True)
    assert len(re.findall(r'<tr id="entry-', second)) == 10  # 60 in all
    assert f'id="entry-{orgs["publish"]}"' in second  # the oldest comes last
    assert 'href="/desk/audit?page=1"' in second and "page=3" not in second
    for nonsense in ("abc", "-5", "0", str(10**30), "1e3"):
        response = client.get(f"/desk/audit?page={nonsense}")
        assert response.status_code == 200, nonsense
        assert len(re.findall(r'<tr id="entry-', response.get_data(as_text=True))) == 50
