"""Totals that add up: net + tax = gross, checked after the labelled search.

Labels mislead on totals more than on anything else: "Subtotaal" on a Dutch invoice is the
amount *with* tax, "Steuer" sits beside a rate as often as beside an amount. The three amounts
of an invoice are tied by arithmetic, though, and a wrong one rarely keeps the tie. When the
net, tax and gross amounts the schema asks for do not add up, the one whose value the other two
imply is replaced, but only by an amount the document prints: arithmetic alone proposes a
value, the page confirms it. A missing one is filled the same way. Which one is replaced, when
several could be: a value that repeats another of the three (a label that found the gross
amount twice), then a missing one, then the least confident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence

from batchnb.extract.base import ExtractedValue, JSONValue
from batchnb.extract.offline.layout import PageLines
from batchnb.extract.offline.plan import FieldPlan
from batchnb.extract.values import find_money

TOLERANCE = 0.011
"""Cents of rounding allowed between net + tax and gross."""
RECONCILED_CONFIDENCE = 0.6
"""A value implied by the other two totals and printed in the document."""

_ROLES = {"subtotal": "net", "tax": "tax", "total": "gross"}


def reconcile_totals(
    plans: Sequence[FieldPlan],
    values: MutableMapping[str, ExtractedValue | None],
    pages: Sequence[PageLines],
) -> None:
    """Make the schema's net, tax and gross amounts add up, when the document allows it.

    Changes ``values`` in place; does nothing unless the schema has all three amounts, two of
    them were found, and the value that makes them add up is printed in the document.
    """
    names = _total_fields(plans)
    if len(names) < 3:
        return
    kinds = {plan.field.name: plan.kind for plan in plans}
    amounts = {role: _amount(values.get(name)) for role, name in names.items()}
    known = {role: amount for role, amount in amounts.items() if amount is not None}
    if len(known) < 2:
        return
    if len(known) == 3 and abs(known["net"] + known["tax"] - known["gross"]) <= TOLERANCE:
        return
    implied = {
        "net": _minus(amounts["gross"], amounts["tax"]),
        "tax": _minus(amounts["gross"], amounts["net"]),
        "gross": _plus(amounts["net"], amounts["tax"]),
    }
    fixes = []
    for role, value in implied.items():
        if value is None or value <= 0 or value == amounts[role]:
            continue
        printed = _printed(pages, value)
        if printed is None:
            continue
        current, read = values.get(names[role]), amounts[role]
        repeats = read is not None and any(
            abs(read - amount) <= TOLERANCE for other, amount in known.items() if other != role
        )
        missing = current is None
        confidence = current.confidence if current is not None and current.confidence else 0.0
        fixes.append(((not repeats, not missing, confidence), role, printed))
    if not fixes:
        return
    _, role, found = min(fixes, key=lambda fix: fix[0])
    name = names[role]
    values[name] = _typed(found, kinds[name] == "money", _currency(values, names.values()))


def _total_fields(plans: Sequence[FieldPlan]) -> dict[str, str]:
    """Role ("net", "tax", "gross") → the name of the first amount field standing for it."""
    names: dict[str, str] = {}
    for plan in plans:
        if plan.concept is None or plan.kind not in ("money", "amount"):
            continue
        role = _ROLES.get(plan.concept.name)
        if role is not None and role not in names:
            names[role] = plan.field.name
    return names


def _amount(found: ExtractedValue | None) -> float | None:
    if found is None:
        return None
    value = found.value
    if isinstance(value, dict):
        value = value.get("amount")
    return float(value) if isinstance(value, int | float) else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a + b, 2)


def _printed(pages: Sequence[PageLines], amount: float) -> ExtractedValue | None:
    """The last place the document prints ``amount`` (totals sit at the bottom), if any."""
    found = None
    for page in pages:
        for money in find_money(page.text):
            value = money.value
            if isinstance(value, dict) and abs(float(value["amount"] or 0) - amount) <= 0.001:
                found = ExtractedValue(
                    value=value,
                    raw=page.text[money.start : money.end],
                    page=page.number,
                    start=money.start,
                    end=money.end,
                    confidence=RECONCILED_CONFIDENCE,
                )
    return found


def _currency(values: Mapping[str, ExtractedValue | None], names: Iterable[str]) -> str | None:
    """The currency the other totals were read with, for an amount printed without one."""
    for name in names:
        found = values.get(name)
        if found is not None and isinstance(found.value, dict):
            currency = found.value.get("currency")
            if isinstance(currency, str):
                return currency
    return None


def _typed(found: ExtractedValue, money: bool, currency: str | None) -> ExtractedValue:
    """``found`` as the field's kind reads it: a money dict or a bare amount."""
    read = found.value
    assert isinstance(read, dict)
    value: JSONValue = read["amount"]
    if money:
        value = {"amount": read["amount"], "currency": read.get("currency") or currency}
    return ExtractedValue(
        value=value,
        raw=found.raw,
        page=found.page,
        start=found.start,
        end=found.end,
        confidence=found.confidence,
    )
