"""The ``batchnb schema`` command: the schema a prompt becomes, before any document is run.

A prompt's words decide each field's type and which fields are arrays ("line items" gets
default columns), so seeing the result first saves a batch run with the wrong columns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from batchnb.cli.group import domain_errors, main

if TYPE_CHECKING:
    from batchnb.extract.schema import Field, Schema


@main.command()
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="Print the schema as JSON (Schema.to_dict).")
@domain_errors
def schema(prompt: str, as_json: bool) -> None:
    """Show the schema a prompt becomes.

    Each field of PROMPT with its name, label, type and description; an array's columns are
    listed under it.

    \b
    Example: batchnb schema "invoice number, date, total, line items"
    """
    # Imported here: batchnb.extract (and its document parsers) is not needed for --help.
    from batchnb.extract.schema import schema_from_prompt

    built = schema_from_prompt(prompt)
    if as_json:
        click.echo(json.dumps(built.to_dict(), indent=1, ensure_ascii=False))
        return
    click.echo(describe_schema(built))


def describe_schema(schema: Schema) -> str:
    """Aligned columns (field, label, type, description), an array's columns indented below
    it, and a hint for each array that got default columns."""
    from batchnb.extract.schema import default_columns

    lines = [("field", "label", "type", "description")]
    hints = []
    for field in schema.fields:
        lines.append(_line(field, ""))
        lines += [_line(sub, "  ") for sub in field.fields]
        labels = tuple(sub.label for sub in field.fields)
        if labels and labels == default_columns(field.label):
            hints.append(
                f"{field.name}: default columns; choose yours in parentheses, e.g. "
                f'"{field.label} ({", ".join(labels[:2])})"'
            )
    widths = [max(len(line[column]) for line in lines) for column in range(3)]
    table = [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True))
        + "  "
        + line[3]
        for line in lines
    ]
    return "\n".join([line.rstrip() for line in table] + (["", *hints] if hints else []))


def _line(field: Field, indent: str) -> tuple[str, str, str, str]:
    kind = "array of" if field.type == "array" else field.type
    return (indent + field.name, field.label, kind, field.description)
