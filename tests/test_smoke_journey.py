"""First check that the app serves and a resident can register (quick, both databases)."""

from __future__ import annotations

from sqlalchemy import select

from coop.extensions import db
from coop.registrations.models import Registration, RegistrationStatus
from tests import factories


def test_register_creates_pending_registration_and_confirmation_email(app, client):
    with app.app_context():
        act = factories.action()
        data = factories.registration_form(act)
    url = f"/actions/{act.slug}/register"
    response = factories.post_form(client, url, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        registration = db.session.scalars(select(Registration)).one()
        assert registration.status is RegistrationStatus.PENDING_CONFIRMATION
        assert registration.household.postcode == "3524 BA"
        assert registration.household.house_number_addition == "A"
    mailbox = client.get("/dev/mailbox").get_data(as_text=True)
    assert "/login/" in mailbox
