"""A corrected value checked and typed against its field, the way extractors type values.

People type values as text ("12.50", "2024-03-01", "EUR 12.50", "yes") or give them typed
(``12.5``, ``{"amount": 12.5, "currency": "EUR"}``, ``True``). Either way a correction is
stored in the form extraction stores (see :mod:`batchnb.extract.values`): dates as ISO
``YYYY-MM-DD``, money ``{"amount": float, "currency": code | None}``, numbers floats, booleans
bools, array items dicts of typed cells. Text must be a value of the type as a whole ("12
apples" is not a number), and a bad value raises :class:`SchemaError` saying what would do.
``None`` or blank text clears a value.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from batchnb.errors import SchemaError
from batchnb.extract import Field
from batchnb.extract.values import (
    BOOLEANS,
    CURRENCY_CODES,
    CURRENCY_SYMBOLS,
    find_dates,
    find_money,
    find_numbers,
)

EXAMPLES = {
    "string": "any text",
    "number": "12.5",
    "money": "12.50, 'EUR 12.50' or {'amount': 12.5, 'currency': 'EUR'}",
    "date": "2024-03-01",
    "boolean": "yes, no, true or false",
    "array": "a list of items, each a dict of the item fields",
}


def coerce_value(field: Field, value: Any, *, previous: Any = None, where: str = "") -> Any:
    """``value`` as field ``field`` stores it; :class:`SchemaError` when it is not one.

    ``previous`` is the value being replaced: a money amount typed without a currency keeps
    the previous one's currency. ``where`` names the field in messages (``line_items.2.amount``).
    """
    name = where or field.name
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        typed = _COERCE[field.type](field, value, previous, name)
    except SchemaError:
        raise
    except (TypeError, ValueError, OverflowError):
        typed = None
    if typed is None:
        raise SchemaError(
            f"{value!r} is not a {field.type} for field {name!r}; give e.g. "
            f"{EXAMPLES[field.type]} (or None to clear it)"
        )
    return typed


def _string(field: Field, value: Any, previous: Any, name: str) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value)


def _number(field: Field, value: Any, previous: Any, name: str) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        found = find_numbers(text)
        whole = len(found) == 1 and found[0].start == 0 and found[0].end == len(text)
        return float(found[0].value) if whole else None  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _currency_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        currency = value.get("currency")
        return str(currency) if currency else None
    return None


def _money(field: Field, value: Any, previous: Any, name: str) -> dict[str, Any] | None:
    kept = _currency_of(previous)
    if isinstance(value, Mapping):
        amount = _number(field, value.get("amount"), None, name)
        currency = value.get("currency", kept)
        if currency is not None:
            currency = CURRENCY_SYMBOLS.get(str(currency).strip(), str(currency).strip().upper())
            if currency not in CURRENCY_CODES:
                raise SchemaError(
                    f"{value.get('currency')!r} is not a currency for field {name!r}; give an "
                    "ISO code such as EUR, USD or GBP (or None)"
                )
        return None if amount is None else {"amount": amount, "currency": currency}
    number = _number(field, value, None, name)
    if number is not None:
        return {"amount": number, "currency": kept}
    if not isinstance(value, str):
        return None
    text = value.strip()
    found = find_money(text)
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(text):
        return None
    money = dict(found[0].value)  # type: ignore[arg-type]
    return {"amount": float(money["amount"]), "currency": money["currency"] or kept}


def _date(field: Field, value: Any, previous: Any, name: str) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    found = find_dates(text)
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(text):
        return None
    return str(found[0].value)


def _boolean(field: Field, value: Any, previous: Any, name: str) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return BOOLEANS.get(value.strip().lower())
    return None


def _array(field: Field, value: Any, previous: Any, name: str) -> list[dict[str, Any]] | None:
    if not isinstance(value, list | tuple):
        return None
    known = {sub.name: sub for sub in field.fields}
    items = []
    for number, item in enumerate(value):
        if not isinstance(item, Mapping):
            return None
        unknown = sorted(set(item) - set(known))
        if unknown:
            raise SchemaError(
                f"item {number} of field {name!r} has no field {unknown[0]!r}; its fields: "
                f"{', '.join(known)}"
            )
        items.append(
            {
                sub.name: coerce_value(sub, item.get(sub.name), where=f"{name}.{number}.{sub.name}")
                for sub in field.fields
            }
        )
    return items


_COERCE = {
    "string": _string,
    "number": _number,
    "money": _money,
    "date": _date,
    "boolean": _boolean,
    "array": _array,
}
