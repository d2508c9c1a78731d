"""Login forms: the resident's email-only form and the staff/installer password form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from coop.core.forms import strip


class LoginLinkForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        description=_l("The address you registered with. We email you a link to log in."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )
    next = HiddenField()


class UseLinkForm(FlaskForm):
    """The button behind a login link: mail scanners open links, only people press buttons."""


class PasswordLoginForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Enter your password.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
        ],
    )


class LogoutForm(FlaskForm):
    pass
