"""Validation rules: type checks, required fields, line items adding up to the total."""

from __future__ import annotations

import pytest

from batchnb.errors import SchemaError
from batchnb.extract import schema_from_prompt
from batchnb.extract.validation import parse_rules, validate

SCHEMA = schema_from_prompt(
    "invoice number, invoice date, total, line items (description, quantity, amount)"
)
RULES = parse_rules(
    [
        {"required": ["invoice_number", "total"]},
        {"sum": "line_items.amount", "equals": "total", "tolerance": 0.05},
    ],
    SCHEMA,
)


def _data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "invoice_number": "INV-1",
        "invoice_date": "2024-03-15",
        "total": {"amount": 30.0, "currency": "EUR"},
        "line_items": [
            {"description": "a", "quantity": 1, "amount": {"amount": 10.0, "currency": "EUR"}},
            {"description": "b", "quantity": 2, "amount": {"amount": 20.02, "currency": "EUR"}},
        ],
    }
    data.update(changes)
    return data


def test_a_consistent_result_has_no_flags() -> None:
    assert validate(_data(), SCHEMA, RULES) == []


def test_missing_required_field_is_flagged() -> None:
    flags = validate(_data(invoice_number=None), SCHEMA, RULES)
    assert [(f.rule, f.field) for f in flags] == [("required", "invoice_number")]


def test_items_not_adding_up_are_flagged_with_both_figures() -> None:
    flags = validate(_data(total={"amount": 31.0, "currency": "EUR"}), SCHEMA, RULES)
    assert [(f.rule, f.field) for f in flags] == [("sum", "total")]
    assert "30.02" in flags[0].message and "31.00" in flags[0].message


def test_wrong_types_are_flagged() -> None:
    flags = validate(_data(invoice_date="15/03/2024", total="thirty"), SCHEMA, RULES)
    assert {(f.rule, f.field) for f in flags} == {("type", "invoice_date"), ("type", "total")}


@pytest.mark.parametrize(
    "rule",
    [
        {"required": ["no_such_field"]},
        {"sum": "total.amount", "equals": "total"},
        {"sum": "line_items.price", "equals": "total"},
        {"maximum": 3},
    ],
)
def test_bad_rules_are_refused_clearly(rule: dict[str, object]) -> None:
    with pytest.raises(SchemaError, match="validation rule 1"):
        parse_rules([rule], SCHEMA)
