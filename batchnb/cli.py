"""The ``batchnb`` command: one click group, each command a thin call into the services.

Domain errors (:class:`batchnb.errors.BatchnbError`) become clean one-line messages here and
nowhere else.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd
from tqdm import tqdm

from batchnb.config import load_settings
from batchnb.db.engine import Database
from batchnb.db.migrate import current_revision, downgrade, head_revision, upgrade
from batchnb.errors import BatchnbError
from batchnb.services.batches import Batch, Progress, get_batch, latest_batch, submit
from batchnb.services.health import check_health, live_workers
from batchnb.services.workers import make_worker
from batchnb.services.workspace import Workspace, open_workspace

F = TypeVar("F", bound=Callable[..., Any])


def _domain_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BatchnbError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _batch_options(func: F) -> F:
    options = [
        click.argument("paths", nargs=-1, required=True),
        click.option("--prompt", "-p", help="What to extract, in plain words."),
        click.option(
            "--schema",
            "schema_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help='The fields as a JSON file (JSON Schema or {"fields": [...]}), instead of '
            "a prompt.",
        ),
        click.option(
            "--strategy",
            type=click.Choice(["global", "auto"]),
            default="global",
            show_default=True,
            help="auto: recognise each document's type and use that type's prompt.",
        ),
        click.option(
            "--rules",
            "rules_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Validation rules as a JSON list; problems become flags on the results.",
        ),
        click.option("--name", help="Batch name (default: from the file names)."),
        click.option("--extractor", default="offline", show_default=True),
        click.option("--priority", type=int, default=0, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not readable JSON ({exc})") from None


def _submit(
    paths: tuple[str, ...],
    prompt: str | None,
    schema_file: Path | None,
    strategy: str,
    rules_file: Path | None,
    name: str | None,
    extractor: str,
    priority: int,
    workspace: Workspace,
) -> Batch:
    """The batch options shared by run and submit, handed to the service."""
    return submit(
        list(paths),
        prompt,
        schema=_read_json(schema_file),
        strategy=strategy,
        rules=_read_json(rules_file),
        name=name,
        extractor=extractor,
        priority=priority,
        workspace=workspace,
    )


def _report_refused(batch: Batch) -> None:
    for refusal in batch.refused:
        click.echo(f"refused {refusal.file_name}: {refusal.reason}", err=True)


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def main(verbose: int) -> None:
    """Batch document extraction: submit files with a prompt, get typed results back."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@_batch_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results to a .json or .csv file.",
)
@click.option("--timeout", type=float, default=None, help="Give up waiting after SECONDS.")
@_domain_errors
def run(
    paths: tuple[str, ...],
    prompt: str | None,
    schema_file: Path | None,
    strategy: str,
    rules_file: Path | None,
    name: str | None,
    extractor: str,
    priority: int,
    output: Path | None,
    timeout: float | None,
) -> None:
    """Submit a batch, process it and print the results table.

    A worker runs inside this command unless a `batchnb worker` is already running.
    """
    if output is not None and output.suffix.lower() not in (".json", ".csv"):
        raise click.BadParameter("use a .json or .csv file name", param_hint="--output")
    workspace = open_workspace()
    worker = None
    if not live_workers(workspace):
        worker = make_worker(workspace, in_process=True)
        worker.start()
    try:
        batch = _submit(
            paths, prompt, schema_file, strategy, rules_file, name, extractor, priority, workspace
        )
        _report_refused(batch)
        _wait_with_bar(batch, timeout)
    finally:
        if worker is not None:
            worker.stop()
    results = batch.results()
    _print_table(results)
    if output is not None:
        _write_results(results, output)
        click.echo(f"wrote {len(results)} rows to {output}", err=True)
    progress = batch.progress()
    click.echo(
        f"batch {batch.id}: {progress.completed} completed, {progress.failed} failed, "
        f"{progress.cancelled} cancelled",
        err=True,
    )


def _wait_with_bar(batch: Batch, timeout: float | None) -> Progress:
    total = batch.progress().total
    with tqdm(total=total, unit="doc", file=sys.stderr, desc=f"batch {batch.id}") as bar:

        def update(progress: Progress) -> None:
            bar.update(progress.done - bar.n)
            bar.set_postfix(failed=progress.failed, refresh=False)

        return batch.wait(timeout=timeout, on_progress=update)


def _print_table(results: pd.DataFrame) -> None:
    if results.empty:
        click.echo("(no documents)")
        return
    shown = results.drop(columns=["document_id"]).astype(object)
    shown = shown.where(shown.notna(), "")
    with pd.option_context("display.max_colwidth", 40, "display.width", 200):
        click.echo(shown.to_string(index=False))


def _write_results(results: pd.DataFrame, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".json":
        output.write_text(
            results.to_json(orient="records", force_ascii=False, indent=2), encoding="utf-8"
        )
    else:
        results.to_csv(output, index=False)


@main.command(name="submit")
@_batch_options
@_domain_errors
def submit_command(
    paths: tuple[str, ...],
    prompt: str | None,
    schema_file: Path | None,
    strategy: str,
    rules_file: Path | None,
    name: str | None,
    extractor: str,
    priority: int,
) -> None:
    """Queue a batch for workers and print its id (messages go to standard error)."""
    batch = _submit(
        paths,
        prompt,
        schema_file,
        strategy,
        rules_file,
        name,
        extractor,
        priority,
        open_workspace(),
    )
    _report_refused(batch)
    click.echo(f"queued {batch.progress().total} documents as batch {batch.id}", err=True)
    click.echo(batch.id)


@main.command()
@click.argument("batch_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_domain_errors
def status(batch_id: int | None, as_json: bool) -> None:
    """Counts per status of a batch (default: the newest batch)."""
    workspace = open_workspace()
    batch = get_batch(batch_id, workspace) if batch_id else latest_batch(workspace)
    if batch is None:
        raise click.ClickException("there are no batches yet: run `batchnb submit` first")
    progress = batch.progress()
    info = batch.info()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "batch": batch.id,
                    "status": info.status,
                    **progress.as_dict(),
                    "total": progress.total,
                }
            )
        )
        return
    click.echo(f"batch {batch.id} ({info.name}): {info.status}")
    for key, value in progress.as_dict().items():
        click.echo(f"  {key:<11}{value}")


@main.command()
@click.option("--threads", type=int, default=None, help="Default: BATCHNB_WORKER_THREADS.")
@click.option("--no-periodic", is_flag=True, help="Do not run the periodic tasks here.")
@_domain_errors
def worker(threads: int | None, no_periodic: bool) -> None:
    """Run a consumer until SIGINT or SIGTERM (then finish or release the current items)."""
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("batchnb").setLevel(logging.INFO)
    workspace = open_workspace()
    consumer = make_worker(workspace, threads=threads, periodic=not no_periodic)
    click.echo(f"worker {consumer.id} on {workspace.settings.home}", err=True)
    consumer.run()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_domain_errors
def health(as_json: bool) -> None:
    """Consumers, queue depth, oldest waiting item, failure rate; exit 1 when unhealthy."""
    report = check_health(open_workspace())
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str))
    else:
        click.echo(f"consumers:       {len(report.consumers)}")
        for consumer in report.consumers:
            click.echo(f"  {consumer['id']} threads={consumer['threads']}")
        click.echo(f"queue depth:     {report.queue_depth or 0}")
        click.echo(f"processing:      {report.processing}")
        age = report.oldest_pending_seconds
        click.echo(f"oldest waiting:  {'-' if age is None else f'{age:.0f}s'}")
        rate = report.failure_rate
        click.echo(f"failure rate 1h: {'-' if rate is None else f'{rate:.0%}'}")
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo("healthy" if report.healthy else "unhealthy")
    if not report.healthy:
        sys.exit(1)


@main.group()
def db() -> None:
    """Database schema commands."""


def _settings_database() -> Database:
    """The workspace database without the automatic upgrade (the db commands manage it)."""
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return Database(settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)


@db.command(name="upgrade")
@click.option("--revision", default="head", show_default=True)
@_domain_errors
def db_upgrade(revision: str) -> None:
    """Upgrade the database schema (opening a workspace also upgrades to the newest)."""
    database = _settings_database()
    upgrade(database, revision)
    click.echo(f"database at revision {current_revision(database)} (newest: {head_revision()})")


@db.command(name="downgrade")
@click.argument("revision")
@_domain_errors
def db_downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION ("base" removes every table)."""
    database = _settings_database()
    downgrade(database, revision)
    click.echo(f"database at revision {current_revision(database)}")


@db.command(name="current")
@_domain_errors
def db_current() -> None:
    """Print the database's schema revision and the newest one."""
    database = _settings_database()
    click.echo(f"database at revision {current_revision(database)} (newest: {head_revision()})")


@main.command(name="eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--use",
    type=click.Choice(["prompt", "schema"]),
    default="prompt",
    show_default=True,
    help="Run each dataset with its task's prompt or its schema (tasks.json).",
)
@click.option("--extractor", default="offline", show_default=True)
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--limit", type=int, default=None, help="At most N documents per dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON summary.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path))
@_domain_errors
def eval_command(
    folder: Path,
    use: str,
    extractor: str,
    datasets: tuple[str, ...],
    limit: int | None,
    as_json: bool,
    csv_path: Path | None,
    html_path: Path | None,
) -> None:
    """Score extraction on an evaluation FOLDER (documents/, ground_truth/, tasks.json).

    Runs in a throw-away workspace whose queue processes documents inline: no server needed.
    """
    from batchnb.evaluation import evaluate

    report = evaluate(
        folder,
        use="schema" if use == "schema" else "prompt",
        extractor=extractor,
        limit=limit,
        datasets=list(datasets) or None,
    )
    click.echo(report.to_json() if as_json else report.to_text())
    if csv_path is not None:
        click.echo(f"wrote {report.to_csv(csv_path)}", err=True)
    if html_path is not None:
        click.echo(f"wrote {report.to_html(html_path)}", err=True)
