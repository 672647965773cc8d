"""Analytics over the batch history: volumes, success rate, processing times, failures, trends.

The public side: :func:`analytics_summary` (cached, permission-checked), :func:`compute_summary`
and the :class:`AnalyticsSummary` it returns. The SQL is in ``analytics_queries.py``; reports
are written by ``analytics_report.py``.

What counts where (see docs/analytics.md):

- a document counts in the period (and UTC day) it was created, with its current status;
- processing time per extractor and document type is the ``duration_ms`` of completed
  extraction jobs created in the period (a retry is a new job), grouped by the job's
  ``extractor`` and ``document_type`` columns (the type an "auto" run classified, else the file
  type, as the worker stored it); per queue, it is how long completed queue items of every job
  type ran (``finished_at - started_at``);
- trends are hourly queue activity: the ``queue_stats`` rows written by the periodic
  ``aggregate_queue_stats`` task for the whole workspace, or the same figures computed from
  the user's own queue items when the summary is for one user;
- failures are grouped by the kind recorded when they happened (``documents.error_kind``,
  see :mod:`batchnb.errors`), never by reading their messages.

Floating-point figures are rounded to 3 decimals (microseconds for times in milliseconds) so
that SQLite and PostgreSQL, which sum in different orders, report the same values. The
queries are independent and run side by side on a few connections.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from batchnb.cache import ANALYTICS
from batchnb.db.scope import Scope
from batchnb.queue.stats import completed_durations
from batchnb.services import display
from batchnb.services.access import authorize_user, is_admin
from batchnb.services.analytics_freshness import is_settled, read_freshness
from batchnb.services.analytics_queries import (
    DECIMALS,
    PARALLEL_QUERIES,
    PERCENTILES,
    TIMING_COLUMNS,
    TREND_COLUMNS,
    VOLUME_COLUMNS,
    batch_count,
    duration_stats,
    failure_messages,
    job_durations,
    run_side_by_side,
    scheduled_runs,
    trends,
    volume_daily,
)
from batchnb.services.workspace import Workspace, acting

__all__ = [
    "DECIMALS",
    "FAILURE_COLUMNS",
    "PARALLEL_QUERIES",
    "PERCENTILES",
    "TIMING_COLUMNS",
    "TIMING_DIMENSIONS",
    "TREND_COLUMNS",
    "UNKNOWN",
    "VOLUME_COLUMNS",
    "AnalyticsSummary",
    "analytics_summary",
    "compute_summary",
]

TIMING_DIMENSIONS = ("queue", "extractor", "document_type")
UNKNOWN = "(unknown)"
"""Kind of a failure recorded without one (and label of any missing group value)."""

FAILURE_COLUMNS = ["kind", "documents", "share", "example", "example_file"]


@dataclass(frozen=True, eq=False)
class AnalyticsSummary:
    """Analytics of one period for one user (``user=None``: every user).

    Totals are attributes; the tables are DataFrames:

    ``overview``: metric, value. ``timing``: dimension (queue, extractor or document_type),
    value, jobs, mean_ms, p50_ms, p95_ms. ``failures``: kind, documents, share of the failed
    documents, example (the most frequent error text of that kind) and example_file (the
    first file name, alphabetically, with that text). ``volume_daily`` and
    ``volume_weekly``: day / week (its Monday), created, completed, failed, cancelled, open,
    pages. ``trends``: hour (UTC), queue, created, completed, failed, cancelled, retried,
    mean_duration_ms, max_duration_ms.
    """

    start: datetime | None
    end: datetime | None
    user: str | None
    batches: int
    documents: int
    completed: int
    failed: int
    cancelled: int
    open: int
    pages: int
    timing: pd.DataFrame
    failures: pd.DataFrame
    volume_daily: pd.DataFrame
    volume_weekly: pd.DataFrame
    trends: pd.DataFrame
    scheduled_runs: dict[str, int] = field(default_factory=dict)
    """Scheduled runs (``batchnb schedule``) started in the period: succeeded, failed, running."""
    scheduled_failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The newest failed scheduled runs of the period: schedule, started_at, error."""

    @property
    def success_rate(self) -> float | None:
        """Completed / (completed + failed); ``None`` before anything finished."""
        finished = self.completed + self.failed
        return self.completed / finished if finished else None

    def totals(self) -> dict[str, Any]:
        """The headline figures by name, in report order."""
        return {
            "batches": self.batches,
            "documents": self.documents,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "open": self.open,
            "success_rate": self.success_rate,
            "pages": self.pages,
        }

    @property
    def overview(self) -> pd.DataFrame:
        """The totals as a two-column table (metric, value)."""
        metrics = self.totals()
        values = pd.Series(list(metrics.values()), dtype=object)  # ints stay ints
        return pd.DataFrame({"metric": list(metrics), "value": values})

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by name, in report order."""
        return {
            "overview": self.overview,
            "timing": self.timing,
            "failures": self.failures,
            "volume_daily": self.volume_daily,
            "volume_weekly": self.volume_weekly,
            "trends": self.trends,
        }

    def _period(self) -> str:
        start = "the beginning" if self.start is None else display.format_time(self.start)
        end = "now" if self.end is None else display.format_time(self.end)
        return f"{start} to {end}"

    def _rate(self) -> str:
        return "-" if self.success_rate is None else f"{self.success_rate:.1%}"

    def __repr__(self) -> str:
        return (
            f"AnalyticsSummary({self._period()}, user={self.user!r}, batches={self.batches}, "
            f"documents={self.documents}, completed={self.completed}, failed={self.failed}, "
            f"cancelled={self.cancelled}, open={self.open}, success_rate={self._rate()})"
        )

    def _repr_html_(self) -> str:
        outcomes = {
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "open": self.open,
        }
        facts = [
            ("period", f"{self._period()} (end excluded)"),
            ("user", "all users" if self.user is None else self.user),
            ("batches", self.batches),
            ("documents", display.progress_html(outcomes)),
            ("success rate", self._rate()),
            ("pages", self.pages),
        ]
        if any(self.scheduled_runs.values()):
            runs = ", ".join(f"{n} {status}" for status, n in self.scheduled_runs.items() if n)
            facts.append(("scheduled runs", runs))
        # Tables fold away: the card stays small, the figures are one click away.
        sections = [
            display.section(
                f"{name.replace('_', ' ')} ({len(frame)} rows)",
                display.frame_table(frame, latest=name in ("volume_daily", "trends")),
            )
            for name, frame in self.tables().items()
            if name != "overview"
        ]
        if not self.scheduled_failures.empty:
            sections.append(
                display.section(
                    f"failed scheduled runs ({len(self.scheduled_failures)})",
                    display.frame_table(self.scheduled_failures),
                )
            )
        return display.card("Analytics", facts, after=display.join(*sections))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the period, the totals and every table as a list of records."""
        tables = {
            name: json.loads(frame.to_json(orient="records", date_format="iso"))
            for name, frame in self.tables().items()
            if name != "overview"
        }
        return {
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "user": self.user,
            **self.totals(),
            **tables,
            "scheduled_runs": self.scheduled_runs,
            "scheduled_failures": json.loads(
                self.scheduled_failures.to_json(orient="records", date_format="iso")
            ),
        }


def analytics_summary(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    user: str | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> AnalyticsSummary:
    """Analytics of the documents created in ``[start, end)``, cached per period and user.

    A cached summary is served only while the data it reads is unchanged: each call first
    reads a version of that data (one indexed statement), so a document finished by any
    worker, or a batch deleted by any process, shows at the next call (see
    :mod:`batchnb.services.analytics_freshness`).

    Parameters
    ----------
    start, end:
        The period (``end`` excluded); naive datetimes are taken as UTC. ``None``: unbounded.
    user:
        Only this user's documents. An admin may name anyone (``None``: every user); anyone
        else sees only their own documents and may name only themselves.
    actor:
        Who asks (default: the workspace user).

    Raises
    ------
    PermissionDeniedError
        A user who is not an admin asked for another user's figures (the refusal is
        audited).
    """
    workspace, actor = acting(workspace, actor)
    scope = _scope_user(workspace, actor, user)
    start_utc, end_utc = _as_utc(start), _as_utc(end)
    key = json.dumps([scope, _iso(start_utc), _iso(end_utc)])
    if workspace.cache.backend == "none":  # no version to read: every read computes
        uncached: AnalyticsSummary = workspace.cache.get_or_create(
            ANALYTICS,
            key,
            lambda: compute_summary(workspace, start=start_utc, end=end_utc, user=scope),
        )
        return uncached
    # Read before computing: a change committed later gives another version (see
    # analytics_freshness.py), so a summary that missed it is never served afterwards.
    freshness = read_freshness(workspace.db)

    def create() -> AnalyticsSummary:
        summary = compute_summary(workspace, start=start_utc, end=end_utc, user=scope)
        freshness.settled = is_settled(
            workspace.db,
            Scope(start_utc, end_utc, scope),
            open_documents=summary.open,
            running_schedules=summary.scheduled_runs.get("running", 0),
            now=freshness.read_at,
        )
        return summary

    summary: AnalyticsSummary = workspace.cache.get_or_create(
        ANALYTICS, key, create, freshness=freshness
    )
    return summary


def compute_summary(
    workspace: Workspace,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    user: str | None = None,
) -> AnalyticsSummary:
    """The summary straight from the database: no cache and no permission check.

    Its queries do not depend on each other, so they run side by side on
    :data:`PARALLEL_QUERIES` connections (a database scans and sorts on several cores).
    """
    scope = Scope(_as_utc(start), _as_utc(end), user)
    # The slowest first (on a large history: percentiles of every queue item, then of every
    # job twice, then the daily volume), so that they start at once.
    parts: dict[str, Callable[[Connection], Any]] = {
        "queue": lambda c: duration_stats(c, completed_durations(scope)),
        "document_type": lambda c: duration_stats(c, job_durations(scope, "document_type")),
        "extractor": lambda c: duration_stats(c, job_durations(scope, "extractor")),
        "daily": lambda c: volume_daily(c, scope),
        "failures": lambda c: failure_messages(c, scope),
        "trends": lambda c: trends(c, scope),
        "batches": lambda c: batch_count(c, scope),
        "scheduled": lambda c: scheduled_runs(c, scope),
    }
    found = run_side_by_side(workspace.db, parts)
    daily: pd.DataFrame = found["daily"]
    totals = daily[VOLUME_COLUMNS].sum()
    return AnalyticsSummary(
        start=scope.start,
        end=scope.end,
        user=user,
        batches=found["batches"],
        documents=int(totals["created"]),
        completed=int(totals["completed"]),
        failed=int(totals["failed"]),
        cancelled=int(totals["cancelled"]),
        open=int(totals["open"]),
        pages=int(totals["pages"]),
        timing=_timing([found[dimension] for dimension in TIMING_DIMENSIONS]),
        failures=_failures(found["failures"]),
        volume_daily=daily,
        volume_weekly=_volume_weekly(daily),
        trends=found["trends"],
        scheduled_runs=found["scheduled"][0],
        scheduled_failures=found["scheduled"][1],
    )


def _scope_user(workspace: Workspace, actor: str, user: str | None) -> str | None:
    """Whose documents the actor may see: anyone's (or everyone's) for an admin, else their own."""
    authorize_user(
        workspace,
        actor,
        "analytics",
        actor if user is None else user,
        what=f"see the analytics of user {user!r}",
        hint="leave the user out to see your own",
    )
    if user is None and not is_admin(workspace.settings, actor):
        return actor
    return user


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _volume_weekly(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily volumes summed per ISO week, labelled by the week's Monday."""
    weeks = daily.assign(week=[day - timedelta(days=day.weekday()) for day in daily["day"]])
    frame = weeks.groupby("week", sort=True)[VOLUME_COLUMNS].sum().reset_index()
    return frame.astype(dict.fromkeys(VOLUME_COLUMNS, "int64"))


def _failures(messages: list[tuple[str | None, str | None, int, str]]) -> pd.DataFrame:
    """Failed documents per kind, from (kind, error text, documents, first file name) rows."""
    kinds: dict[str, list[tuple[int, str, str]]] = {}
    for kind, error, documents, file_name in messages:
        kinds.setdefault(kind or UNKNOWN, []).append((documents, error or "", file_name))
    total = sum(message[0] for messages in kinds.values() for message in messages)
    records: list[tuple[str, int, float, str, str]] = []
    for kind, found in kinds.items():
        documents = sum(message[0] for message in found)
        _, example, file_name = min(found, key=lambda message: (-message[0], message[1]))
        records.append((kind, documents, documents / total, example, file_name))
    records.sort(key=lambda record: (-record[1], record[0]))
    return pd.DataFrame(records, columns=FAILURE_COLUMNS).astype({"documents": "int64"})


def _timing(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The timing tables of every dimension, in :data:`TIMING_DIMENSIONS` and value order."""
    frame = pd.concat([part for part in frames if not part.empty] or frames[:1])
    frame["value"] = frame["value"].fillna(UNKNOWN)
    frame["order"] = frame["dimension"].map(TIMING_DIMENSIONS.index)
    frame = frame.sort_values(["order", "value"]).drop(columns="order")
    times = ["mean_ms", "p50_ms", "p95_ms"]
    frame = frame.astype({"jobs": "int64", **dict.fromkeys(times, "float64")})
    return frame.reset_index(drop=True).round(dict.fromkeys(times, DECIMALS))
