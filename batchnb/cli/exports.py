"""Commands that write results to files: export, exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from batchnb.cli import tables
from batchnb.cli.group import domain_errors, main
from batchnb.cli.output import STDOUT, check_output, export_target
from batchnb.formats import FORMATS

# The services (pandas, SQLAlchemy, Huey) are imported inside the commands that use them, so
# `batchnb --help` does not load them (tests/cli/test_startup.py).


@main.command(name="export")
@click.argument("batch_ids", nargs=-1, type=int)
@click.option("--document", "document_ids", type=int, multiple=True, help="Also this document.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="Default: from the output's suffix."
)
@click.option(
    "--mode",
    type=click.Choice(["normal", "multi-row", "sheets"]),
    default="normal",
    show_default=True,
    help="normal: a row per document; multi-row: a row per array item; sheets: Excel with a "
    "Documents sheet and a sheet per array.",
)
@click.option("--array-field", help="The array that multi-row mode expands (if several).")
@click.option("--include-failed", is_flag=True, help="Also failed and cancelled documents.")
@click.option("--confidence", is_flag=True, help="Add confidence and evidence columns.")
@click.option(
    "--originals", is_flag=True, help="The values as extracted, without people's corrections."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="File to write; `-` prints it (with --format). Default: the workspace's exports/ "
    "folder (removed when it expires).",
)
@click.option("--background", is_flag=True, help="Queue it for a worker and print its id instead.")
@domain_errors
def export_command(
    batch_ids: tuple[int, ...],
    document_ids: tuple[int, ...],
    fmt: str | None,
    mode: str,
    array_field: str | None,
    include_failed: bool,
    confidence: bool,
    originals: bool,
    output: Path | None,
    background: bool,
) -> None:
    """Write the results of BATCH_IDS (and/or --document ids) to a file."""
    from tqdm import tqdm

    from batchnb.jobs.export_records import Selection
    from batchnb.services.exports import SUFFIXES, export
    from batchnb.services.workspace import open_workspace

    if not batch_ids and not document_ids:
        raise click.UsageError("give at least one batch id or --document id")
    if output is None and fmt is None:
        raise click.UsageError("give --format or an --output file name ending in the format")
    if output == STDOUT and background:
        raise click.UsageError("--background writes a file for later: name it with --output")
    check_output(output, fmt, SUFFIXES)
    workspace = open_workspace()
    # The bar shows only for exports that take a while (not for refusals or small files).
    with tqdm(unit="doc", file=sys.stderr, desc="export", disable=background, delay=0.5) as bar:

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        with export_target(output, fmt, workspace.settings.temp_dir) as target:
            handle = export(
                Selection(batch_ids=batch_ids, document_ids=document_ids),
                fmt,
                mode,  # type: ignore[arg-type]
                target,
                array_field=array_field,
                include_failed=include_failed,
                include_confidence=confidence,
                originals=originals,
                background=background,
                workspace=workspace,
                on_progress=update,
            )
            row = handle.info()
    if background:
        click.echo(f"queued export {handle.id}; `batchnb exports` shows it", err=True)
        click.echo(handle.id)
        return
    if output == STDOUT:
        click.echo(f"wrote {row.row_count} rows from {row.documents_done} documents", err=True)
        return
    click.echo(
        f"wrote {row.row_count} rows from {row.documents_done} documents to {row.location}",
        err=True,
    )
    click.echo(row.location)


@main.command(name="exports")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def exports_command(limit: int, as_json: bool) -> None:
    """Your newest exports: status, progress, rows, size, file and expiry."""
    from batchnb.services.exports import list_exports
    from batchnb.services.workspace import open_workspace

    frame = list_exports(workspace=open_workspace(), limit=limit)
    if as_json:
        click.echo(json.dumps(frame.to_dict(orient="records"), default=str))
    elif frame.empty:
        click.echo("(no exports)")
    else:
        click.echo(tables.render(frame))
