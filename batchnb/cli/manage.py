"""Commands that find and change batches: list, retry, cancel, delete, audit.

Each acts as the workspace user (``BATCHNB_USER``, else ``JUPYTERHUB_USER``, else the OS
user); the services check ownership and write the audit trail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from batchnb.cli import tables
from batchnb.cli.group import domain_errors, main
from batchnb.db.statuses import BatchStatus
from batchnb.services.listing_columns import SORT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

# The services (pandas, SQLAlchemy) are imported inside the commands that use them, so
# `batchnb --help` does not load them (tests/cli/test_startup.py).

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
_TABLE_COLUMNS = [
    "id",
    "name",
    "owner",
    "status",
    "created_at",
    "document_count",
    "completed",
    "failed",
    "pending",
]


def _utc(moment: datetime | None) -> datetime | None:
    """Dates on the command line are UTC."""
    return None if moment is None else moment.replace(tzinfo=UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _echo_table(frame: pd.DataFrame, empty: str) -> None:
    if frame.empty:
        click.echo(empty)
        return
    click.echo(tables.render(frame))


@main.command(name="list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in BatchStatus]),
    help="Only batches in this status (repeatable: any of them).",
)
@click.option("--owner", help="Only this user's batches (admins only, or yourself).")
@click.option(
    "--from",
    "created_from",
    type=click.DateTime(_DATE_FORMATS),
    help="Created at or after this UTC date/time.",
)
@click.option(
    "--to",
    "created_to",
    type=click.DateTime(_DATE_FORMATS),
    help="Created before this UTC date/time.",
)
@click.option("--search", "-s", help="Text in the batch name or in a file name (any case).")
@click.option(
    "--failed/--no-failed",
    "has_failures",
    default=None,
    help="Only batches with (or without) failed documents.",
)
@click.option("--sort", type=click.Choice(SORT_COLUMNS), default="created_at", show_default=True)
@click.option("--asc", "ascending", is_flag=True, help="Ascending order (default: descending).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (rows, total, page).")
@domain_errors
def list_command(
    statuses: tuple[str, ...],
    owner: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    search: str | None,
    has_failures: bool | None,
    sort: str,
    ascending: bool,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """List your batches (an admin's: everyone's), newest first, with counts per status."""
    from batchnb.services.listing import list_batches
    from batchnb.services.workspace import open_workspace

    result = list_batches(
        workspace=open_workspace(),
        status=list(statuses) or None,
        owner=owner,
        created_from=_utc(created_from),
        created_to=_utc(created_to),
        search=search,
        has_failures=has_failures,
        sort=sort,
        descending=not ascending,
        page=page,
        page_size=page_size,
    )
    if as_json:
        payload = {
            "total": result.total,
            "page": result.page,
            "page_size": result.page_size,
            "pages": result.pages,
            "rows": [row.as_dict() for row in result.rows],
        }
        click.echo(json.dumps(payload, default=_json_default, ensure_ascii=False))
        return
    _echo_table(result.to_dataframe()[_TABLE_COLUMNS], "(no batches)")
    click.echo(f"page {result.page} of {result.pages}, {result.total} batches", err=True)


@main.command()
@click.argument("batch_id", type=int)
@click.option("--prompt", "-p", help="Extract these fields instead, in plain words.")
@click.option("--extractor", help="Use this extractor instead.")
@click.option(
    "--document",
    "document_ids",
    type=int,
    multiple=True,
    help="Only this failed document (repeatable); default every failed one.",
)
@domain_errors
def retry(
    batch_id: int, prompt: str | None, extractor: str | None, document_ids: tuple[int, ...]
) -> None:
    """Queue the failed documents of BATCH_ID again (a worker must be running)."""
    from batchnb.services.manage import retry_failed
    from batchnb.services.workspace import open_workspace

    queued = retry_failed(
        batch_id,
        document_ids=list(document_ids) or None,
        prompt=prompt,
        extractor=extractor,
        workspace=open_workspace(),
    )
    if queued:
        click.echo(f"queued {queued} failed documents of batch {batch_id} again")
    else:
        click.echo(f"batch {batch_id} has no failed documents: nothing to retry")


@main.command()
@click.argument("batch_id", type=int)
@domain_errors
def cancel(batch_id: int) -> None:
    """Cancel BATCH_ID: waiting documents never start, running ones stop shortly."""
    from batchnb.services.manage import cancel_batch
    from batchnb.services.workspace import open_workspace

    cancelled = cancel_batch(batch_id, workspace=open_workspace())
    click.echo(f"cancelled {cancelled} waiting or running documents of batch {batch_id}")


@main.command()
@click.argument("batch_id", type=int)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@domain_errors
def delete(batch_id: int, yes: bool) -> None:
    """Delete BATCH_ID with its documents, results and files no other batch uses."""
    from batchnb.services.batches import get_batch
    from batchnb.services.manage import delete_batch
    from batchnb.services.workspace import open_workspace

    workspace = open_workspace()
    if not yes:
        info = get_batch(batch_id, workspace).info()
        click.confirm(
            f"Delete batch {batch_id} ({info.name!r} of {info.owner}, {info.document_count} "
            "documents) and all its results? This cannot be undone",
            abort=True,
        )
    summary = delete_batch(batch_id, workspace=workspace)
    click.echo(
        f"deleted batch {batch_id}: {summary.documents} documents, "
        f"{summary.files_removed} stored files removed"
    )


@main.command()
@click.option("--actor", "actor_filter", help="Only events caused by this user.")
@click.option("--action", help="Only this action (submit, retry, cancel, delete, ...).")
@click.option("--batch", "batch_id", type=int, help="Only events on this batch.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per event).")
@domain_errors
def audit(
    actor_filter: str | None, action: str | None, batch_id: int | None, limit: int, as_json: bool
) -> None:
    """Who did what to which batch, newest first (refusals included).

    Admins see every event; others see their own and those on their batches.
    """
    from batchnb.services.audit_trail import list_audit_events
    from batchnb.services.workspace import open_workspace

    events = list_audit_events(
        actor_filter=actor_filter,
        action=action,
        target_id=batch_id,
        limit=limit,
        workspace=open_workspace(),
    )
    if as_json:
        records = events.to_dict(orient="records")
        click.echo(json.dumps(records, default=_json_default, ensure_ascii=False))
        return
    if not events.empty:
        events["allowed"] = events["allowed"].map({True: "yes", False: "REFUSED"})
        events["details"] = events["details"].map(
            lambda d: json.dumps(d, ensure_ascii=False, default=_json_default)
        )
    _echo_table(events.drop(columns=["id"]), "(no events)")
