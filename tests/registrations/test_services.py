"""The rules of a registration: one per household, registering again, participant counts and
group price tiers, the confirmation reminder and expiry, and what is refused once it is too late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from coop.accounts.models import LoginPurpose, LoginToken, User
from coop.accounts.services import login_link
from coop.actions.models import Action
from coop.core import jobs
from coop.core.models import EmailLog
from coop.core.time import utcnow
from coop.extensions import db
from coop.registrations import services
from coop.registrations.models import (
    DwellingType,
    Household,
    Ownership,
    Registration,
    RegistrationStatus,
    StatusChange,
)
from coop.residents import services as residents
from tests import factories
from tests.login import sign_in


def sign_up(
    act: Action,
    *,
    email: str = "anna@example.nl",
    house_number: int = 12,
    addition: str = "A",
    quantity: int = 45,
    now: datetime | None = None,
) -> Registration:
    """A sign-up through the service, as the form would hand it over."""
    data = services.RegistrationInput(
        name="Anna de Vries",
        email=email,
        phone=None,
        address=services.Address(
            postcode="3524 BA",
            house_number=house_number,
            addition=addition,
            street="Hondsrug",
            city="Utrecht",
        ),
        dwelling=services.Dwelling(DwellingType.TERRACED, 1978, Ownership.OWNER, None),
        measures={act.measures[0].id: quantity},
        consent=True,
    )
    return services.register(act, data, now=now)


def confirmation_link_path(registration: Registration) -> str:
    token = db.session.scalars(
        select(LoginToken)
        .where(
            LoginToken.registration_id == registration.id,
            LoginToken.purpose == LoginPurpose.CONFIRM_REGISTRATION,
        )
        .order_by(LoginToken.id.desc())
    ).first()
    assert token is not None
    return login_link(token).removeprefix("http://localhost")


def count(model: type[Any], *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def emails(template: str, to: str | None = None) -> list[EmailLog]:
    query = select(EmailLog).where(EmailLog.template == template)
    if to is not None:
        query = query.where(EmailLog.recipient == to)
    return list(db.session.scalars(query.order_by(EmailLog.id)))


def log_in(client: FlaskClient, user_id: int) -> None:
    sign_in(client, user_id)


# --- one registration per household ------------------------------------------------------


def test_second_sign_up_for_the_same_household_gets_a_login_link_to_the_first_email(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        slug = act.slug
        first = factories.registration_form(act)
        form = factories.registration_form(act, name="Bert Bakker")
    url = f"/actions/{slug}/register"
    assert factories.post_form(client, url, first).status_code == 302
    with app.app_context():
        registration_id = db.session.scalars(select(Registration)).one().id

    # Another person of the household, another email, the address spelled differently.
    for email, postcode, addition in [
        ("bert@example.nl", "3524ba", "A"),
        ("ANNA@Example.NL", " 3524  BA ", "a"),
        ("bert@example.nl", "3524 bA", "-a"),
    ]:
        other = {**form, "email": email, "postcode": postcode, "house_number_addition": addition}
        response = factories.post_form(client, url, other)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert f'action="/actions/{slug}/register/send-access"' in page, page
        with app.app_context():
            assert count(Registration) == 1
            assert count(Household) == 1
            assert count(User) == 1
            # The first registrant's details are not overwritten by the second attempt.
            assert db.session.scalars(select(User)).one().name == "Anna de Vries"

    # "Send me the login link": it goes to the email of the existing registration only.
    response = factories.post_form(
        client, f"/actions/{slug}/register/send-access", {}, token_from=url
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/sent"
    with app.app_context():
        [login_mail] = emails("login_link")
        assert login_mail.recipient == "anna@example.nl"
        assert not db.session.scalars(
            select(EmailLog).where(EmailLog.recipient.like("bert%"))
        ).all()
        token = db.session.scalars(
            select(LoginToken).where(LoginToken.purpose == LoginPurpose.LOGIN)
        ).one()
        path = login_link(token).removeprefix("http://localhost")
    # The link logs in the first registrant and opens that registration.
    response = factories.post_form(client, path, {})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/my/registrations/{registration_id}"
    assert client.get(response.headers["Location"]).status_code == 200

    # The button is not a way to send mail to anyone at will: without the session's
    # registration it sends nothing.
    fresh = app.test_client()
    response = factories.post_form(
        fresh, f"/actions/{slug}/register/send-access", {}, token_from=url
    )
    assert response.status_code == 302
    with app.app_context():
        assert len(emails("login_link")) == 1
    # Without a mail server (development) the messages can be read on the mailbox page.
    mailbox = client.get("/dev/mailbox").get_data(as_text=True)
    assert path in mailbox
    assert "anna@example.nl" in mailbox


def test_household_that_withdrew_registers_again_on_the_same_row(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        first = sign_up(act)
        first_id = first.id
        old_link = confirmation_link_path(first)
        residents.withdraw(first, "Not now.", actor=first.user)

        again = sign_up(act, email="bert@example.nl", quantity=30)
        assert again.id == first_id
        assert again.status is RegistrationStatus.PENDING_CONFIRMATION
        assert again.user.email == "bert@example.nl"
        assert again.withdrawal_reason is None
        assert [rm.quantity for rm in again.measures] == [30]
        assert [c.to_status for c in again.history] == [
            RegistrationStatus.PENDING_CONFIRMATION,
            RegistrationStatus.WITHDRAWN,
            RegistrationStatus.PENDING_CONFIRMATION,
        ]
        assert count(Registration) == 1
        assert count(Household) == 1
        new_link = confirmation_link_path(again)
        assert new_link != old_link

    # The first round's unused link must not confirm the second round (someone else's).
    assert client.get(old_link).status_code == 400  # says so on opening
    response = factories.post_form(client, old_link, {}, token_from="/login")
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Registration, first_id).status is (
            RegistrationStatus.PENDING_CONFIRMATION
        )
    response = factories.post_form(client, new_link, {})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Registration, first_id).status is RegistrationStatus.CONFIRMED


def test_only_registrations_that_are_not_over_can_be_joined_again(app: Flask) -> None:
    with app.app_context():
        act = factories.action()
        registration = sign_up(act)
        assert services.confirm(registration)
        db.session.commit()
        with pytest.raises(services.RegistrationError) as refused:
            sign_up(act, email="bert@example.nl")
        assert refused.value.code == "already_registered"
        assert refused.value.registration is not None
        assert refused.value.registration.id == registration.id
        assert count(User) == 1


# --- participants and the group price ---------------------------------------------------


def test_confirmed_registrations_count_towards_participants_and_price_tiers(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        slug = act.slug
        pending = [sign_up(act, house_number=n) for n in (1, 2, 3)]
        pending_ids = [r.id for r in pending]
    client.get("/language/en")

    page = client.get(f"/actions/{slug}").get_data(as_text=True)
    # Unconfirmed sign-ups do not count yet.
    assert "0 households take part" in page
    assert "Reached" not in page
    assert "2 more households and the price drops to €45.00." in page

    with app.app_context():
        for registration_id in pending_ids[:2]:
            assert services.confirm(db.session.get(Registration, registration_id))
        db.session.commit()
    page = client.get(f"/actions/{slug}").get_data(as_text=True)
    assert "2 households take part" in page
    assert "2 households want this measure." in page
    assert "Reached: current price" in page
    assert "3 more households and the price drops to €40.00." in page

    # A withdrawal takes the household out of the count again.
    with app.app_context():
        registration = db.session.get(Registration, pending_ids[0])
        residents.withdraw(registration, "Changed plans.", actor=registration.user)
    page = client.get(f"/actions/{slug}").get_data(as_text=True)
    assert "1 household takes part" in page
    assert "Reached" not in page


# --- reminder and expiry of unconfirmed registrations ------------------------------------


def test_one_reminder_after_the_delay_and_never_a_second(ctx: Flask) -> None:
    act = factories.action()
    t0 = utcnow()
    pending = sign_up(act, now=t0)
    confirmed = sign_up(act, house_number=14, now=t0)
    services.confirm(confirmed)
    db.session.commit()
    jobs.dispatcher().run_pending()
    hours = ctx.config["CONFIRMATION_REMINDER_AFTER_HOURS"]

    assert services.send_reminders(now=t0 + timedelta(hours=hours) - timedelta(minutes=1)) == 0
    assert services.send_reminders(now=t0 + timedelta(hours=hours)) == 1
    jobs.dispatcher().run_pending()
    assert services.send_reminders(now=t0 + timedelta(hours=hours + 1)) == 0
    assert services.send_reminders(now=t0 + timedelta(hours=hours + 30)) == 0
    jobs.dispatcher().run_pending()

    [reminder] = emails("confirmation_reminder")
    assert reminder.recipient == "anna@example.nl"
    assert reminder.user_id == pending.user_id
    # The reminder carries the same link as the first email.
    assert confirmation_link_path(pending) in (reminder.body_text or "")
    assert db.session.get(Registration, pending.id).reminder_sent_at is not None
    assert db.session.get(Registration, confirmed.id).reminder_sent_at is None


def test_expiry_waits_for_the_period_and_for_a_day_after_the_reminder(ctx: Flask) -> None:
    act = factories.action()
    remind_after = timedelta(hours=ctx.config["CONFIRMATION_REMINDER_AFTER_HOURS"])
    expire_after = timedelta(hours=ctx.config["CONFIRMATION_EXPIRES_AFTER_HOURS"])
    day = timedelta(hours=24)
    assert remind_after + day < expire_after
    t0 = utcnow()
    on_time = sign_up(act, house_number=1, now=t0)
    late = sign_up(act, house_number=2, now=t0 + timedelta(hours=1))
    unreminded = sign_up(act, house_number=3, now=t0 + timedelta(days=6))

    # ``on_time`` is reminded when due; then the scheduler is down until just before the end,
    # so ``late`` gets its reminder with less than a day to go.
    assert services.send_reminders(now=t0 + remind_after) == 1
    assert services.send_reminders(now=t0 + expire_after) == 1
    assert db.session.get(Registration, late.id).reminder_sent_at == t0 + expire_after
    # The reminded link works for the whole day of grace, as the reminder promises.
    late_token = db.session.scalars(
        select(LoginToken).where(LoginToken.registration_id == late.id)
    ).one()
    assert late_token.expires_at >= t0 + expire_after + day

    assert services.expire_unconfirmed(now=t0 + expire_after - timedelta(seconds=1)) == 0
    assert services.expire_unconfirmed(now=t0 + expire_after) == 1
    assert db.session.get(Registration, on_time.id).status is RegistrationStatus.EXPIRED
    assert db.session.get(Registration, late.id).status is RegistrationStatus.PENDING_CONFIRMATION

    # ``late``: past the period, but its day of grace after the reminder is not over yet.
    assert services.expire_unconfirmed(now=t0 + expire_after + day - timedelta(seconds=1)) == 0
    assert services.expire_unconfirmed(now=t0 + expire_after + day) == 1
    assert db.session.get(Registration, late.id).status is RegistrationStatus.EXPIRED

    # Without its one reminder a registration does not lapse, however long it waits.
    assert services.expire_unconfirmed(now=t0 + timedelta(days=60)) == 0
    assert db.session.get(Registration, unreminded.id).status is (
        RegistrationStatus.PENDING_CONFIRMATION
    )
    expired = db.session.get(Registration, on_time.id)
    assert [c.to_status for c in expired.history] == [
        RegistrationStatus.PENDING_CONFIRMATION,
        RegistrationStatus.EXPIRED,
    ]
    assert expired.history[-1].actor_id is None


def test_an_expired_registration_is_not_confirmed_by_its_old_link(
    app: Flask, client: FlaskClient
) -> None:
    # Everything happened in the past, so the link is clicked at the real time.
    with app.app_context():
        act = factories.action(opens_in_days=-30)
        t0 = utcnow() - timedelta(days=8, hours=1)
        registration = sign_up(act, now=t0)
        registration_id = registration.id
        path = confirmation_link_path(registration)
        assert services.send_reminders(now=t0 + timedelta(hours=48)) == 1
        assert services.expire_unconfirmed() == 1
    client.get("/language/en")
    opened = client.get(path)  # says so at once
    assert opened.status_code == 400
    assert "This link has expired." in opened.get_data(as_text=True)
    response = factories.post_form(client, path, {}, token_from="/login")
    assert response.status_code == 400
    assert "This link has expired." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Registration, registration_id).status is RegistrationStatus.EXPIRED
    assert client.get("/my").status_code == 302  # not logged in either


def test_expiry_ends_the_link_even_when_the_period_was_shortened(
    app: Flask, client: FlaskClient
) -> None:
    # The desk shortened the confirmation period after this link was sent: the link was made
    # for the longer period, but once the registration lapses its link must stop working.
    with app.app_context():
        act = factories.action()
        t0 = utcnow() - timedelta(days=3)
        registration = sign_up(act, now=t0)
        registration_id = registration.id
        path = confirmation_link_path(registration)
        app.config["CONFIRMATION_EXPIRES_AFTER_HOURS"] = 48
        assert services.send_reminders(now=t0 + timedelta(hours=48)) == 1
        assert services.expire_unconfirmed() == 1
    client.get("/language/en")
    opened = client.get(path)  # says so at once
    assert opened.status_code == 400
    assert "This link has expired." in opened.get_data(as_text=True)
    response = factories.post_form(client, path, {}, token_from="/login")
    assert response.status_code == 400, response.headers.get("Location")
    assert "This link has expired." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Registration, registration_id).status is RegistrationStatus.EXPIRED
        assert count(StatusChange, StatusChange.to_status == RegistrationStatus.CONFIRMED) == 0


# --- what is refused once it is too late -------------------------------------------------


def test_details_cannot_be_changed_after_registration_closes(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        act = factories.action()
        roof_id = act.measures[0].id
        registration = sign_up(act)
        services.confirm(registration)
        db.session.commit()
        registration_id, user_id = registration.id, registration.user_id
        act.registration_closes_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    log_in(client, user_id)
    client.get("/language/en")
    edit_url = f"/my/registrations/{registration_id}/edit"

    detail = client.get(f"/my/registrations/{registration_id}").get_data(as_text=True)
    assert f'href="{edit_url}"' not in detail
    assert "your details can no longer be changed here" in detail
    response = client.get(edit_url)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/my/registrations/{registration_id}"
    changed = {
        "name": "Someone Else",
        "dwelling_type": "corner",
        "build_year": "1990",
        "ownership": "owner",
        f"measure_{roof_id}": "y",
        f"quantity_{roof_id}": "99",
    }
    response = factories.post_form(
        client, edit_url, changed, token_from=f"/my/registrations/{registration_id}"
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "This registration can no longer be changed." in page
    with app.app_context():
        registration = db.session.get(Registration, registration_id)
        assert registration.user.name == "Anna de Vries"
        assert [rm.quantity for rm in registration.measures] == [45]
        assert registration.household.build_year == 1978
        with pytest.raises(services.RegistrationError) as refused:
            services.update_details(
                registration,
                name="Someone Else",
                phone=None,
                dwelling=services.Dwelling(DwellingType.CORNER, 1990, Ownership.OWNER, None),
                measures={roof_id: 99},
            )
        assert refused.value.code == "not_editable"


def test_withdrawing_twice_is_refused_cleanly(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        act = factories.action()
        registration = sign_up(act)
        services.confirm(registration)
        db.session.commit()
        registration_id, user_id = registration.id, registration.user_id
    log_in(client, user_id)
    client.get("/language/en")
    url = f"/my/registrations/{registration_id}/withdraw"
    assert factories.post_form(client, url, {"reason": "Too expensive."}).status_code == 302
    # The second attempt (a double submit, or an old tab) reuses the token of the first page.
    token = factories.csrf_token(client, f"/my/registrations/{registration_id}")
    again = client.post(url, data={"reason": "Really.", "csrf_token": token})
    assert again.status_code == 302
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "can no longer be withdrawn here" in page
    assert f'href="{url}"' not in page
    with app.app_context():
        registration = db.session.get(Registration, registration_id)
        assert registration.status is RegistrationStatus.WITHDRAWN
        assert registration.withdrawal_reason == "Too expensive."
        assert count(StatusChange, StatusChange.to_status == RegistrationStatus.WITHDRAWN) == 1
        assert len(emails("registration_withdrawn")) == 1
        with pytest.raises(services.RegistrationError) as refused:
            residents.withdraw(registration, "Again.", actor=registration.user)
        assert refused.value.code == "not_withdrawable"
