"""The baseline of ``bench/signup.py``: a bare Flask + SQLAlchemy app whose sign-up is one
INSERT. It has what any form on the web needs and nothing else: a page with a form and its CSRF
token (Flask-WTF, in the session cookie), and a POST that checks the token and the fields,
inserts one row, commits and redirects. Run by gunicorn exactly as coop is:

    BARE_DATABASE_URL=postgresql+psycopg://... gunicorn --preload -w 2 'bench.bare_app:create_app()'
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, redirect, render_template_string
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.wrappers import Response
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Signup(db.Model):  # type: ignore[name-defined]
    __tablename__ = "signups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    postcode: Mapped[str] = mapped_column(String(10))
    house_number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignupForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = StringField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    postcode = StringField("Postcode", validators=[DataRequired(), Length(max=10)])
    house_number = IntegerField("House number", validators=[NumberRange(1, 99999)])


PAGE = """<!doctype html><html lang="en"><head><title>Sign up</title></head><body>
<form method="post">{{ form.hidden_tag() }}
{% for field in [form.name, form.email, form.postcode, form.house_number] %}
<p>{{ field.label }} {{ field() }}</p>{% endfor %}
<button type="submit">Sign up</button></form></body></html>"""


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "bench-bare-secret-key-0123456789-0123456789"
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BARE_DATABASE_URL"]
    db.init_app(app)
    CSRFProtect(app)

    @app.route("/signup", methods=["GET", "POST"])
    def signup() -> str | Response:
        form = SignupForm()
        if form.validate_on_submit():
            db.session.add(
                Signup(
                    name=form.name.data,
                    email=form.email.data,
                    postcode=form.postcode.data,
                    house_number=form.house_number.data,
                    created_at=datetime.now(UTC),
                )
            )
            db.session.commit()
            return redirect("/signup")
        return render_template_string(PAGE, form=form)

    return app


def create_schema() -> None:
    app = create_app()
    with app.app_context():
        db.create_all()
