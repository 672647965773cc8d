"""`batchnb schema`: the schema a prompt becomes, as aligned text or as JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from batchnb.cli import main
from batchnb.extract import schema_from_prompt

PROMPT = "invoice number, issuer (vendor name), date, total, paid?, line items"


def test_prints_names_labels_types_and_the_columns_of_arrays() -> None:
    result = CliRunner().invoke(main, ["schema", PROMPT])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(None, 2)[:2] for line in lines[:12]] == [
        ["field", "label"],
        ["invoice_number", "invoice"],
        ["issuer", "issuer"],
        ["date", "date"],
        ["total", "total"],
        ["paid", "paid?"],
        ["line_items", "line"],
        ["description", "description"],
        ["quantity", "quantity"],
        ["unit_price", "unit"],
        ["amount", "amount"],
        [],
    ]
    assert lines[2].split() == ["issuer", "issuer", "string", "vendor", "name"]
    assert lines[5].split() == ["paid", "paid?", "boolean"]
    assert lines[9].split() == ["unit_price", "unit", "price", "money"]
    assert lines[9].startswith("  unit_price")  # an array's columns are indented under it
    assert lines[-1] == (
        "line_items: default columns; choose yours in parentheses, e.g. "
        '"line items (description, quantity)"'
    )


def test_listed_columns_get_no_hint() -> None:
    result = CliRunner().invoke(main, ["schema", "line items (description, amount)"])
    assert result.exit_code == 0, result.output
    assert "default columns" not in result.output
    assert result.output.splitlines()[-1].split() == ["amount", "amount", "money"]


def test_json_is_the_schema_dict() -> None:
    result = CliRunner().invoke(main, ["schema", PROMPT, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == schema_from_prompt(PROMPT).to_dict()


def test_a_prompt_without_fields_is_a_clean_error() -> None:
    result = CliRunner().invoke(main, ["schema", "please extract"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no fields found in the prompt")
