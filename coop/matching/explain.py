"""Readable explanations of a matching result, in English and Dutch, generated from the data.

Staff read these next to the batch they approve ("3521 roof, 38 homes -> Installer B; Installer A
had no capacity left"), so they name the chosen installer and say why the others were not chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coop.matching.problem import AssignmentProblem, Item, Option, Share

MAX_ALTERNATIVES = 3


def format_cost(amount: int, lang: str, money: bool) -> str:
    """Cents as euros in the language's format (€ 1.234,50 / €1,234.50); else the number."""
    if not money:
        return str(amount)
    euros, cents = divmod(abs(amount), 100)
    sign = "-" if amount < 0 else ""
    if lang == "nl":
        return f"{sign}€ {euros:,}".replace(",", ".") + f",{cents:02d}"
    return f"{sign}€{euros:,}.{cents:02d}"


def explain(
    problem: AssignmentProblem,
    item: Item,
    shares: Sequence[Share],
    options: Sequence[Option],
    remaining: Sequence[int],
) -> tuple[dict[str, str], dict[str, str] | None]:
    """(explanation per language, reason per language when some or all of the item is unassigned)."""
    unit = problem.unit
    missing = item.size - sum(s.units for s in shares)
    reason = _reason_unassigned(problem, item, options, remaining) if missing else None
    text: dict[str, str] = {}
    for lang in ("en", "nl"):
        head = f"{item.label(lang)} -> "
        if not shares:
            word = "not assigned" if lang == "en" else "niet toegewezen"
            assert reason is not None
            text[lang] = f"{head}{word}: {reason[lang]}"
        elif len(shares) == 1 and not missing:
            text[lang] = head + _whole(problem, shares[0], options, remaining, lang)
        else:
            text[lang] = head + _split(problem, item, shares, options, lang, unit.get(lang, ""))
            if missing and reason is not None:
                rest = "unassigned" if lang == "en" else "niet toegewezen"
                text[lang] += f"; {missing} {unit.get(lang, '')} {rest}: {reason[lang]}"
    return text, reason


def _whole(
    problem: AssignmentProblem,
    share: Share,
    options: Sequence[Option],
    remaining: Sequence[int],
    lang: str,
) -> str:
    chosen = problem.agents[share.agent].display
    others = sorted((o for o in options if o.agent != share.agent), key=lambda o: o.cost)
    if not others:
        only = (
            "the only installer that can serve it"
            if lang == "en"
            else "de enige installateur die deze groep kan bedienen"
        )
        return f"{chosen}; {only}"
    phrases = []
    for o in others[:MAX_ALTERNATIVES]:
        name = problem.agents[o.agent].display
        if remaining[o.agent] < o.capacity_use:
            phrases.append(
                f"{name} had no capacity left"
                if lang == "en"
                else f"{name} had geen capaciteit meer"
            )
        elif o.cost >= share.cost:
            theirs = format_cost(o.cost, lang, problem.money)
            ours = format_cost(share.cost, lang, problem.money)
            phrases.append(
                f"{name} was more expensive ({theirs} vs {ours})"
                if lang == "en"
                else f"{name} was duurder ({theirs} tegen {ours})"
            )
        else:  # cheaper and room left: only when the time limit stopped the search early
            phrases.append(
                f"{name} was not chosen within the time limit"
                if lang == "en"
                else f"{name} is binnen de tijdslimiet niet gekozen"
            )
    if len(others) > MAX_ALTERNATIVES:
        extra = len(others) - MAX_ALTERNATIVES
        phrases.append(f"and {extra} more" if lang == "en" else f"en nog {extra}")
    return f"{chosen}; " + "; ".join(phrases)


def _split(
    problem: AssignmentProblem,
    item: Item,
    shares: Sequence[Share],
    options: Sequence[Option],
    lang: str,
    unit: str,
) -> str:
    parts = ", ".join(f"{problem.agents[s.agent].display} {s.units} {unit}" for s in shares)
    largest = max((_units_fit(problem, item, o) for o in options), default=0)
    if lang == "en":
        return (
            f"split: {parts}; no single installer can take {item.size} {unit} "
            f"(largest capacity: {largest})"
        )
    return (
        f"opgesplitst: {parts}; geen enkele installateur kan {item.size} {unit} aan "
        f"(grootste capaciteit: {largest})"
    )


def _units_fit(problem: AssignmentProblem, item: Item, o: Option) -> int:
    per_unit = o.capacity_use // item.size if item.splittable else 0
    cap = problem.agents[o.agent].capacity
    if per_unit:
        return min(item.size, cap // per_unit)
    return item.size if o.capacity_use <= cap else 0


def _reason_unassigned(
    problem: AssignmentProblem, item: Item, options: Sequence[Option], remaining: Sequence[int]
) -> dict[str, str]:
    if not options:
        default: Mapping[str, str] = {
            "en": "no installer can serve this group",
            "nl": "geen installateur kan deze groep bedienen",
        }
        return {lang: item.unserved_reason.get(lang) or default[lang] for lang in ("en", "nl")}
    names = ", ".join(problem.agents[o.agent].display for o in options[:MAX_ALTERNATIVES])
    if len(options) > MAX_ALTERNATIVES:
        names += ", ..."
    per_unit = [o.capacity_use // item.size if item.splittable else o.capacity_use for o in options]
    if all(
        remaining[o.agent] < u or (u == 0 and remaining[o.agent] <= 0)
        for o, u in zip(options, per_unit, strict=True)
    ):
        return {
            "en": f"every installer that can serve it had no capacity left ({names})",
            "nl": f"alle installateurs die deze groep kunnen bedienen hadden geen capaciteit "
            f"meer ({names})",
        }
    return {
        "en": "not assigned within the time limit",
        "nl": "niet toegewezen binnen de tijdslimiet",
    }
