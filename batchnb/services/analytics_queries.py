"""The SQL of the analytics summary: one aggregate query per table, run side by side.

Every figure is aggregated by the database (``GROUP BY``), so a summary costs a handful of
queries whatever the size of the history. Percentiles of processing time interpolate
linearly on both databases, like pandas' default quantile (see
:func:`batchnb.db.sql.percentile_stats`); queue figures come from the queue's own queries
(:mod:`batchnb.queue.stats`).

The public side (the summary dataclass, caching, permissions) is in ``analytics.py``; what
counts where is described there and in docs/analytics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, func, select, text

from batchnb.db.engine import Database
from batchnb.db.models import Document, ExtractionBatch, ExtractionJob, Schedule, ScheduleRun
from batchnb.db.scope import Scope
from batchnb.db.sql import percentile_stats, tune_for_aggregates, utc_day
from batchnb.db.statuses import DocumentStatus
from batchnb.queue.stats import hourly_activity, stored_hourly_activity

PERCENTILES = (0.5, 0.95)
DECIMALS = 3
"""Times in milliseconds are rounded to microseconds, so both dialects report the same."""
PARALLEL_QUERIES = 4
"""Connections one summary uses at once."""

VOLUME_COLUMNS = ["created", "completed", "failed", "cancelled", "open", "pages"]
TIMING_COLUMNS = ["dimension", "value", "jobs", "mean_ms", "p50_ms", "p95_ms"]
TREND_COLUMNS = [
    "hour",
    "queue",
    "created",
    "completed",
    "failed",
    "cancelled",
    "retried",
    "mean_duration_ms",
    "max_duration_ms",
]
_TREND_COUNTS = ["created", "completed", "failed", "cancelled", "retried"]
_TREND_TIMES = ["mean_duration_ms", "max_duration_ms"]


def run_side_by_side(db: Database, parts: dict[str, Callable[[Connection], Any]]) -> dict[str, Any]:
    """Each part on its own connection, :data:`PARALLEL_QUERIES` at a time; results by name.

    The queries do not depend on each other, and a database scans and sorts on several cores.
    """

    def run(part: Callable[[Connection], Any]) -> Any:
        with db.connect() as connection:
            tune_for_aggregates(connection)
            return part(connection)

    with ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="batchnb-analytics") as pool:
        futures = {name: pool.submit(run, part) for name, part in parts.items()}
        return {name: future.result() for name, future in futures.items()}


def batch_count(connection: Connection, scope: Scope) -> int:
    """Batches created in the period."""
    count = connection.scalar(
        select(func.count())
        .select_from(ExtractionBatch)
        .where(*scope.where(ExtractionBatch.created_at, ExtractionBatch.owner))
    )
    return int(count or 0)


def volume_daily(connection: Connection, scope: Scope) -> pd.DataFrame:
    """Documents created per UTC day by current status, and pages of the completed ones."""
    day = utc_day(Document.created_at).label("day")
    rows = connection.execute(
        select(day, Document.status, func.count(), func.sum(Document.page_count))
        .where(*scope.where(Document.created_at, Document.owner))
        .group_by(day, Document.status)
    ).all()
    counts: dict[Any, dict[str, int]] = {}
    for raw_day, status, documents, pages in rows:
        entry = counts.setdefault(pd.Timestamp(raw_day).date(), dict.fromkeys(VOLUME_COLUMNS, 0))
        entry["created"] += documents
        column = "open" if status in (DocumentStatus.PENDING, DocumentStatus.PROCESSING) else status
        entry[column] = entry.get(column, 0) + documents
        if status == DocumentStatus.COMPLETED:
            entry["pages"] += int(pages or 0)
    frame = pd.DataFrame(
        [{"day": key, **values} for key, values in sorted(counts.items())],
        columns=["day", *VOLUME_COLUMNS],
    )
    return frame.astype(dict.fromkeys(VOLUME_COLUMNS, "int64"))


def failure_messages(
    connection: Connection, scope: Scope
) -> list[tuple[str | None, str | None, int, str]]:
    """(kind, error text, failed documents, first file name) per distinct kind and text."""
    rows = connection.execute(
        select(Document.error_kind, Document.error, func.count(), func.min(Document.file_name))
        .where(
            Document.status == DocumentStatus.FAILED.value,
            *scope.where(Document.created_at, Document.owner),
        )
        .group_by(Document.error_kind, Document.error)
    ).all()
    return [(kind, error, int(count), file_name) for kind, error, count, file_name in rows]


# Written out literally (not as a bound parameter) so that PostgreSQL matches it with the
# partial indexes ix_extraction_jobs_completed_* even in a generic plan (psycopg prepares a
# statement run five times): they hold the completed jobs' durations in order per document
# type and extractor.
_COMPLETED_JOB = text("extraction_jobs.status = 'completed'")
_JOB_DIMENSIONS = {
    "extractor": ExtractionJob.extractor,
    "document_type": ExtractionJob.document_type,
}


def job_durations(scope: Scope, dimension: str) -> Select[Any, Any]:
    """Completed extraction jobs: their ``extractor`` or ``document_type``, and duration.

    Both are columns of the job (the worker stores the type it found), so this reads one
    table, and for the whole workspace only an index.
    """
    return select(
        _JOB_DIMENSIONS[dimension].label(dimension), ExtractionJob.duration_ms.label("d")
    ).where(
        _COMPLETED_JOB,
        ExtractionJob.duration_ms.is_not(None),
        *scope.where(ExtractionJob.created_at, ExtractionJob.owner),
    )


def duration_stats(connection: Connection, rows: Select[Any, Any]) -> pd.DataFrame:
    """Count, mean, p50 and p95 of ``rows``' column ``d`` per value of its first column.

    Columns: :data:`TIMING_COLUMNS`, ``dimension`` being the first column's name.
    """
    frame = percentile_stats(connection, rows, PERCENTILES)
    frame.columns = TIMING_COLUMNS[1:]
    return frame.assign(dimension=str(rows.selected_columns[0].key))[TIMING_COLUMNS]


def trends(connection: Connection, scope: Scope) -> pd.DataFrame:
    """Hourly queue activity of the hours overlapping the period: :data:`TREND_COLUMNS`.

    The whole workspace reads the ``queue_stats`` rows; one user's figures are computed from
    their own queue items (queue_stats has no owner).
    """
    if scope.user is None:
        activity = stored_hourly_activity(connection, scope)
    else:
        activity = hourly_activity(connection, scope)
    frame = pd.DataFrame([asdict(row) for row in activity], columns=TREND_COLUMNS)
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    frame = frame.astype(
        {**dict.fromkeys(_TREND_COUNTS, "int64"), **dict.fromkeys(_TREND_TIMES, "float64")}
    )
    frame = frame.sort_values(["hour", "queue"]).reset_index(drop=True)
    return frame.round(dict.fromkeys(_TREND_TIMES, DECIMALS))


SCHEDULED_FAILURE_COLUMNS = ["schedule", "started_at", "error"]
SCHEDULED_FAILURES_SHOWN = 10


def scheduled_runs(connection: Connection, scope: Scope) -> tuple[dict[str, int], pd.DataFrame]:
    """Scheduled runs started in the period by status, and the newest failed ones (schedules
    of ``scope.user`` only, when there is one)."""
    conditions = scope.where(ScheduleRun.started_at, Schedule.owner)
    joined = select(ScheduleRun.status, func.count()).join(
        Schedule, Schedule.id == ScheduleRun.schedule_id
    )
    found = dict(connection.execute(joined.where(*conditions).group_by(ScheduleRun.status)).all())
    counts = {status: int(found.get(status, 0)) for status in ("succeeded", "failed", "running")}
    failed = connection.execute(
        select(Schedule.name, ScheduleRun.started_at, ScheduleRun.error)
        .join(Schedule, Schedule.id == ScheduleRun.schedule_id)
        .where(*conditions, ScheduleRun.status == "failed")
        .order_by(ScheduleRun.id.desc())
        .limit(SCHEDULED_FAILURES_SHOWN)
    ).all()
    return counts, pd.DataFrame([tuple(row) for row in failed], columns=SCHEDULED_FAILURE_COLUMNS)
