"""Every refusal a portal or resident page can get from a service has its own message there:
no code falls through to the generic "not possible", and none gives a 500."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from coop.orders import fieldwork, portal_views, services, vat_rates, vat_views, views
from coop.tenders import desk_views as tender_desk_views
from coop.tenders import portal_views as tender_views
from coop.tenders import services as tender_services

_RAISED = re.compile(r'(?:OrderError|TenderError)\(\s*"(\w+)"')


def codes_raised(*functions: Callable[..., Any]) -> set[str]:
    return {code for f in functions for code in _RAISED.findall(inspect.getsource(f))}


@pytest.mark.parametrize(
    ("messages", "functions"),
    [
        pytest.param(
            portal_views.MESSAGES,
            (
                services.accept_order,
                services.decline_order,
                services._check_answer,
                fieldwork._installer_of,
                fieldwork._accepted_order,
                fieldwork.plan_survey,
                fieldwork.send_quote,
                vat_rates.check_quote_rates,
                fieldwork.plan_installation,
                fieldwork.mark_installed,
            ),
            id="installer",
        ),
        pytest.param(
            views.MESSAGES,
            (
                fieldwork._resident_of,
                fieldwork._decide,
                fieldwork.accept_quote,
                fieldwork.decline_quote,
                fieldwork.request_survey_change,
                fieldwork.confirm_installation,
            ),
            id="resident",
        ),
        pytest.param(tender_views.MESSAGES, (tender_services.submit_bid,), id="bid"),
        pytest.param(
            tender_desk_views._MESSAGES,
            (
                tender_services._check_new_round,
                tender_services._registry_installers,
                tender_services.change_deadline,
                tender_services.cancel_round,
            ),
            id="tender-desk",
        ),
        pytest.param(
            vat_views.MESSAGES,
            (vat_rates._check, vat_rates.add_rate, vat_rates.end_rate),
            id="vat-rates",
        ),
    ],
)
def test_every_refusal_has_a_message(
    messages: dict[str, Any], functions: tuple[Callable[..., Any], ...]
) -> None:
    raised = codes_raised(*functions)
    assert raised, "no codes found: has the way services refuse changed?"
    assert raised <= set(messages), f"no message for: {sorted(raised - set(messages))}"
