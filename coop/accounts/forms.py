"""Login forms: the resident's email-only form and the staff/installer password form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp, ValidationError

from coop.core.forms import PersonName, strip


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


class SetPasswordForm(FlaskForm):
    """The invited user's own password. ``email`` is set by the view for the comparison."""

    password = PasswordField(
        _l("New password"),
        description=_l("At least 12 characters. A few unrelated words make a strong password."),
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(min=12, message=_l("Use at least 12 characters.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("Type the password again"),
        validators=[
            DataRequired(_l("Type the password again.")),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
    )

    email: str = ""

    def validate_password(self, field: PasswordField) -> None:
        if field.data and field.data.strip().lower() == self.email.strip().lower():
            raise ValidationError(_l("Do not use your email address as your password."))


class CodeForm(FlaskForm):
    """A six-digit code from the authenticator app."""

    code = StringField(
        _l("Code from your authenticator app"),
        description=_l("Six digits, for example 123456."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the six-digit code.")),
            Regexp(r"^\d{3} ?\d{3}$", message=_l("Enter the six digits of the code.")),
        ],
    )


class InviteForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name of your colleague.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            PersonName(),
        ],
    )
    email = EmailField(
        _l("Email address"),
        description=_l("We email an invitation to this address to choose a password."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter an email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.nl."), check_deliverability=False),
        ],
    )
    is_desk_admin = BooleanField(_l("Desk admin: may invite colleagues and read the audit log"))


class ButtonForm(FlaskForm):
    """A form that is only a button (with its CSRF token)."""


class ChangePasswordForm(FlaskForm):
    """A new password for one's own account; the current one proves it is the owner."""

    current = PasswordField(
        _l("Current password"),
        validators=[
            DataRequired(_l("Enter your current password.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
        ],
    )
    password = PasswordField(
        _l("New password"),
        description=_l("At least 12 characters. A few unrelated words make a strong password."),
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(min=12, message=_l("Use at least 12 characters.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("Type the new password again"),
        validators=[
            DataRequired(_l("Type the password again.")),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
    )

    email: str = ""

    def validate_password(self, field: PasswordField) -> None:
        if field.data and field.data.strip().lower() == self.email.strip().lower():
            raise ValidationError(_l("Do not use your email address as your password."))
