"""``batchnb schedule``: notebooks run by the workers with papermill on a cron timetable.

``add`` stores a schedule; every ``batchnb worker`` with periodic tasks on runs each due time
exactly once (docs/schedules.md). ``run`` runs one now, in the foreground.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchnb.cli.group import domain_errors, main

if TYPE_CHECKING:
    from batchnb.services.schedule_info import ScheduleInfo, ScheduleRunInfo

# The services are imported inside the commands, so `batchnb --help` stays fast
# (tests/cli/test_startup.py).


@main.group()
def schedule() -> None:
    """Notebooks run on a cron timetable by the workers (papermill), once per due time."""


@schedule.command(name="add")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Unique name; it names the outputs' folder.")
@click.option("--cron", required=True, help='Five cron fields in UTC, e.g. "0 * * * *".')
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A papermill parameter (repeatable); numbers, True, False and None are read as such.",
)
@click.option(
    "--cwd",
    "working_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder each run starts in (relative paths in parameters): default the current one.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the output notebooks (default: BATCHNB_HOME/schedules/NAME).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@domain_errors
def add_command(
    notebook: Path,
    name: str,
    cron: str,
    parameters: tuple[tuple[str, str], ...],
    working_dir: Path | None,
    output_dir: Path | None,
    as_json: bool,
) -> None:
    """Run NOTEBOOK with papermill at every time --cron names."""
    from batchnb.services.schedules import add_schedule, parse_parameter
    from batchnb.services.workspace import open_workspace

    added = add_schedule(
        notebook,
        name=name,
        cron=cron,
        parameters={key: parse_parameter(value) for key, value in parameters},
        working_dir=working_dir,
        output_dir=output_dir,
        workspace=open_workspace(),
    )
    if as_json:
        click.echo(json.dumps(added.as_dict()))
        return
    click.echo(f"schedule {added.name}: {added.cron} (UTC), next due {_time(added.next_due_at)}")
    click.echo(f"outputs in {added.output_dir}; a running `batchnb worker` runs it")


@schedule.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def list_command(as_json: bool) -> None:
    """Every schedule: its timetable, next due time and last run."""
    from batchnb.services.schedules import list_schedules
    from batchnb.services.workspace import open_workspace

    schedules = list_schedules(workspace=open_workspace())
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in schedules]))
        return
    if not schedules:
        click.echo("no schedules: add one with batchnb schedule add NOTEBOOK --name --cron")
        return
    _print_rows(
        ("name", "cron (UTC)", "status", "next due", "last run", "notebook"),
        [_schedule_row(s) for s in schedules],
    )


def _schedule_row(item: ScheduleInfo) -> tuple[str, ...]:
    last = item.last_run
    return (
        item.name,
        item.cron,
        item.status,
        "-" if item.paused else _time(item.next_due_at),
        "-" if last is None else _time(last.started_at),
        item.notebook,
    )


@schedule.command(name="run")
@click.argument("name")
@domain_errors
def run_command(name: str) -> None:
    """Run schedule NAME now, here, and wait (recorded in its history); exit 1 if it fails."""
    from batchnb.services.schedules import run_schedule
    from batchnb.services.workspace import open_workspace

    run = run_schedule(name, workspace=open_workspace())
    took = "" if run.duration_s is None else f" in {run.duration_s:.1f}s"
    click.echo(f"{name}: {run.status}{took}; output {run.output_path}")
    if run.error:
        click.echo(f"error: {run.error}", err=True)
    if not run.ok:
        sys.exit(1)


@schedule.command(name="pause")
@click.argument("name")
@domain_errors
def pause_command(name: str) -> None:
    """Stop running schedule NAME until it is resumed."""
    from batchnb.services.schedules import pause_schedule
    from batchnb.services.workspace import open_workspace

    pause_schedule(name, workspace=open_workspace())
    click.echo(f"schedule {name} paused")


@schedule.command(name="resume")
@click.argument("name")
@domain_errors
def resume_command(name: str) -> None:
    """Run schedule NAME again from its next due time (times missed while paused are skipped)."""
    from batchnb.services.schedules import resume_schedule
    from batchnb.services.workspace import open_workspace

    resumed = resume_schedule(name, workspace=open_workspace())
    click.echo(f"schedule {name} resumed, next due {_time(resumed.next_due_at)}")


@schedule.command(name="remove")
@click.argument("name")
@domain_errors
def remove_command(name: str) -> None:
    """Delete schedule NAME and its history (its output notebooks stay on disk)."""
    from batchnb.services.schedules import remove_schedule
    from batchnb.services.workspace import open_workspace

    remove_schedule(name, workspace=open_workspace())
    click.echo(f"schedule {name} removed")


@schedule.command(name="history")
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True, help="Newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def history_command(name: str, limit: int, as_json: bool) -> None:
    """The runs of schedule NAME, newest first: status, duration, error, output notebook."""
    from batchnb.services.schedules import schedule_history
    from batchnb.services.workspace import open_workspace

    runs = schedule_history(name, limit=limit, workspace=open_workspace())
    if as_json:
        click.echo(json.dumps([run.as_dict() for run in runs]))
        return
    if not runs:
        click.echo(f"schedule {name} has not run yet")
        return
    _print_rows(
        ("due", "status", "duration", "started by", "output", "error"),
        [_run_row(run) for run in runs],
    )


def _run_row(run: ScheduleRunInfo) -> tuple[str, ...]:
    return (
        _time(run.due_at),
        run.status,
        "-" if run.duration_s is None else f"{run.duration_s:.1f}s",
        "hand" if run.manual else run.worker_id or "-",
        run.output_path or "-",
        (run.error or "").replace("\n", " ")[:120],
    )


def _time(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        # The last column runs on (a path or a message), unpadded.
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())
