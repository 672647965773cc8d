"""Commands that create and follow batches: run, submit, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchnb.cli import tables
from batchnb.cli.group import batch_options, domain_errors, main, read_json
from batchnb.cli.output import STDOUT, check_output, export_target
from batchnb.formats import FORMATS

if TYPE_CHECKING:
    import pandas as pd

    from batchnb.services.batches import Batch, Progress
    from batchnb.services.workspace import Workspace

# The services (pandas, SQLAlchemy, Huey) are imported inside the commands that use them, so
# `batchnb --help` does not load them (tests/cli/test_startup.py).

# `run` prints the first rows of a batch's results; the rest go to a file with -o.
RUN_TABLE_ROWS = 30


def _submit(
    workspace: Workspace,
    *,
    paths: tuple[str, ...],
    prompt: str | None,
    schema_file: Path | None,
    strategy: str,
    rules_file: Path | None,
    name: str | None,
    extractor: str,
    priority: int,
    no_cache: bool,
) -> Batch:
    """The batch options shared by run and submit (``batch_options``), handed to the service."""
    from batchnb.services.submit import submit

    return submit(
        list(paths),
        prompt,
        schema=read_json(schema_file),
        strategy=strategy,
        rules=read_json(rules_file),
        name=name,
        extractor=extractor,
        priority=priority,
        result_cache=False if no_cache else None,
        workspace=workspace,
    )


def _report_refused(batch: Batch) -> None:
    for refusal in batch.refused:
        click.echo(f"refused {refusal.file_name}: {refusal.reason}", err=True)


EXIT_INCOMPLETE = 3
"""``batchnb run``: every document is final, but some failed or were cancelled."""
EXIT_NOT_FINISHED = 4
"""``batchnb run``: it stopped waiting (``--timeout``); the rest of the batch stays queued."""
EXIT_INTERRUPTED = 130
"""``batchnb run``: interrupted (Ctrl-C); the rest of the batch stays queued."""


@main.command(
    epilog="Exit status: 0 when every document completed; 3 when some failed or were "
    "cancelled; 4 when --timeout ran out and 130 on Ctrl-C (the rest of the batch stays "
    "queued: `batchnb worker` finishes it); 1 for an error, 2 for a wrong option."
)
@batch_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Also write the results to a file: .json, .jsonl, .csv, .xlsx or .parquet; `-` prints "
    "them (with --format).",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="Default: from --output's suffix."
)
@click.option("--timeout", type=float, default=None, help="Give up waiting after SECONDS.")
@domain_errors
def run(output: Path | None, fmt: str | None, timeout: float | None, **batch: Any) -> None:
    """Submit a batch, process it and print the results table.

    A worker runs inside this command unless a `batchnb worker` is already running.
    """
    from batchnb.services.exports import SUFFIXES, export
    from batchnb.services.health import live_workers
    from batchnb.services.workers import make_worker
    from batchnb.services.workspace import open_workspace

    check_output(output, fmt, SUFFIXES)
    workspace = open_workspace()
    worker = None
    if not live_workers(workspace):
        worker = make_worker(workspace, in_process=True)
        worker.start()
    submitted: Batch | None = None
    stopped_early: int | None = None
    try:
        submitted = _submit(workspace, **batch)
        _report_refused(submitted)
        _wait_with_bar(submitted, timeout)
    except TimeoutError:
        stopped_early = EXIT_NOT_FINISHED
    except KeyboardInterrupt:
        stopped_early = EXIT_INTERRUPTED
    finally:
        if worker is not None:
            # Running documents finish or go back to the queue; none fails for the stop.
            worker.stop()
    assert submitted is not None  # _submit raised otherwise, and nothing is left to report
    if stopped_early is not None:
        _report_unfinished(submitted, worker is not None, stopped_early)
        sys.exit(stopped_early)
    if output != STDOUT:  # with -o -, standard output carries the file and nothing else
        _print_table(submitted.results())
    if output is not None:
        with export_target(output, fmt, workspace.settings.temp_dir) as target:
            written = export(
                submitted.id, fmt, path=target, include_failed=True, workspace=workspace
            ).info()
        where = "standard output" if output == STDOUT else output
        click.echo(f"wrote {written.row_count} rows to {where}", err=True)
    progress = submitted.progress()
    click.echo(
        f"batch {submitted.id}: {progress.completed} completed, {progress.failed} failed, "
        f"{progress.cancelled} cancelled",
        err=True,
    )
    if progress.failed or progress.cancelled:
        sys.exit(EXIT_INCOMPLETE)


def _report_unfinished(batch: Batch, own_worker: bool, code: int) -> None:
    """Say what state the batch was left in, and what to run next."""
    progress = batch.progress(cached=False)
    why = "interrupted" if code == EXIT_INTERRUPTED else "stopped waiting (--timeout)"
    left = progress.pending + progress.processing
    click.echo(
        f"\n{why}: batch {batch.id} has {progress.done} of {progress.total} documents done "
        f"({progress.completed} completed, {progress.failed} failed) and {left} still queued.",
        err=True,
    )
    finish = (
        "start `batchnb worker` to finish it"
        if own_worker
        else "the running `batchnb worker` goes on with it"
    )
    click.echo(
        f"Its documents stay queued: {finish}; `batchnb status {batch.id}` shows where it is, "
        f"`batchnb cancel {batch.id}` stops it.",
        err=True,
    )


def _wait_with_bar(batch: Batch, timeout: float | None) -> Progress:
    from tqdm import tqdm

    total = batch.progress().total
    with tqdm(total=total, unit="doc", file=sys.stderr, desc=f"batch {batch.id}") as bar:

        def update(progress: Progress) -> None:
            bar.update(progress.done - bar.n)
            bar.set_postfix(failed=progress.failed, refresh=False)

        # The command draws its own bar (with the failures); wait() draws none.
        return batch.wait(timeout=timeout, on_progress=update, progress=False)


def _print_table(results: pd.DataFrame) -> None:
    if results.empty:
        click.echo("(no documents)")
        return
    # The ids say nothing to a reader of one batch's table (they are in the exported file),
    # and a batch that has just run has nothing reviewed or corrected yet.
    shown = results.drop(columns=["document_id", "batch_id", "reviewed", "corrected"])
    click.echo(tables.render(shown, max_rows=RUN_TABLE_ROWS, see_all="-o FILE writes them all"))


@main.command(name="submit")
@batch_options
@domain_errors
def submit_command(**options: Any) -> None:
    """Queue a batch for workers and print its id (messages go to standard error)."""
    from batchnb.services.workspace import open_workspace

    batch = _submit(open_workspace(), **options)
    _report_refused(batch)
    click.echo(f"queued {batch.progress().total} documents as batch {batch.id}", err=True)
    click.echo(batch.id)


@main.command()
@click.argument("batch_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--failures", is_flag=True, help="Also list the failed documents: kind and message.")
@click.option(
    "--traceback", "with_traceback", is_flag=True, help="With --failures: where each one failed."
)
@domain_errors
def status(batch_id: int | None, as_json: bool, failures: bool, with_traceback: bool) -> None:
    """Counts per status of a batch (default: the newest batch)."""
    from batchnb.services.batches import get_batch, latest_batch
    from batchnb.services.workspace import open_workspace

    workspace = open_workspace()
    batch = get_batch(batch_id, workspace) if batch_id else latest_batch(workspace)
    if batch is None:
        raise click.ClickException("there are no batches yet: run `batchnb submit` first")
    progress = batch.progress()
    info = batch.info()
    failed = batch.failures() if failures else None
    review = batch.review_status()
    if as_json:
        summary: dict[str, object] = {
            "batch": batch.id,
            "status": info.status,
            **progress.as_dict(),
            "total": progress.total,
            "reviewed": review.reviewed,
            "corrections": review.corrections,
        }
        if failed is not None:
            shown = failed if with_traceback else failed.drop(columns=["traceback"])
            summary["failures"] = json.loads(shown.to_json(orient="records"))
        click.echo(json.dumps(summary))
        return
    click.echo(f"batch {batch.id} ({info.name}): {info.status}")
    for key, value in progress.as_dict().items():
        click.echo(f"  {key:<11}{value}")
    if review.completed:
        click.echo(f"  {review.text}, {review.corrections} corrected values")
    for row in [] if failed is None else failed.itertuples():
        click.echo(f"failed {row.file_name} [{row.error_kind}]: {row.error}")
        if with_traceback and row.traceback:
            click.echo("  " + str(row.traceback).replace("\n", "\n  "))
