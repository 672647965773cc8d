"""When a cached analytics summary is still true: a cheap version of the data it reads.

Workers finish documents in other processes (and machines) without telling the cache, so
:func:`batchnb.services.analytics.analytics_summary` asks the database, before each read, for
a version of everything a summary reads (one statement of index lookups, well under a
millisecond on 200,000 documents) and serves its cached summary only while the version is the
one the summary was computed under (:mod:`batchnb.cache.freshness`).

What the version is made of, and the changes each part sees:

- the open (``pending``/``processing``) extraction jobs and exports, counted through the
  ``(status, updated_at)`` indexes, so the cost grows with the work still open, not with the
  history: every document or export that finishes, fails or is failed by the reaper leaves
  that set, in the same transaction as its queue item, documents row and result;
- the largest id of documents, jobs, batches and exports: new work (a submit, a retry's new
  job) can enter the open set in the same moment another leaves it, and the count alone
  would not move;
- the largest audit event id: every service operation (retry, cancel, delete, bulk status,
  review, schedules) writes one in its own transaction, so changes made by a CLI command or
  another kernel show here too, even with each process's own in-memory cache;
- the newest rows of ``queue_stats`` (rewritten by the periodic aggregation for the last two
  hours only) and of ``schedule_runs`` (a run that ends sets ``finished_at``): their largest
  id, and the latest ``updated_at`` / the number of finished runs among the last
  :data:`RECENT_ROWS`.

A summary of a *settled* period changes only through a service operation: the period ended
over :data:`SETTLE_HOURS` hours ago (no new document, hourly statistic or finished queue
item can fall in it), and when it was computed none of its documents, scheduled runs, or jobs
and exports created before its end were open. Such a summary is stamped with the audit id
alone, so the work going on today does not throw away last month's figures.

Changes this does not see, served until the cache's time to live ends: rows edited by hand in
the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, literal_column, select

from batchnb.db.engine import Database
from batchnb.db.models import (
    AuditEvent,
    Document,
    ExtractionBatch,
    ExtractionJob,
    QueueStat,
    ScheduleRun,
    utcnow,
)
from batchnb.db.models import Export as ExportRow
from batchnb.db.scope import Scope, hour_start
from batchnb.db.statuses import DocumentStatus, ExportStatus

RECENT_ROWS = 64
"""Newest ``queue_stats`` and ``schedule_runs`` rows the version looks at: the aggregation
rewrites two hours of a few queues, and a run is marked finished within minutes."""
SETTLE_HOURS = 2
"""Hours after the end of a period (past the end of its last hour) when it can settle."""

_OPEN_JOB = (DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value)
_OPEN_EXPORT = (ExportStatus.PENDING.value, ExportStatus.PROCESSING.value)


def _max_id(model: Any) -> Any:
    return select(func.max(model.id)).scalar_subquery()


def _open_count(model: Any, statuses: tuple[str, ...]) -> Any:
    # The statuses are written into the SQL: an IN list of bound values is re-rendered at
    # every execution, which costs more than the lookups themselves.
    written: list[ColumnElement[Any]] = [literal_column(f"'{status}'") for status in statuses]
    return select(func.count()).select_from(model).where(model.status.in_(written))


def _recent(model: Any, column: Any, aggregate: Any) -> Any:
    newest = select(column.label("v")).order_by(model.id.desc()).limit(RECENT_ROWS).subquery()
    return select(aggregate(newest.c.v)).scalar_subquery()


#: The version statement (built once: it runs before every cached summary read).
VERSION_QUERY = select(
    _max_id(AuditEvent),
    _open_count(ExtractionJob, _OPEN_JOB).scalar_subquery(),
    _open_count(ExportRow, _OPEN_EXPORT).scalar_subquery(),
    _max_id(ExtractionJob),
    _max_id(Document),
    _max_id(ExtractionBatch),
    _max_id(ExportRow),
    _max_id(QueueStat),
    _recent(QueueStat, QueueStat.updated_at, func.max),
    _max_id(ScheduleRun),
    _recent(ScheduleRun, ScheduleRun.finished_at, func.count),
)


def read_version(connection: Connection) -> tuple[Any, ...]:
    """The data version: equal twice only if nothing a summary reads changed in between
    (the first value is the largest audit event id)."""
    return tuple(connection.execute(VERSION_QUERY).one())


@dataclass
class SummaryFreshness:
    """Whether a stored summary holds for the version read now (a cache ``Freshness``).

    ``settled`` is set by the code that computes a summary (:func:`is_settled`); the stamp
    stored with it is then the audit id alone.
    """

    version: tuple[Any, ...]
    read_at: datetime
    settled: bool = False

    def holds(self, stamp: Any) -> bool:
        return bool(stamp == ("live", self.version) or stamp == ("settled", self.version[0]))

    def stamp(self, value: Any) -> Any:
        return ("settled", self.version[0]) if self.settled else ("live", self.version)


def read_freshness(db: Database) -> SummaryFreshness:
    """The version of the data now, read in one statement (before computing anything)."""
    read_at = utcnow()
    with db.connect() as connection:
        return SummaryFreshness(read_version(connection), read_at)


def is_settled(
    db: Database, scope: Scope, *, open_documents: int, running_schedules: int, now: datetime
) -> bool:
    """Whether only a service operation can still change the summary of ``scope``.

    ``open_documents`` and ``running_schedules`` are the summary's own figures; the open jobs
    and exports (a retry's job or an export created in the period, still waiting) are read
    here, from the ``(status, updated_at)`` indexes.
    """
    end = scope.hours().end
    if end is None or end > hour_start(now) - timedelta(hours=SETTLE_HOURS):
        return False
    if open_documents or running_schedules:
        return False
    with db.connect() as connection:
        for model, statuses in ((ExtractionJob, _OPEN_JOB), (ExportRow, _OPEN_EXPORT)):
            if connection.scalar(_open_before(model, statuses, scope)):
                return False
    return True


def _open_before(model: Any, statuses: tuple[str, ...], scope: Scope) -> Select[Any]:
    """Open rows of ``model`` created before the end of the period (one user's, if any)."""
    conditions: list[ColumnElement[bool]] = [model.created_at < scope.end]
    if scope.user is not None:
        conditions.append(model.owner == scope.user)
    return _open_count(model, statuses).where(*conditions)
