"""What staff search a registration by, folded so that "ozturk" finds "Öztürk-van Dijk".

Each registration keeps ``search_text``: the resident's name and email, street, house number,
postcode (with and without its space) and town, in lower case without accents (``fold``). A
search is one ``LIKE '%term%'`` per typed word on that one column, which PostgreSQL answers
from a trigram index (pg_trgm, migration 0014) instead of reading every row; SQLite reads the
same column the same way, so both databases find the same registrations.

The text is kept up to date on every flush (``_keep_search_texts``): a new registration gets
it, and a changed name, email or address rewrites it for that person's or home's
registrations, whichever service made the change. Accents are folded here in Python rather
than in SQL (``unaccent`` is an extension of PostgreSQL alone).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, inspect, or_, select
from sqlalchemy.orm import Session, selectinload

from coop.accounts.models import User
from coop.registrations.models import Household, Registration

# Letters NFKD does not take apart into a base letter and an accent.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "`": "'",
        "‐": "-",
        "‑": "-",
        "–": "-",
    }
)
_SPACE = re.compile(r"\s+")


def fold(text: str | None) -> str:
    """``"Öztürk-van Dijk"`` -> ``"ozturk-van dijk"``: lower case, accents off, one space."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", plain.translate(_LETTERS)).strip()


def terms(query: str) -> list[str]:
    """The words of a search, folded; each must occur in the text (in any order)."""
    return [term for term in fold(query).split(" ") if term]


def search_text(user: User | None, household: Household | None) -> str:
    parts: list[Any] = []
    if user is not None:
        parts += [user.name, user.email]
    if household is not None:
        addition = household.house_number_addition or ""
        postcode = household.postcode or ""
        parts += [
            household.street,
            f"{household.house_number}{addition}",
            postcode,
            postcode.replace(" ", ""),
            household.city,
        ]
    return fold(" ".join(str(part) for part in parts if part))


_ADDRESS = ("street", "city", "postcode", "house_number", "house_number_addition")


def _changed(obj: Any, *attributes: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in attributes)


def _refresh(session: Session, registrations: Iterable[Registration]) -> None:
    for registration in registrations:
        # A registration not flushed yet has only ids for a person or home made earlier: the
        # relationship does not load for it, so look them up by id.
        user = registration.user
        if user is None and registration.user_id is not None:
            user = session.get(User, registration.user_id)
        household = registration.household
        if household is None and registration.household_id is not None:
            household = session.get(Household, registration.household_id)
        text = search_text(user, household)
        if registration.search_text != text:
            registration.search_text = text


@event.listens_for(Session, "before_flush")
def _keep_search_texts(session: Session, _context: Any, _instances: Any) -> None:
    with session.no_autoflush:
        touched: set[Registration] = set()
        user_ids: set[int] = set()
        household_ids: set[int] = set()
        # session.new builds a new set on every call: asked once per object it made a flush
        # of 4,000 new rows (an update's deliveries and their jobs) take half a second.
        added = session.new
        for obj in [*added, *session.dirty]:
            new = obj in added
            if isinstance(obj, Registration):
                if new or _changed(obj, "user", "user_id", "household", "household_id"):
                    touched.add(obj)
            elif isinstance(obj, User):
                if not new and _changed(obj, "name", "email"):
                    user_ids.add(obj.id)
            elif isinstance(obj, Household) and not new and _changed(obj, *_ADDRESS):
                household_ids.add(obj.id)
        if user_ids or household_ids:
            conditions = []
            if user_ids:
                conditions.append(Registration.user_id.in_(user_ids))
            if household_ids:
                conditions.append(Registration.household_id.in_(household_ids))
            touched.update(
                session.scalars(
                    select(Registration)
                    .where(or_(*conditions))
                    .options(selectinload(Registration.user), selectinload(Registration.household))
                )
            )
        _refresh(session, touched)
