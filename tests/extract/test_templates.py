"""The built-in templates: each makes a schema, and their lists get the columns they had."""

from __future__ import annotations

import pytest

from batchnb.extract import schema_from_prompt
from batchnb.extract.schema import ITEM_COLUMNS, TRANSACTION_COLUMNS
from batchnb.extract.templates import builtin_templates

ITEMS_BEFORE = "line items (description, quantity, unit price, amount)"


@pytest.mark.parametrize(
    ("name", "before"),
    [
        (
            "invoice",
            "invoice number, invoice date, due date, seller name, buyer name, total amount, "
            f"tax amount, currency, {ITEMS_BEFORE}",
        ),
        (
            "purchase_order",
            "po number, order date, delivery date, buyer name, supplier name, ship to address, "
            f"total amount, {ITEMS_BEFORE}",
        ),
    ],
)
def test_item_templates_make_the_schema_they_spelled_out_before(name: str, before: str) -> None:
    assert schema_from_prompt(builtin_templates()[name]) == schema_from_prompt(before)


@pytest.mark.parametrize(
    ("name", "array", "columns"),
    [
        ("invoice", "line_items", ITEM_COLUMNS),
        ("purchase_order", "line_items", ITEM_COLUMNS),
        ("fallback", "line_items", ITEM_COLUMNS),
        ("bank_statement", "transactions", TRANSACTION_COLUMNS),
    ],
)
def test_template_lists_have_their_columns(name: str, array: str, columns: tuple[str, ...]) -> None:
    field = schema_from_prompt(builtin_templates()[name]).field(array)
    assert field.type == "array"
    assert tuple(sub.label for sub in field.fields) == columns


def test_templates_without_lists_stay_without_arrays() -> None:
    for name in ("contract", "receipt", "resume"):
        schema = schema_from_prompt(builtin_templates()[name])
        assert all(field.type != "array" for field in schema.fields), name
