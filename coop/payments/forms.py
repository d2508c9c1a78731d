"""Forms of payments: the deposit an action asks, and staff's record of a bank transfer."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from coop.actions.forms import LocalDateField
from coop.actions.models import Action
from coop.core.formatting import format_euros
from coop.core.forms import EuroField, PlainText, strip
from coop.core.time import AMSTERDAM, utcnow
from coop.payments.services import (
    MAX_DEPOSIT_PERCENT,
    DepositPolicy,
    format_iban,
    normalise_iban,
    policy_of,
)


class Percent(StringField):
    """A whole percentage, "10" or "10 %"; ``value`` holds it once the form validated."""

    value: int | None = None

    def pre_validate(self, form: Any) -> None:
        self.value = None
        raw = (self.data or "").strip().rstrip("%").strip()
        if not raw:
            return
        if not re.fullmatch(r"\d{1,3}", raw):
            raise ValidationError(_l("Enter a whole number of percent, like 10."))
        value = int(raw)
        if not 1 <= value <= MAX_DEPOSIT_PERCENT:
            raise ValidationError(
                _l(
                    "Enter a percentage from 1 to %(most)d: a resident can be asked at most "
                    "half in advance.",
                    most=MAX_DEPOSIT_PERCENT,
                )
            )
        self.value = value


class Iban:
    def __call__(self, form: Any, field: Any) -> None:
        if field.data and normalise_iban(field.data) is None:
            raise ValidationError(
                _l("Enter a valid IBAN, like NL91 ABNA 0417 1643 00 (check the digits).")
            )


KIND_CHOICES = [
    SelectChoice("none", _l("No deposit")),
    SelectChoice("fixed", _l("A fixed amount")),
    SelectChoice("percent", _l("A percentage of the quote")),
]


class DepositPolicyForm(FlaskForm):
    kind = RadioField(
        _l("Deposit when a resident accepts a quote"),
        choices=KIND_CHOICES,
        validators=[InputRequired(_l("Choose whether a deposit is asked."))],
    )
    amount = EuroField(
        _l("Fixed amount"),
        description=_l("In euros, like 250. Never more than half the quote is asked."),
    )
    percent = Percent(
        _l("Percentage of the quote"),
        description=_l("Of the quote's total including VAT, at most 50."),
    )
    iban = StringField(
        _l("IBAN for bank transfers"),
        description=_l(
            "Where residents transfer the deposit when coop works without Stripe. Needed then."
        ),
        filters=[strip],
        validators=[Length(max=42, message=_l("Use at most 42 characters.")), Iban()],
    )
    account_name = StringField(
        _l("Account holder"),
        description=_l("The name that goes with the IBAN."),
        filters=[strip],
        validators=[Length(max=70, message=_l("Use at most 70 characters.")), PlainText()],
    )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if self.kind.data == "fixed" and not self.amount.errors and self.amount.cents is None:
            self.amount.errors = [*self.amount.errors, _l("Enter the amount of the deposit.")]
            valid = False
        if self.kind.data == "percent" and not self.percent.errors and self.percent.value is None:
            self.percent.errors = [*self.percent.errors, _l("Enter the percentage.")]
            valid = False
        return valid

    def policy(self) -> DepositPolicy:
        kind = self.kind.data or "none"
        return DepositPolicy(
            kind=kind,
            amount_cents=self.amount.cents if kind == "fixed" else None,
            percent=self.percent.value if kind == "percent" else None,
            iban=self.iban.data or None,
            account_name=self.account_name.data or None,
        )

    def fill_from(self, action: Action) -> None:
        policy = policy_of(action)
        self.kind.data = policy.kind
        self.amount.data = format_euros(policy.amount_cents)
        self.percent.data = str(policy.percent) if policy.percent else ""
        self.iban.data = format_iban(policy.iban)
        self.account_name.data = policy.account_name or ""


class ReceivedForm(FlaskForm):
    """Offline mode: what arrived on the account and on which day, as the bank statement says."""

    amount = EuroField(
        _l("Amount received"),
        description=_l("As on the bank statement. Another amount than asked is flagged."),
        validators=[InputRequired(_l("Enter the amount that arrived."))],
    )
    received_on = LocalDateField(
        _l("Date it arrived"),
        description=_l(
            "The date on the bank statement, like 2026-12-31 (today if left empty). The "
            "resident's cooling-off period counts from that day."
        ),
    )

    def validate_received_on(self, field: LocalDateField) -> None:
        if field.value is not None and field.value > utcnow().astimezone(AMSTERDAM).date():
            raise ValidationError(_l("The money cannot have arrived after today."))

    def fill_today(self) -> None:
        if not self.received_on.data:
            self.received_on.data = utcnow().astimezone(AMSTERDAM).date().isoformat()


class ButtonForm(FlaskForm):
    """A button that changes something: only the CSRF token."""
