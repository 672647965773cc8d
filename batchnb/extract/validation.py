"""Validation rules on extracted data: problems become flags on the result, never exceptions.

Every result is checked against its schema's types. Users add rules as plain dicts (so they
can live in JSON, TOML or a notebook cell):

- ``{"required": ["invoice_number", "total"]}``: these fields must have a value;
- ``{"sum": "line_items.amount", "equals": "total", "tolerance": 0.01}``: the items' amounts
  add up to the total, within the tolerance (absolute, in the total's unit).

Array fields are also checked for completeness against the table they come from. The table
reading is :mod:`batchnb.extract.tables`, at the framework's root beside this module: the
framework checks every backend's results and so imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchnb.documents.parsed import Page
from batchnb.errors import SchemaError
from batchnb.extract.schema import Field, Schema
from batchnb.extract.tables import items_from_tables

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Flag:
    """One problem found in a result."""

    rule: str
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class RequiredRule:
    """Fields that must have a value."""

    fields: tuple[str, ...]

    def check(self, data: Mapping[str, Any]) -> list[Flag]:
        return [
            Flag("required", name, f"{name} is required but was not found")
            for name in self.fields
            if _is_missing(data.get(name))
        ]


@dataclass(frozen=True)
class SumRule:
    """The values of one sub-field of an array add up to another field."""

    items_field: str
    item_field: str
    total_field: str
    tolerance: float = 0.01

    def check(self, data: Mapping[str, Any]) -> list[Flag]:
        items = data.get(self.items_field)
        total = _amount(data.get(self.total_field))
        if not isinstance(items, list) or not items or total is None:
            return []  # nothing to compare; missing values are the required rule's business
        amounts = [_amount(item.get(self.item_field)) for item in items if isinstance(item, dict)]
        if any(amount is None for amount in amounts):
            return [
                Flag(
                    "sum",
                    self.items_field,
                    f"cannot add up {self.items_field}.{self.item_field}: some items have no "
                    "amount",
                )
            ]
        added = sum(amount for amount in amounts if amount is not None)
        if abs(added - total) <= self.tolerance:
            return []
        return [
            Flag(
                "sum",
                self.total_field,
                f"{self.items_field}.{self.item_field} adds up to {added:.2f}, "
                f"but {self.total_field} is {total:.2f} (tolerance {self.tolerance})",
            )
        ]


Rule = RequiredRule | SumRule


def parse_rules(declared: Sequence[Mapping[str, Any]], schema: Schema) -> tuple[Rule, ...]:
    """Turn rule dicts into rules, checking that every field they name is in the schema."""
    rules: list[Rule] = []
    for index, rule in enumerate(declared):
        where = f"validation rule {index + 1} ({dict(rule)!r})"
        if set(rule) == {"required"}:
            names = tuple(rule["required"])
            for name in names:
                _field(schema, name, where)
            rules.append(RequiredRule(names))
        elif {"sum", "equals"} <= set(rule) <= {"sum", "equals", "tolerance"}:
            items_field, _, item_field = str(rule["sum"]).partition(".")
            array = _field(schema, items_field, where)
            if array.type != "array" or item_field not in {f.name for f in array.fields}:
                raise SchemaError(f"{where}: 'sum' must name an array field and one of its fields")
            _field(schema, str(rule["equals"]), where)
            tolerance = float(rule.get("tolerance", 0.01))
            rules.append(SumRule(items_field, item_field, str(rule["equals"]), tolerance))
        else:
            raise SchemaError(
                f"{where}: use {{'required': [...]}} or "
                "{'sum': 'array.field', 'equals': 'field', 'tolerance': 0.01}"
            )
    return tuple(rules)


def validate(data: Mapping[str, Any], schema: Schema, rules: Sequence[Rule] = ()) -> list[Flag]:
    """Type checks for every field of the schema, then the declared rules."""
    flags = [flag for field in schema.fields for flag in _type_flags(field, data.get(field.name))]
    for rule in rules:
        flags.extend(rule.check(data))
    return flags


def completeness_flags(
    data: Mapping[str, Any], schema: Schema, pages: Sequence[Page]
) -> list[Flag]:
    """Array fields with fewer items than the rows of the document's matching table.

    Long arrays are where extractors (language models above all) stop early; the table the
    array comes from says how many items there should be.
    """
    flags = []
    for field in schema.fields:
        if field.type != "array":
            continue
        table_items = items_from_tables(field, pages)
        if table_items is None or not isinstance(table_items.value, list):
            continue
        expected = len(table_items.value)
        items = data.get(field.name)
        found = len(items) if isinstance(items, list) else 0
        if found < expected:
            flags.append(
                Flag(
                    "incomplete",
                    field.name,
                    f"{field.name} has {found} of the {expected} rows of the table on page "
                    f"{table_items.page}",
                )
            )
    return flags


def _field(schema: Schema, name: str, where: str) -> Field:
    try:
        return schema.field(name)
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def _amount(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("amount")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _type_flags(field: Field, value: Any) -> list[Flag]:
    if value is None:
        return []
    expected = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "money": lambda v: _amount(v) is not None,
        "date": lambda v: isinstance(v, str) and _ISO_DATE.fullmatch(v) is not None,
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list) and all(isinstance(i, Mapping) for i in v),
    }[field.type]
    if expected(value):
        return []
    return [Flag("type", field.name, f"{field.name} should be a {field.type}, got {value!r}")]
