"""The SQL of the analytics summary: one aggregate query per table, run side by side.

Every figure is aggregated by the database (``GROUP BY``), so a summary costs a handful of
queries whatever the size of the history. Percentiles of processing time come from
PostgreSQL's ``percentile_cont``, and on SQLite from a window function that numbers the
durations of each group, of which only the two around each percentile are fetched; both
interpolate linearly, like pandas' default quantile.

The public side (the summary dataclass, caching, permissions, error kinds) is in
``analytics.py``; what counts where is described there and in docs/analytics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Integer,
    Select,
    case,
    cast,
    func,
    or_,
    select,
    text,
)

from batchnb.db.engine import Database
from batchnb.db.models import (
    Document,
    DocumentStatus,
    ExtractionBatch,
    ExtractionJob,
    ItemStatus,
    QueueItem,
    QueueStat,
)
from batchnb.queue.stats import hour_start

PERCENTILES = (0.5, 0.95)
DECIMALS = 3
"""Times in milliseconds are rounded to microseconds, so both dialects report the same."""
WORK_MEM = "64MB"
"""PostgreSQL sort memory of the analytics queries (the percentiles sort every duration)."""
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


@dataclass(frozen=True)
class Scope:
    """What one summary covers: rows created in ``[start, end)`` (UTC), of ``user`` or all."""

    start: datetime | None
    end: datetime | None
    user: str | None

    def period(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions keeping ``column`` inside the period."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions

    def where(self, created: Any, owner: Any) -> list[ColumnElement[bool]]:
        """The period on ``created``, and the user on ``owner`` when there is one."""
        conditions = self.period(created)
        if self.user is not None:
            conditions.append(owner == self.user)
        return conditions

    def hours(self) -> Scope:
        """The whole hours that overlap the period (trends are hourly)."""
        start = None if self.start is None else hour_start(self.start)
        end = self.end
        if end is not None and end != hour_start(end):
            end = hour_start(end) + timedelta(hours=1)
        return Scope(start, end, self.user)


def run_side_by_side(db: Database, parts: dict[str, Callable[[Connection], Any]]) -> dict[str, Any]:
    """Each part on its own connection, :data:`PARALLEL_QUERIES` at a time; results by name.

    The queries do not depend on each other, and a database scans and sorts on several cores.
    """

    def run(part: Callable[[Connection], Any]) -> Any:
        with db.connect() as connection:
            if connection.dialect.name == "postgresql":
                # A few big aggregates lose more to JIT compilation (~70 ms) than they gain,
                # and percentiles sort every duration: give the sorts memory, not disk.
                connection.exec_driver_sql("SET LOCAL jit = off")
                connection.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
            return part(connection)

    with ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="batchnb-analytics") as pool:
        futures = {name: pool.submit(run, part) for name, part in parts.items()}
        return {name: future.result() for name, future in futures.items()}


def _utc_day(column: Any, postgres: bool) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp (SQLite stores UTC text)."""
    if postgres:
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _utc_hour(column: Any, postgres: bool) -> ColumnElement[Any]:
    if postgres:
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def _elapsed_ms(started: Any, finished: Any, postgres: bool) -> ColumnElement[Any]:
    """Milliseconds between two timestamps, exact to the microsecond on both dialects.

    SQLite's ``julianday`` is off by tens of microseconds, so whole seconds and microseconds
    (characters 21-26 of the stored text) are subtracted separately.
    """
    if postgres:
        # date_part gives a double (extract a slower numeric); rounding to 3 decimals at the
        # end removes the last-bit difference.
        return func.date_part("epoch", finished - started) * 1000
    seconds = cast(func.strftime("%s", finished), Integer) - cast(
        func.strftime("%s", started), Integer
    )
    micros = cast(func.substr(finished, 21, 6), Integer) - cast(
        func.substr(started, 21, 6), Integer
    )
    return seconds * 1000.0 + micros / 1000.0


def batch_count(connection: Connection, scope: Scope) -> int:
    """Batches created in the period."""
    count = connection.scalar(
        select(func.count())
        .select_from(ExtractionBatch)
        .where(*scope.where(ExtractionBatch.created_at, ExtractionBatch.owner))
    )
    return int(count or 0)


def volume_daily(connection: Connection, scope: Scope, postgres: bool) -> pd.DataFrame:
    """Documents created per UTC day by current status, and pages of the completed ones."""
    day = _utc_day(Document.created_at, postgres).label("day")
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


def failure_messages(connection: Connection, scope: Scope) -> list[tuple[str | None, int, str]]:
    """(error text, failed documents, first file name) per distinct error text."""
    # Grouping by the text keeps the transfer to the distinct messages; their kinds are
    # Python rules (analytics.classify_error).
    rows = connection.execute(
        select(Document.error, func.count(), func.min(Document.file_name))
        .where(
            Document.status == DocumentStatus.FAILED.value,
            *scope.where(Document.created_at, Document.owner),
        )
        .group_by(Document.error)
    ).all()
    return [(error, int(documents), file_name) for error, documents, file_name in rows]


def queue_durations(scope: Scope, postgres: bool) -> Select[Any, Any]:
    """Completed queue items of every job type: queue, and how long the item ran."""
    elapsed = _elapsed_ms(QueueItem.started_at, QueueItem.finished_at, postgres)
    return select(QueueItem.queue_name.label("queue"), elapsed.label("d")).where(
        QueueItem.status == ItemStatus.COMPLETED.value,
        QueueItem.started_at.is_not(None),
        QueueItem.finished_at.is_not(None),
        *scope.where(QueueItem.created_at, QueueItem.owner),
    )


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


def duration_stats(connection: Connection, rows: Select[Any, Any], postgres: bool) -> pd.DataFrame:
    """Count, mean, p50 and p95 of ``rows``' column ``d`` per value of its first column.

    Columns: :data:`TIMING_COLUMNS`, ``dimension`` being the first column's name.
    """
    dimension = str(rows.selected_columns[0].key)
    found = rows.subquery()
    value, duration = found.c[dimension], found.c.d
    if postgres:
        # percentile_cont interpolates like pandas; the two percentiles share one sort.
        statement = select(
            value,
            func.count(),
            func.avg(duration),
            *(func.percentile_cont(share).within_group(duration) for share in PERCENTILES),
        ).group_by(value)
        frame = pd.DataFrame(connection.execute(statement).all(), columns=TIMING_COLUMNS[1:])
        return frame.assign(dimension=dimension)[TIMING_COLUMNS]
    # SQLite has no percentile function: number each group's durations in order (a window
    # sort, in SQLite's C code) and fetch only the two neighbours of each percentile.
    ranked = select(
        value.label("value"),
        duration.label("d"),
        (func.row_number().over(partition_by=value, order_by=duration) - 1).label("i"),
        func.count().over(partition_by=value).label("n"),
        func.avg(duration).over(partition_by=value).label("mean"),
    ).subquery()
    lows = [cast((ranked.c.n - 1) * share, Integer) for share in PERCENTILES]
    wanted = or_(*(ranked.c.i == low + step for low in lows for step in (0, 1)))
    groups: dict[Any, tuple[int, float, dict[int, float]]] = {}
    for group, found_d, index, size, mean in connection.execute(
        select(ranked.c.value, ranked.c.d, ranked.c.i, ranked.c.n, ranked.c.mean).where(wanted)
    ):
        groups.setdefault(group, (size, mean, {}))[2][index] = float(found_d)
    records = [
        (dimension, group, size, mean, *(_interpolate(ordered, size, q) for q in PERCENTILES))
        for group, (size, mean, ordered) in groups.items()
    ]
    return pd.DataFrame(records, columns=TIMING_COLUMNS)


def _interpolate(ordered: dict[int, float], size: int, share: float) -> float:
    """The ``share`` quantile from the values around it, by position in the sorted group.

    Linear interpolation, like PostgreSQL's percentile_cont and pandas' quantile.
    """
    position = (size - 1) * share
    low = int(position)
    below = ordered[low]
    return below + (position - low) * (ordered.get(low + 1, below) - below)


def trends(connection: Connection, scope: Scope, postgres: bool) -> pd.DataFrame:
    """Hourly queue activity of the hours overlapping the period: :data:`TREND_COLUMNS`.

    The whole workspace reads the ``queue_stats`` rows; one user's figures are computed from
    their own queue items (queue_stats has no owner).
    """
    hours = scope.hours()
    if scope.user is None:
        columns = [QueueStat.hour, QueueStat.queue_name]
        columns += [getattr(QueueStat, name) for name in TREND_COLUMNS[2:]]
        rows = connection.execute(select(*columns).where(*hours.period(QueueStat.hour))).all()
        frame = pd.DataFrame(rows, columns=TREND_COLUMNS)
    else:
        frame = _trends_of_user(connection, hours, postgres)
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    frame = frame.astype(
        {**dict.fromkeys(_TREND_COUNTS, "int64"), **dict.fromkeys(_TREND_TIMES, "float64")}
    )
    frame = frame.sort_values(["hour", "queue"]).reset_index(drop=True)
    return frame.round(dict.fromkeys(_TREND_TIMES, DECIMALS))


def _trends_of_user(connection: Connection, hours: Scope, postgres: bool) -> pd.DataFrame:
    """What ``aggregate_queue_stats`` computes, for one user's queue items only.

    An item counts as created in the hour of ``created_at`` and as completed, failed,
    cancelled or retried (more than one attempt) in the hour of ``finished_at``.
    """
    created_hour = _utc_hour(QueueItem.created_at, postgres).label("hour")
    created = connection.execute(
        select(created_hour, QueueItem.queue_name, func.count())
        .where(*hours.where(QueueItem.created_at, QueueItem.owner))
        .group_by(created_hour, QueueItem.queue_name)
    ).all()
    finished_hour = _utc_hour(QueueItem.finished_at, postgres).label("hour")
    done = QueueItem.status == ItemStatus.COMPLETED.value
    elapsed = case(
        (
            done & QueueItem.started_at.is_not(None),
            _elapsed_ms(QueueItem.started_at, QueueItem.finished_at, postgres),
        ),
    )

    def number(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    finished = connection.execute(
        select(
            finished_hour,
            QueueItem.queue_name,
            number(done),
            number(QueueItem.status == ItemStatus.FAILED.value),
            number(QueueItem.status == ItemStatus.CANCELLED.value),
            number(QueueItem.attempts > 1),
            func.avg(elapsed),
            func.max(elapsed),
        )
        .where(
            QueueItem.finished_at.is_not(None),
            *hours.where(QueueItem.finished_at, QueueItem.owner),
        )
        .group_by(finished_hour, QueueItem.queue_name)
    ).all()
    keys = ["hour", "queue"]
    made = pd.DataFrame(created, columns=[*keys, "created"])
    ended = pd.DataFrame(finished, columns=[*keys, *TREND_COLUMNS[3:]])
    for part in (made, ended):
        part["hour"] = pd.to_datetime(part["hour"], utc=True)
    frame = made.merge(ended, on=keys, how="outer")
    frame[_TREND_COUNTS] = frame[_TREND_COUNTS].fillna(0)
    return frame[TREND_COLUMNS]
