"""Arrow columns of export rows: the Arrow type of each column and its values converted.

pyarrow converts a whole column at C speed, but leniently: it reads ``True`` as ``1.0``, cuts
``1.5`` to ``1`` in an integer column and takes an integer for a day count in a date column. A
column whose values all have the Python types of its kind therefore goes to pyarrow as it is;
any other column goes value by value, a wrong-typed value becoming null (text columns take any
value as its JSON text).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

from batchnb.formats.cells import json_text
from batchnb.formats.rows import Column


def arrow_type(pa: Any, column: Column) -> Any:
    """The Arrow type of a column: arrays as lists of structs, objects as JSON text."""
    if column.kind == "array":
        return pa.list_(pa.struct([(c.name, arrow_type(pa, c)) for c in column.items]))
    return {
        "integer": pa.int64(),
        "number": pa.float64(),
        "date": pa.date32(),
        "boolean": pa.bool_(),
    }.get(column.kind, pa.string())


_ARROW_AS_IS: dict[str, frozenset[type]] = {
    "integer": frozenset({type(None), int}),
    "number": frozenset({type(None), float, int}),
    "date": frozenset({type(None), dt.date}),
    "boolean": frozenset({type(None), bool}),
    "string": frozenset({type(None), str}),
    "array": frozenset({type(None), list}),
}
"""Python types pyarrow converts to a column's type exactly as :func:`_arrow_value` would."""


def arrow_array(pa: Any, values: list[Any], column: Column, arrow_type: Any) -> Any:
    """The Arrow array of one column: straight from ``values`` when their types fit, else
    value by value through :func:`_arrow_value` (pyarrow would turn ``True`` into ``1.0``, cut
    ``1.5`` to ``1`` in an integer column and read an integer as a date)."""
    if _fits(values, column):
        try:
            return pa.array(values, type=arrow_type)
        except pa.ArrowInvalid:
            pass  # an integer past 2**53 in a float column: converted below, with rounding
    return pa.array([_arrow_value(value, column) for value in values], type=arrow_type)


def _fits(values: list[Any], column: Column) -> bool:
    """Whether every value, and every item value of an array column, has a fitting type."""
    if not set(map(type, values)) <= _ARROW_AS_IS.get(column.kind, frozenset()):
        return False
    if column.kind != "array":
        return True
    items = list(itertools.chain.from_iterable(filter(None, values)))
    return set(map(type, items)) <= {dict} and all(
        _fits(list(map(dict.get, items, itertools.repeat(c.name))), c) for c in column.items
    )


def _arrow_value(value: Any, column: Column) -> Any:
    """``value`` as the column's Arrow type can hold it; ``None`` when it cannot."""
    if value is None:
        return None
    kind = column.kind
    if kind == "string":
        return value if isinstance(value, str) else json_text(value)
    if kind == "object":
        return json_text(value)
    if isinstance(value, bool):
        return value if kind == "boolean" else None
    if kind == "integer":
        return value if isinstance(value, int) else None
    if kind == "number":
        return float(value) if isinstance(value, int | float) else None
    if kind == "date":
        return value if isinstance(value, dt.date) else None
    if kind == "array" and isinstance(value, list):
        return [
            {c.name: _arrow_value(item.get(c.name), c) for c in column.items}
            for item in value
            if isinstance(item, Mapping)
        ]
    return None
