"""One voice for residents: every Dutch text a resident reads says "je", never "u".

The rule is written in the header of ``coop/translations/nl/LC_MESSAGES/messages.po``. Texts
for installers and desk staff keep "u"; they are told apart by where they are used (the fresh
extraction keeps each text's source files): a staff template directory or view module, or one
of the staff emails below. A text used in both a resident and a staff place is a resident text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from tests.test_translations import NL_PO, _extract_fresh, _forms, _read

# Emails sent to installers or to desk staff (templates/email/<name>.*).
STAFF_EMAILS = frozenset(
    {
        "deposit_flagged",
        "household_withdrawn",
        "invitation",
        "order_cancelled",
        "order_expired",
        "order_released",
        "order_reminder",
        "order_sent",
        "proposal_ready",
        "quote_accepted",
        "quote_declined",
        "quote_expired",
        "refund_run_to_transfer",
        "refund_to_transfer",
        "survey_change_requested",
        "tender_cancelled",
        "tender_deadline_changed",
        "tender_invitation",
        "withdrawal_desk",
    }
)

# The formal second person as whole words; "je" texts never contain them.
_FORMAL = re.compile(r"\b(?:u|uw|U|Uw|UW)\b")


def is_staff_location(path: str) -> bool:
    parts = Path(path).parts
    name = parts[-1]
    if parts[0] == "templates" and len(parts) > 2 and parts[1] == "email":
        return name.split(".")[0] in STAFF_EMAILS
    if parts[0] == "templates":
        return "desk" in parts[1:-1] or "portal" in parts[1:-1]
    # coop/desk/*, coop/<area>/desk_*.py, coop/<area>/portal_*.py
    return "desk" in parts[:-1] or name.startswith(("desk_", "portal_"))


@pytest.fixture(scope="module")
def source_texts(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return _extract_fresh(tmp_path_factory.mktemp("pot"))


def test_staff_locations_are_told_apart() -> None:
    assert is_staff_location("templates/tenders/desk/open.html")
    assert is_staff_location("templates/orders/portal/order.html")
    assert is_staff_location("coop/tenders/desk_views.py")
    assert is_staff_location("coop/desk/exports.py")
    assert is_staff_location("templates/email/quote_accepted.txt")
    assert not is_staff_location("templates/email/quote_accepted_resident.subject.txt")
    assert not is_staff_location("templates/participation/meeting.html")
    assert not is_staff_location("coop/registrations/forms.py")


def test_resident_texts_say_je_not_u(source_texts: Catalog) -> None:
    dutch = _read(NL_PO, "nl")
    formal: list[str] = []
    resident_texts = 0
    for message in source_texts:
        if not message.id or all(is_staff_location(path) for path, _ in message.locations):
            continue
        entry = dutch.get(message.id, context=message.context)
        if entry is None:
            continue  # test_translations reports it as missing
        resident_texts += 1
        for _source, translated in _forms(entry):
            if _FORMAL.search(translated):
                where = sorted({path for path, _ in message.locations})
                formal.append(f"{where}: {translated!r}")
                break
    assert resident_texts > 300, "almost no resident texts found: is the staff rule too wide?"
    assert not formal, (
        "resident texts in the u-form; residents are addressed with je (see the header of "
        "messages.po):\n" + "\n".join(formal)
    )
