"""Break the money and order rules on purpose, one at a time, and see whether the tests notice.

Each mutation is a realistic bug, written as text substitutions in the code. The tree is copied
once to a temporary directory; each mutation is applied to the copy, the tests run there, and the
file is restored. Not part of the normal test run (pytest collects only ``test_*.py``)::

    python -m tests.mutations              # every mutation; the payments and orders modules
    python -m tests.mutations --quick      # only the rule tests (test_money_rules, test_order_rules)
    python -m tests.mutations d1 h2        # only these
    python -m tests.mutations --list

A mutation is "caught" when at least one of its rule tests fails. The report also lists the
other tests that failed (the older tests, that caught it too, or not). It exits non-zero when a
mutation is missed or no longer applies (the code it changes was rewritten: update its text).
Set ``TEST_REDIS_URL`` as for any test run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAYMENT_MODELS = "coop/payments/models.py"
FIELDWORK = "coop/orders/fieldwork.py"
MONEY_RULES = "tests/payments/test_money_rules.py"
ORDER_RULES = "tests/orders/test_order_rules.py"
MODULES = ["tests/payments", "tests/orders"]


@dataclass(frozen=True)
class Mutation:
    name: str
    rule: str
    change: str  # the bug, in one line
    edits: tuple[tuple[str, str, str], ...]  # (file, text as it is, text with the bug)
    rule_tests: tuple[str, ...]  # the tests written to catch it (node ids, or parts of them)


MUTATIONS = [
    Mutation(
        "a1",
        "a late payment event does not turn a refunded deposit back to paid",
        "_money_received: a refunded deposit is no longer recognised as already settled",
        (
            (
                "coop/payments/services/webhooks.py",
                "    if payment.status in HOLDS_MONEY or payment.status is PaymentStatus.REFUNDED:\n",
                "    if payment.status in HOLDS_MONEY:\n",
            ),
        ),
        (f"{MONEY_RULES}::test_a_late_payment_event_does_not_turn_a_refunded_deposit_back",),
    ),
    Mutation(
        "a2",
        "a late payment event does not turn a refunded deposit back to paid",
        "as a1, and TRANSITIONS lets refunded go to paid or flagged (as cancelled may)",
        (
            (
                "coop/payments/services/webhooks.py",
                "    if payment.status in HOLDS_MONEY or payment.status is PaymentStatus.REFUNDED:\n",
                "    if payment.status in HOLDS_MONEY:\n",
            ),
            (
                PAYMENT_MODELS,
                "    PaymentStatus.REFUNDED: frozenset(),\n",
                "    PaymentStatus.REFUNDED: frozenset({PaymentStatus.PAID, PaymentStatus.FLAGGED}),\n",
            ),
        ),
        (f"{MONEY_RULES}::test_a_late_payment_event_does_not_turn_a_refunded_deposit_back",),
    ),
    Mutation(
        "b1",
        "paying more than asked is flagged, not paid",
        "_money_received: only an amount below the asked one is flagged (!= became <)",
        (
            (
                "coop/payments/services/webhooks.py",
                "    elif cents != payment.amount_cents:\n",
                "    elif cents < payment.amount_cents:\n",
            ),
        ),
        (
            f"{MONEY_RULES}::test_paying_more_than_asked_through_stripe_is_flagged_not_paid",
            f"{MONEY_RULES}::test_a_bank_transfer_of_more_than_asked_is_flagged_not_paid",
        ),
    ),
    Mutation(
        "c1",
        "one Stripe event is processed once",
        "process_event: only ignored events are skipped, so a processed one is processed again",
        (
            (
                "coop/payments/services/webhooks.py",
                "    if row.status is not EventStatus.RECEIVED:\n        db.session.rollback()\n",
                "    if row.status is EventStatus.IGNORED:\n        db.session.rollback()\n",
            ),
        ),
        (f"{MONEY_RULES}::test_the_same_stripe_event_is_processed_once",),
    ),
    Mutation(
        "d1",
        "a partial refund in Stripe's dashboard is not recorded as a full refund",
        "_apply_outside_refund: any refund made outside coop refunds the deposit",
        (
            (
                "coop/payments/services/refunds.py",
                "    if cents < (payment.received_cents or payment.amount_cents):\n",
                "    if cents <= 0:\n",
            ),
        ),
        (f"{MONEY_RULES}::test_a_partial_refund_in_stripes_dashboard_is_not_recorded",),
    ),
    Mutation(
        "d2",
        "a partial refund in Stripe's dashboard is not recorded as a full refund",
        "_reconcile_charge: charge.refunded taken to mean refunded, for the charge's amount",
        (
            (
                "coop/payments/services/refunds.py",
                "    if charge.refunded and payment.status in HOLDS_MONEY:\n"
                "        return payment, _apply_outside_refund(payment, charge.amount_refunded, now, "
                "event_id)\n",
                "    if charge.amount_refunded and payment.status in HOLDS_MONEY:\n"
                "        return payment, _apply_outside_refund(payment, charge.amount, now, event_id)\n",
            ),
        ),
        (f"{MONEY_RULES}::test_a_partial_refund_in_stripes_dashboard_is_not_recorded",),
    ),
    Mutation(
        "e1",
        "staff cannot give an installer more homes than it has room for",
        "reassign: the room is checked only when a group is split over installers",
        (
            (
                "coop/orders/services/review.py",
                "        if homes > choice.capacity_left:\n",
                "        if len(wanted) > 1 and homes > choice.capacity_left:\n",
            ),
        ),
        (f"{ORDER_RULES}::test_staff_cannot_give_an_installer_more_homes_than_it_has_room",),
    ),
    Mutation(
        "e2",
        "staff cannot give an installer more homes than it has room for",
        "choices_for: the room left ignores the installer's homes elsewhere in the proposal",
        (
            (
                "coop/orders/services/review.py",
                "        left = offer.capacity.get(batch.action_measure_id, 0) - elsewhere[installer.id]\n",
                "        left = offer.capacity.get(batch.action_measure_id, 0)\n",
            ),
        ),
        (f"{ORDER_RULES}::test_staff_cannot_give_an_installer_more_homes_than_it_has_room",),
    ),
    Mutation(
        "e3",
        "staff cannot give an installer more homes than it has room for",
        "candidates: registry capacity ignores the homes already ordered from the installer",
        (
            (
                "coop/orders/services/candidates.py",
                "                    offer.homes_per_week * registry_weeks\n"
                "                    - in_use.get((installer.id, action_measure_id), 0),\n",
                "                    offer.homes_per_week * registry_weeks,\n",
            ),
        ),
        (f"{ORDER_RULES}::test_staff_cannot_give_an_installer_more_homes_than_it_has_room",),
    ),
    Mutation(
        "f1",
        "an installer cannot answer an order after its deadline",
        "_check_answer: the deadline is no longer checked (only the page hides the buttons)",
        (
            (
                "coop/orders/services/answers.py",
                '    if now > order.respond_by:\n        raise OrderError("answer_too_late")\n',
                "",
            ),
        ),
        (f"{ORDER_RULES}::test_an_installer_cannot_answer_an_order_after_its_deadline",),
    ),
    Mutation(
        "g1",
        "an expired order gives its homes back to matching",
        "expire_orders: the order is marked expired but its homes are not released",
        (
            (
                "coop/orders/services/answers.py",
                "        _release(order, actor=None, now=now, trigger=RunTrigger.ORDER_EXPIRED)\n",
                "",
            ),
        ),
        (f"{ORDER_RULES}::test_an_order_not_answered_in_time_gives_its_homes_back",),
    ),
    Mutation(
        "g2",
        "an expired order gives its homes back to matching",
        "expire_orders: the deadline compared the wrong way round (respond_by > now)",
        (
            (
                "coop/orders/services/answers.py",
                ".where(Order.status == OrderStatus.SENT, Order.respond_by < now)\n",
                ".where(Order.status == OrderStatus.SENT, Order.respond_by > now)\n",
            ),
        ),
        (f"{ORDER_RULES}::test_an_order_not_answered_in_time_gives_its_homes_back",),
    ),
    Mutation(
        "h1",
        "VAT is rounded half up to the cent",
        "_vat: truncated ((amount * rate) // 100)",
        (
            (
                FIELDWORK,
                "    return (amount_cents * rate + 50) // 100\n",
                "    return amount_cents * rate // 100\n",
            ),
        ),
        (f"{ORDER_RULES}::test_vat_is_rounded_half_up_to_the_cent",),
    ),
    Mutation(
        "h2",
        "VAT is rounded half up to the cent",
        "_vat: Python's round() on a float (half to even)",
        (
            (
                FIELDWORK,
                "    return (amount_cents * rate + 50) // 100\n",
                "    return round(amount_cents * rate / 100)\n",
            ),
        ),
        (f"{ORDER_RULES}::test_vat_is_rounded_half_up_to_the_cent",),
    ),
    Mutation(
        "h3",
        "VAT is rounded half up to the cent",
        "_vat: always rounded up",
        (
            (
                FIELDWORK,
                "    return (amount_cents * rate + 50) // 100\n",
                "    return (amount_cents * rate + 99) // 100\n",
            ),
        ),
        (f"{ORDER_RULES}::test_vat_is_rounded_half_up_to_the_cent",),
    ),
]

_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "instance", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"
)


def copy_tree(target: Path) -> Path:
    tree = target / "tree"
    shutil.copytree(ROOT, tree, ignore=_IGNORE, symlinks=True)
    return tree


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def check_imports_copy(tree: Path) -> None:
    """The editable install points at the working tree; run from the copy, the copy must win."""
    found = subprocess.run(
        [python(), "-c", "import coop; print(coop.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the copy imports {found}, not its own coop: cannot mutate safely")


def apply(tree: Path, mutation: Mutation) -> dict[Path, str] | str:
    """Apply the edits; the original texts to restore, or why the mutation does not apply."""
    originals: dict[Path, str] = {}
    for file, old, new in mutation.edits:
        path = tree / file
        current = path.read_text()
        originals.setdefault(path, current)
        count = current.count(old)
        if count != 1:
            restore(originals)
            return f"{file}: the text to change occurs {count} times (expected once)"
        path.write_text(current.replace(old, new))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def run_tests(tree: Path, targets: list[str]) -> tuple[int, list[str], str]:
    command = [python(), "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-rfE"]
    result = subprocess.run(
        [*command, *targets],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    # Only the summary at the end: captured log lines also start with "ERROR".
    _, _, summary_part = result.stdout.rpartition("short test summary info")
    failed = sorted(
        {
            match.group(1)
            for match in re.finditer(r"^(?:FAILED|ERROR) (\S+)", summary_part, re.MULTILINE)
        }
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    return result.returncode, failed, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutations", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="only the rule tests")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    args = parser.parse_args(argv)

    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    if args.list or not chosen:
        for m in MUTATIONS:
            print(f"{m.name}  {m.rule}\n    {m.change}")
            for file, _old, _new in m.edits:
                print(f"    in {file}")
        return 0 if chosen else 2
    targets = [MONEY_RULES, ORDER_RULES] if args.quick else MODULES

    with tempfile.TemporaryDirectory(prefix="coop-mutations-") as tmp:
        tree = copy_tree(Path(tmp))
        check_imports_copy(tree)
        code, failed, summary = run_tests(tree, targets)
        print(f"unmutated: {summary}")
        if code != 0:
            print("the tests fail without any mutation:", *failed, sep="\n  ")
            return 1
        problems = 0
        for mutation in chosen:
            started = time.monotonic()
            applied = apply(tree, mutation)
            if isinstance(applied, str):
                print(f"\n{mutation.name} DOES NOT APPLY: {applied}")
                problems += 1
                continue
            try:
                code, failed, summary = run_tests(tree, targets)
            finally:
                restore(applied)
            by_rule = [t for t in failed if any(r in t for r in mutation.rule_tests)]
            others = [t for t in failed if t not in by_rule]
            verdict = "caught" if by_rule else "MISSED"
            problems += not by_rule
            print(
                f"\n{mutation.name} {verdict} ({time.monotonic() - started:.0f} s): {mutation.change}"
            )
            print(f"  rule: {mutation.rule}")
            print(f"  failed, rule tests: {', '.join(by_rule) or 'none'}")
            print(f"  failed, other tests: {', '.join(others) or 'none'}")
            print(f"  {summary}")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
