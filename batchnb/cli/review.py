"""Commands that review results: correct, reviewed, corrections, ground-truth.

Each acts as the workspace user (``BATCHNB_USER``, else ``JUPYTERHUB_USER``, else the OS
user); the services check ownership and write the audit trail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from batchnb.cli import tables
from batchnb.cli.group import domain_errors, main

# The services (pandas, SQLAlchemy) are imported inside the commands that use them, so
# `batchnb --help` does not load them (tests/cli/test_startup.py).


def _value(text: str, as_json: bool) -> Any:
    """The value as typed (the service reads "12.50", "2024-03-01", "EUR 12.50"), or JSON."""
    if not as_json:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not JSON ({exc})", param_hint="VALUE") from None


@main.command(name="correct")
@click.argument("document_id", type=int)
@click.argument("field")
@click.argument("value")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='VALUE is JSON (e.g. \'{"amount": 12.5, "currency": "EUR"}\', null to clear it).',
)
@domain_errors
def correct_command(document_id: int, field: str, value: str, as_json: bool) -> None:
    """Correct the FIELD of a document to VALUE (e.g. `total 12.50`, `line_items.0.amount 3`).

    FIELD is a field name or an array item's field (items counted from 0). The value is
    checked against the field's type; exports and results use it from now on.
    """
    from batchnb.services.review import correct_value
    from batchnb.services.workspace import open_workspace

    correction = correct_value(
        document_id, field, _value(value, as_json), workspace=open_workspace()
    )
    click.echo(
        f"document {document_id}: {correction.field} "
        f"{json.dumps(correction.old_value)} -> {json.dumps(correction.new_value)}"
    )


@main.command(name="reviewed")
@click.argument("document_ids", nargs=-1, type=int, required=True)
@click.option("--undo", is_flag=True, help="Mark them as not reviewed any more.")
@domain_errors
def reviewed_command(document_ids: tuple[int, ...], undo: bool) -> None:
    """Mark documents as reviewed: their values were checked by a person."""
    from batchnb.services.review import mark_reviewed
    from batchnb.services.workspace import open_workspace

    changed = mark_reviewed(list(document_ids), not undo, workspace=open_workspace())
    click.echo(f"{changed} documents marked as {'not ' if undo else ''}reviewed")


@main.command(name="corrections")
@click.argument("batch_id", type=int, required=False)
@click.option("--document", "document_id", type=int, help="Only this document's corrections.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def corrections_command(batch_id: int | None, document_id: int | None, as_json: bool) -> None:
    """The corrections of a batch (or of one --document), newest first."""
    import pandas as pd

    from batchnb.services.review import list_corrections
    from batchnb.services.workspace import open_workspace

    if batch_id is None and document_id is None:
        raise click.UsageError("give a batch id or --document id")
    found = list_corrections(batch_id=batch_id, document_id=document_id, workspace=open_workspace())
    rows = [
        {
            "id": c.id,
            "document_id": c.document_id,
            "field": c.field,
            "old_value": c.old_value,
            "new_value": c.new_value,
            "corrected_by": c.corrected_by,
            "corrected_at": c.corrected_at,
        }
        for c in found
    ]
    if as_json:
        click.echo(json.dumps(rows, default=lambda moment: moment.isoformat()))
    elif not rows:
        click.echo("(no corrections)")
    else:
        click.echo(tables.render(pd.DataFrame(rows)))


@main.command(name="ground-truth")
@click.argument("batch_id", type=int)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@domain_errors
def ground_truth_command(batch_id: int, folder: Path) -> None:
    """Write the reviewed documents of BATCH_ID to FOLDER for `batchnb eval`.

    FOLDER gets documents/, ground_truth/ (the reviewed values, corrections applied) and
    tasks.json (the batch's prompt and schema): score an extractor with `batchnb eval FOLDER`.
    """
    from batchnb.services.review_ground_truth import export_ground_truth
    from batchnb.services.workspace import open_workspace

    summary = export_ground_truth(batch_id, folder, workspace=open_workspace())
    click.echo(
        f"wrote {summary.documents} reviewed documents ({summary.corrected_values} corrected "
        f"values) of batch {batch_id} to {summary.folder}; {summary.not_reviewed} not reviewed "
        "were left out",
        err=True,
    )
    click.echo(summary.folder)
