"""coop's ``html_params`` (installed in place of WTForms' for speed) writes what WTForms' own
writes, for every kind of value a widget passes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_babel import lazy_gettext
from markupsafe import Markup

from coop.core import widgets

CASES: list[dict[str, Any]] = [
    {"name": "postcode", "id": "postcode", "class_": "input", "value": "3511 AB"},
    {"checked": True, "readonly": False, "name": "consent", "required": True},
    {"data_hint_for": "x", "aria_describedby": "postcode-hint postcode-error", "for_": "a"},
    {"value": '"><script>alert(1)</script>', "placeholder": "a & b < c"},
    {"title": Markup('<b title="x">ok</b>'), "value": 12, "step": 0.5, "min": None},
    {"placeholder": lazy_gettext("Postcode"), "autocomplete": "postal-code"},
]


@pytest.mark.parametrize("attributes", CASES)
def test_the_same_attributes_as_wtforms_writes(ctx: Flask, attributes: dict[str, Any]) -> None:
    ours = widgets.html_params(**attributes)
    theirs = widgets._original(**attributes)
    assert ours == theirs
    assert isinstance(ours, Markup)


def test_installed_where_the_widgets_look_for_it(ctx: Flask) -> None:
    from wtforms import Form, StringField
    from wtforms.widgets import core

    assert core.html_params is widgets.html_params
    assert core.TextInput.html_params is widgets.html_params

    class Probe(Form):
        name = StringField()

    assert (
        str(Probe().name(class_="x"))
        == '<input class="x" id="name" name="name" type="text" value="">'
    )
