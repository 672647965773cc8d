"""Commands that run and look after the system: worker, health, db."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

import click

from batchnb.cli.group import domain_errors, main
from batchnb.config import load_settings

if TYPE_CHECKING:
    from batchnb.db.engine import Database

# The services and the database layer (SQLAlchemy, Alembic, Huey) are imported inside the
# commands that use them, so `batchnb --help` does not load them (tests/cli/test_startup.py).


@main.command()
@click.option("--threads", type=int, default=None, help="Default: BATCHNB_WORKER_THREADS.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes under one supervisor, which restarts one that dies. "
    "Default: the number of cores.",
)
@click.option("--no-periodic", is_flag=True, help="Do not run the periodic tasks here.")
@click.pass_context
@domain_errors
def worker(
    context: click.Context, threads: int | None, processes: int | None, no_periodic: bool
) -> None:
    """Run consumers until SIGINT or SIGTERM (then finish or release the current items)."""
    from batchnb.services.supervisor import Supervisor, default_processes
    from batchnb.services.workers import make_worker
    from batchnb.services.workspace import open_workspace

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("batchnb").setLevel(logging.INFO)
    processes = processes or default_processes()
    if processes > 1:
        verbose = context.parent.params.get("verbose", 0) if context.parent else 0
        child = [sys.executable, "-m", "batchnb", *(["-v"] * verbose), "worker", "--processes", "1"]
        child += [
            *(["--threads", str(threads)] if threads else []),
            *(["--no-periodic"] if no_periodic else []),
        ]
        settings = load_settings()
        click.echo(f"supervisor of {processes} workers on {settings.home}", err=True)
        raise SystemExit(
            Supervisor(child, processes, shutdown_timeout=max(settings.lease_seconds, 5.0)).run()
        )
    workspace = open_workspace()
    consumer = make_worker(workspace, threads=threads, periodic=not no_periodic)
    click.echo(f"worker {consumer.id} on {workspace.settings.home}", err=True)
    consumer.run()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def health(as_json: bool) -> None:
    """Consumers, queue depth, oldest waiting item, failure rate, cache hits and misses; exit 1
    when unhealthy."""
    from batchnb.services.health import check_health
    from batchnb.services.workspace import open_workspace

    report = check_health(open_workspace())
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str))
    else:
        click.echo(f"consumers:       {len(report.consumers)}")
        for consumer in report.consumers:
            click.echo(f"  {consumer['id']} threads={consumer['threads']}")
        click.echo(f"queue depth:     {_queue_depth(report.queue_depth)}")
        click.echo(f"processing:      {report.processing}")
        age = report.oldest_pending_seconds
        click.echo(f"oldest waiting:  {'-' if age is None else f'{age:.0f}s'}")
        rate = report.failure_rate
        click.echo(f"failure rate 1h: {'-' if rate is None else f'{rate:.0%}'}")
        if report.cache is not None:
            # Redis: the totals of every process; memory: this process's, and it says so.
            click.echo(f"cache:           {report.cache.describe()}")
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo("healthy" if report.healthy else "unhealthy")
    if not report.healthy:
        sys.exit(1)


def _queue_depth(depth: dict[str, int]) -> str:
    """``7 (batch_processing 5, exports 2)``: the total, then each queue with items."""
    total = sum(depth.values())
    per_queue = ", ".join(f"{queue} {count:,}" for queue, count in sorted(depth.items()) if count)
    return f"{total:,} ({per_queue})" if per_queue else "0"


@main.group()
def db() -> None:
    """Database schema commands."""


def _settings_database() -> Database:
    """The workspace database without the automatic upgrade (the db commands manage it)."""
    from batchnb.db.engine import Database

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return Database(settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)


@db.command(name="upgrade")
@click.option("--revision", default="head", show_default=True)
@domain_errors
def db_upgrade(revision: str) -> None:
    """Upgrade the database schema (opening a workspace also upgrades to the newest)."""
    from batchnb.db.migrate import current_revision, head_revision, upgrade

    database = _settings_database()
    upgrade(database, revision)
    click.echo(f"database at revision {current_revision(database)} (newest: {head_revision()})")


@db.command(name="downgrade")
@click.argument("revision")
@domain_errors
def db_downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION ("base" removes every table)."""
    from batchnb.db.migrate import current_revision, downgrade

    database = _settings_database()
    downgrade(database, revision)
    click.echo(f"database at revision {current_revision(database)}")


@db.command(name="current")
@domain_errors
def db_current() -> None:
    """Print the database's schema revision and the newest one."""
    from batchnb.db.migrate import current_revision, head_revision

    database = _settings_database()
    click.echo(f"database at revision {current_revision(database)} (newest: {head_revision()})")
