"""List page and analytics summary on a large history, on SQLite and PostgreSQL, cold and cached.

Seeds ``--batches`` (1,000) batches holding ``--documents`` (200,000) documents, each with its
extraction job (with the document type the worker stores), queue item and (when completed)
its result, plus the hourly ``queue_stats`` rows, into a fresh SQLite workspace and a fresh
PostgreSQL database, then times:

* a list page: ``list_batches`` as an admin with a status filter, a search term found in the
  file names (and names) of ~8% of the batches, sorted by name, page 2 of 50 rows;
* the analytics summary: ``analytics_summary`` of the whole history for an admin (every
  table: overview, timing percentiles per queue / extractor / document type, failures by
  kind, daily and weekly volume, hourly trends); and, for information, one user's last 30
  days.

Analytics freshness: a cached summary is served only while a version of the data it reads is
unchanged (``batchnb/services/analytics_freshness.py``). The section "analytics freshness"
times the version check alone, a cached read (check included) and an uncached computation,
prints their ratios, then finishes one open document at a time (the rows a worker's outcome
changes) and reads again: the whole history must be recomputed (never served from the cache),
while a month that ended 30 days ago, settled, must still be served from it.

"Cold" is a workspace with ``cache_url="none"`` (every call queries the database; the
database's own buffers are warm after the first call, which is reported apart as "first");
"cached" is the default in-process cache after one filling call. Medians of ``--runs`` calls.
The statements of one cold summary are timed one by one, and with ``--explain`` (or when an
aim is missed) each statement's plan is printed (``EXPLAIN ANALYZE`` on PostgreSQL, ``EXPLAIN
QUERY PLAN`` on SQLite).

PostgreSQL: a database named ``batchnb_bench_<random>`` is created next to the one in
``--postgres-url`` (default ``BATCHNB_TEST_POSTGRES_URL``) and dropped at the end; without a
URL, or when the server cannot be reached, that part is skipped with a message. Seeding uses
``COPY`` there and ``executemany`` inserts on SQLite.

Run: ``.venv/bin/python benchmarks/list_and_analytics.py [--batches 1000] [--documents 200000]
[--runs 7] [--postgres-url URL] [--no-sqlite] [--no-postgres] [--explain] [--keep] [--dir PARENT]
[--smoke]`` ``--smoke`` is the smallest run through every step (20 batches, 400 documents, one
timed call, the plans printed; its figures mean nothing): it checks the script, and exits 1 when
a backend fails. Otherwise the exit code is always 0: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url

from batchnb.db.models import (
    Document,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    QueueItem,
    QueueStat,
)
from batchnb.services.analytics import analytics_summary
from batchnb.services.analytics_freshness import VERSION_QUERY, read_freshness, read_version
from batchnb.services.listing import list_batches
from batchnb.services.workspace import Workspace, open_workspace

ADMIN = "bench-admin"
USERS = [f"user{n:02d}" for n in range(20)]
VENDORS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "vandelay",
]
SEARCH = "wonka"
KINDS = ["invoice", "receipt", "contract", "statement"]
FILE_TYPES = [("pdf", 70), ("png", 10), ("docx", 10), ("xlsx", 5), ("csv", 5)]
ERRORS = [
    ("not a readable PDF: page {n} cannot be loaded (Data format error)", 30),
    ("the PDF is encrypted/password-protected: save an unprotected copy and add that instead", 15),
    ("TimeoutError: the server did not answer in 60 s (after 3 attempts)", 20),
    ("ExtractorError: the server said 502 Bad Gateway (after 3 attempts)", 10),
    ("the Excel workbook is empty (no text in any sheet)", 10),
    ("OCR failed: tesseract exited with status {n}", 10),
    ("no parser for 'exe' documents; parsable kinds: pdf, png, docx, xlsx, csv", 5),
]
DOCUMENT_TYPES = ["invoice", "receipt", "contract", "bank_statement", "other"]
HISTORY_DAYS = 90
LIST_AIM_MS = 50.0
ANALYTICS_AIM_MS = 200.0
CHUNK = 10_000
CHEAP_RUNS = 50

log = logging.getLogger("benchmark")


# ---------------------------------------------------------------------------------------------
# the history


@dataclass
class Tables:
    """Rows of one chunk of batches, per table, in insertion order."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def size(self) -> int:
        return sum(len(rows) for rows in self.as_dict().values())

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "extraction_batches": self.batches,
            "documents": self.documents,
            "queue_items": self.items,
            "extraction_jobs": self.jobs,
            "extracted_data": self.results,
        }


@dataclass
class HourStats:
    created: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    durations: list[float] = field(default_factory=list)


def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def generate(
    batches: int, documents: int, now: datetime, stats: dict[tuple[datetime, str], HourStats]
) -> Iterator[Tables]:
    """The history, in chunks of about CHUNK documents; fills ``stats`` per hour and queue.

    ``stats`` follows the rules of ``aggregate_queue_stats`` (created in the hour of
    ``created_at``; completed, failed, cancelled and retried in the hour of ``finished_at``;
    durations of completed items), so it can be written as the ``queue_stats`` rows.
    """
    rng = random.Random(20240301)
    start = now - timedelta(days=HISTORY_DAYS)
    step = timedelta(days=HISTORY_DAYS) / batches
    per_batch, extra = divmod(documents, batches)
    document_id = 0
    chunk = Tables()
    for batch_id in range(1, batches + 1):
        owner = USERS[rng.randrange(len(USERS))]
        vendor = VENDORS[rng.randrange(len(VENDORS))]
        kind = KINDS[rng.randrange(len(KINDS))]
        extractor = "openai" if rng.random() < 0.25 else "offline"
        auto = rng.random() < 0.3
        created = start + step * (batch_id - 1) + timedelta(seconds=rng.randrange(600))
        recent = batch_id > batches - 5  # the newest batches are still running
        count = per_batch + (1 if batch_id <= extra else 0)
        statuses: list[str] = []
        for position in range(count):
            document_id += 1
            if recent and rng.random() < 0.6:
                status = "pending" if rng.random() < 0.8 else "processing"
            else:
                roll = rng.random()
                status = "completed" if roll < 0.93 else "failed" if roll < 0.98 else "cancelled"
            statuses.append(status)
            file_type = _weighted(rng, FILE_TYPES)
            error = None
            if status == "failed":
                error = _weighted(rng, ERRORS).format(n=rng.randrange(1, 40))
            queued = created + timedelta(milliseconds=position * 20)
            started = finished = None
            duration = None
            attempts = 0
            if status != "pending" and status != "cancelled":
                started = queued + timedelta(seconds=rng.uniform(0.5, 120))
                attempts = 3 if error and "attempts" in error else 1
            if status == "completed":
                base = 2000.0 if extractor == "openai" else 150.0
                duration = round(rng.lognormvariate(0, 0.6) * base, 3)
                finished = started + timedelta(milliseconds=duration) if started else None
            elif status == "failed":
                finished = (started or queued) + timedelta(seconds=rng.uniform(0.1, 5))
            elif status == "cancelled":
                finished = queued + timedelta(seconds=30)
            pages = rng.randint(1, 5) if status == "completed" else None
            name = f"{vendor}-{kind}-{batch_id:04d}-{position:03d}.{file_type}"
            chunk.documents.append(
                {
                    "id": document_id,
                    "batch_id": batch_id,
                    "owner": owner,
                    "file_name": name,
                    "source": f"/data/{owner}/{name}",
                    "content_hash": f"{document_id:064x}",
                    "storage_key": f"{document_id:064x}",
                    "size_bytes": rng.randrange(10_000, 2_000_000),
                    "file_type": file_type,
                    "mime_type": "application/octet-stream",
                    "status": status,
                    "error": error,
                    "page_count": pages,
                    "created_at": created,
                    "updated_at": finished or queued,
                }
            )
            item_status = "processing" if status == "processing" else status
            chunk.items.append(
                {
                    "id": document_id,
                    "queue_name": "batch_processing",
                    "job_type": "process_document",
                    "payload": {"document_id": document_id, "job_id": document_id},
                    "batch_id": batch_id,
                    "owner": owner,
                    "status": item_status,
                    "priority": 0,
                    "attempts": attempts,
                    "scheduled_at": queued,
                    "created_at": queued,
                    "updated_at": finished or queued,
                    "started_at": started,
                    "finished_at": finished,
                    "last_error": error,
                }
            )
            chunk.jobs.append(
                {
                    "id": document_id,
                    "batch_id": batch_id,
                    "document_id": document_id,
                    "queue_item_id": document_id if started else None,
                    "owner": owner,
                    "status": status,
                    "extractor": extractor,
                    "parser": "pdf-text" if file_type == "pdf" else file_type,
                    "error": error,
                    "started_at": started,
                    "finished_at": finished,
                    "duration_ms": duration,
                    "document_type": None,
                    "created_at": queued,
                    "updated_at": finished or queued,
                }
            )
            _count(stats, queued, started, finished, item_status, attempts)
            if status == "completed":
                result = _result(rng, document_id, batch_id, auto, finished)
                chunk.results.append(result)
                # What the worker stores: the classified type of an "auto" run, else the
                # file type.
                classified = result["evidence"].get("_document", {}).get("type")
                chunk.jobs[-1]["document_type"] = classified or file_type
        chunk.batches.append(_batch(batch_id, owner, vendor, kind, extractor, auto, created))
        chunk.batches[-1].update(_batch_status(statuses, created))
        if len(chunk.documents) >= CHUNK:
            yield chunk
            chunk = Tables()
    if chunk.documents or chunk.batches:
        yield chunk


def _count(
    stats: dict[tuple[datetime, str], HourStats],
    queued: datetime,
    started: datetime | None,
    finished: datetime | None,
    status: str,
    attempts: int,
) -> None:
    stats.setdefault((_hour(queued), "batch_processing"), HourStats()).created += 1
    if finished is None:
        return
    hour = stats.setdefault((_hour(finished), "batch_processing"), HourStats())
    if status in ("completed", "failed", "cancelled"):
        setattr(hour, status, getattr(hour, status) + 1)
    if attempts > 1:
        hour.retried += 1
    if status == "completed" and started is not None:
        hour.durations.append((finished - started).total_seconds() * 1000)


def _batch(
    batch_id: int,
    owner: str,
    vendor: str,
    kind: str,
    extractor: str,
    auto: bool,
    created: datetime,
) -> dict[str, Any]:
    return {
        "id": batch_id,
        "name": f"{vendor.title()} {kind}s {created:%Y-%m-%d} #{batch_id}",
        "owner": owner,
        "strategy": "auto" if auto else "global",
        "prompt": None if auto else f"{kind} number, date, total",
        "extractor": extractor,
        "plan": "local",
        "options": {"refused": []},
        "created_at": created,
    }


def _batch_status(statuses: list[str], created: datetime) -> dict[str, Any]:
    count = len(statuses)
    failed = statuses.count("failed")
    if "pending" in statuses or "processing" in statuses:
        status, completed_at = "processing", None
    elif failed == count:
        status, completed_at = "failed", created + timedelta(minutes=30)
    elif failed:
        status, completed_at = "completed_with_errors", created + timedelta(minutes=30)
    else:
        status, completed_at = "completed", created + timedelta(minutes=30)
    return {
        "status": status,
        "document_count": count,
        "updated_at": completed_at or created,
        "completed_at": completed_at,
    }


def _result(
    rng: random.Random, document_id: int, batch_id: int, auto: bool, finished: datetime | None
) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "number": {"page": 1, "start": 120, "end": 131, "confidence": 0.93},
        "date": {"page": 1, "start": 160, "end": 170, "confidence": 0.88},
        "total": {"page": rng.randint(1, 3), "start": 900, "end": 908, "confidence": 0.9},
    }
    if auto:
        evidence["_document"] = {
            "type": DOCUMENT_TYPES[rng.randrange(len(DOCUMENT_TYPES))],
            "confidence": round(rng.uniform(0.4, 1.0), 3),
            "low_confidence": False,
            "prompt": "invoice number, date, total",
        }
    return {
        "id": document_id,
        "job_id": document_id,
        "document_id": document_id,
        "batch_id": batch_id,
        "data": {
            "number": f"INV-{document_id}",
            "date": "2024-03-01",
            "total": {"amount": 10.5, "currency": "EUR"},
        },
        "evidence": evidence,
        "schema": {"fields": [{"name": "number", "type": "string"}]},
        "confidence": 0.9,
        "flags": [],
        "cache_key": f"{document_id:064x}",
        "created_at": finished,
    }


def stat_rows(stats: dict[tuple[datetime, str], HourStats]) -> list[dict[str, Any]]:
    rows = []
    for (hour, queue), values in sorted(stats.items()):
        durations = values.durations
        rows.append(
            {
                "queue_name": queue,
                "hour": hour,
                "created": values.created,
                "completed": values.completed,
                "failed": values.failed,
                "cancelled": values.cancelled,
                "retried": values.retried,
                "mean_duration_ms": sum(durations) / len(durations) if durations else None,
                "max_duration_ms": max(durations) if durations else None,
                "updated_at": hour,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# seeding

MODELS = {
    "extraction_batches": ExtractionBatch,
    "documents": Document,
    "queue_items": QueueItem,
    "extraction_jobs": ExtractionJob,
    "extracted_data": ExtractedData,
    "queue_stats": QueueStat,
}
JSON_COLUMNS = {"options", "payload", "data", "evidence", "schema", "flags"}


def seed_sqlite(
    workspace: Workspace, chunks: Iterator[Tables], stats_rows: Callable[[], Any]
) -> int:
    rows = 0
    for chunk in chunks:
        with workspace.db.begin() as connection:
            for table, values in chunk.as_dict().items():
                if values:
                    connection.execute(insert(MODELS[table]), values)
        rows += chunk.size()
    with workspace.db.begin() as connection:
        stats = stats_rows()
        connection.execute(insert(QueueStat), stats)
        rows += len(stats)
    with workspace.db.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return rows


def _copy(cursor: Any, table: str, values: list[dict[str, Any]]) -> None:
    columns = list(values[0])
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in values:
            copy.write_row([json.dumps(row[c]) if c in JSON_COLUMNS else row[c] for c in columns])


def seed_postgres(
    workspace: Workspace, chunks: Iterator[Tables], stats_rows: Callable[[], Any]
) -> int:
    rows = 0
    raw = workspace.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for chunk in chunks:
            for table, values in chunk.as_dict().items():
                if values:
                    _copy(cursor, table, values)
            raw.commit()
            rows += chunk.size()
        stats = stats_rows()
        _copy(cursor, "queue_stats", stats)
        rows += len(stats)
        for table in MODELS:
            # Explicit ids leave the sequences behind; later inserts must not collide.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        raw.commit()
    finally:
        raw.close()
    with workspace.db.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    return rows


# ---------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    first_ms: float
    median_ms: float


def measure(call: Callable[[], Any], runs: int) -> Timing:
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return Timing(times[0], statistics.median(times[1:]))


@contextmanager
def captured_statements(workspace: Workspace) -> Iterator[list[tuple[str, Any]]]:
    """Every statement run on the workspace's engine meanwhile, with its parameters."""
    found: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        found.append((statement, parameters))

    engine = workspace.db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _session(connection: Any, settings: list[str]) -> None:
    """Replay the SET LOCAL statements the call made (analytics tunes its transactions)."""
    for setting in settings:
        connection.exec_driver_sql(setting)


def rerun_ms(workspace: Workspace, statement: str, parameters: Any, settings: list[str]) -> float:
    """One statement run again and fetched to the end (sqlite3 computes rows as they are
    fetched, so timing the execute call alone would miss most of the work)."""
    with workspace.db.connect() as connection:
        _session(connection, settings)
        started = time.perf_counter()
        connection.exec_driver_sql(statement, parameters).all()
        return (time.perf_counter() - started) * 1000


def explain(workspace: Workspace, statement: str, parameters: Any, settings: list[str]) -> str:
    prefix = "EXPLAIN QUERY PLAN " if workspace.db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    with workspace.db.connect() as connection:
        _session(connection, settings)
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
    if workspace.db.is_sqlite:
        return "\n".join(f"  {row[-1]}" for row in rows)
    return "\n".join(f"  {row[0]}" for row in rows)


def one_line(statement: str, width: int = 100) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


@dataclass
class Line:
    backend: str
    what: str
    cold: Timing
    cached: Timing
    aim_ms: float | None

    def cells(self) -> list[str]:
        aim = "" if self.aim_ms is None else f"< {self.aim_ms:.0f} ms cold"
        if self.aim_ms is None:
            verdict = "(info)"
        else:
            verdict = "met" if self.cold.median_ms < self.aim_ms else "NOT MET"
        return [
            self.backend,
            self.what,
            f"{self.cold.first_ms:.1f}",
            f"{self.cold.median_ms:.1f}",
            f"{self.cached.median_ms:.3f}",
            aim or "-",
            verdict if self.backend == "postgresql" or self.aim_ms is None else "(no aim)",
        ]


def print_table(lines: list[Line]) -> None:
    header = ["backend", "operation", "cold first ms", "cold median ms", "cached median ms"]
    header += ["aim (PostgreSQL)", "verdict"]
    rows = [header] + [line.cells() for line in lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("-+-".join("-" * width for width in widths))


# ---------------------------------------------------------------------------------------------
# one backend


def run_backend(
    backend: str, database_url: str, home: Path, args: argparse.Namespace, now: datetime
) -> list[Line]:
    print(f"\n== {backend}: seeding {args.batches:,} batches, {args.documents:,} documents")
    cold = open_workspace(
        home=str(home), database_url=database_url, cache_url="none", admins=ADMIN, user=ADMIN
    )
    cached = open_workspace(
        home=str(home), database_url=database_url, cache_url="memory://", admins=ADMIN, user=ADMIN
    )
    try:
        stats: dict[tuple[datetime, str], HourStats] = {}
        chunks = generate(args.batches, args.documents, now, stats)
        started = time.perf_counter()
        seed = seed_sqlite if backend == "sqlite" else seed_postgres
        rows = seed(cold, chunks, lambda: stat_rows(stats))
        seconds = time.perf_counter() - started
        print(
            f"seeded {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s, "
            "generation included; ANALYZE included)"
        )

        def list_page(workspace: Workspace) -> Callable[[], Any]:
            return lambda: list_batches(
                workspace=workspace,
                actor=ADMIN,
                status=["completed", "completed_with_errors"],
                search=SEARCH,
                sort="name",
                descending=False,
                page=2,
                page_size=50,
            )

        def summary(workspace: Workspace) -> Callable[[], Any]:
            return lambda: analytics_summary(actor=ADMIN, workspace=workspace)

        def user_month(workspace: Workspace) -> Callable[[], Any]:
            return lambda: analytics_summary(
                start=now - timedelta(days=30), user=USERS[3], actor=ADMIN, workspace=workspace
            )

        page = list_page(cold)()
        print(f"list page: {len(page.rows)} rows on page 2 of {page.total} matching batches")
        whole = summary(cold)()
        print(
            f"summary: {whole.documents:,} documents, {whole.completed:,} completed, "
            f"{whole.failed:,} failed, {len(whole.timing)} timing rows, "
            f"{len(whole.failures)} failure kinds, {len(whole.volume_daily)} days, "
            f"{len(whole.trends)} trend hours"
        )
        cases = [
            ("list page (filter+search+sort, page 2)", list_page, LIST_AIM_MS),
            ("analytics summary, whole history", summary, ANALYTICS_AIM_MS),
            ("analytics summary, 1 user, 30 days", user_month, None),
        ]
        lines = []
        for what, make, aim in cases:
            lines.append(
                Line(
                    backend,
                    what,
                    measure(make(cold), args.runs),
                    measure(make(cached), args.runs),
                    aim,
                )
            )
        freshness(backend, cold, cached, summary, now, args)
        for what, make, aim in cases:
            with captured_statements(cold) as statements:
                make(cold)()
            line = next(line for line in lines if line.what == what)
            missed = aim is not None and line.cold.median_ms >= aim and backend == "postgresql"
            print(f"\n-- {what}: statements of one cold call, each re-run alone (with fetch)")
            settings = sorted({sql for sql, _ in statements if sql.startswith("SET ")})
            queries = [
                (sql, parameters) for sql, parameters in statements if sql.startswith("SELECT")
            ]
            if settings:
                print(f"  (each in a transaction with: {'; '.join(settings)})")
            for statement, parameters in queries:
                ms = rerun_ms(cold, statement, parameters, settings)
                print(f"  {ms:8.1f} ms  {one_line(statement)}")
            if args.explain or missed:
                for statement, parameters in queries:
                    print(f"\n  plan of: {one_line(statement, 160)}")
                    print(explain(cold, statement, parameters, settings))
        return lines
    finally:
        cold.close()
        cached.close()


# ---------------------------------------------------------------------------------------------
# freshness: the version check that lets cached analytics follow the data


def finish_one_open_job(workspace: Workspace, now: datetime) -> bool:
    """What a worker's outcome changes for analytics: one open document and its job (and
    queue item) completed. False when nothing is open any more."""
    with workspace.db.begin() as connection:
        found = connection.execute(
            text("SELECT id FROM extraction_jobs WHERE status IN ('pending', 'processing') LIMIT 1")
        ).scalar()
        if found is None:
            return False
        values = {"id": found, "now": now}
        for table in ("extraction_jobs", "documents", "queue_items"):
            connection.execute(
                text(f"UPDATE {table} SET status = 'completed', updated_at = :now WHERE id = :id"),
                values,
            )
    return True


def freshness(
    backend: str,
    cold: Workspace,
    cached: Workspace,
    summary: Callable[[Workspace], Callable[[], Any]],
    now: datetime,
    args: argparse.Namespace,
) -> None:
    """A cached read (version check included) against an uncached computation and the check
    alone; then reads after a document finished: the whole history is recomputed, a settled
    month is still served from the cache."""
    # The cheap reads get more calls: psycopg prepares a statement from its sixth run on, as
    # a dashboard polling a summary gets it; a median of seven would be mostly unprepared.
    quick = max(args.runs, CHEAP_RUNS)
    print(
        f"\n-- {backend}: analytics freshness (medians of {quick} calls; "
        f"the uncached computation: of {args.runs})"
    )
    check = measure(lambda: read_freshness(cached.db), quick)
    with cached.db.connect() as connection:
        statement_alone = measure(lambda: read_version(connection), quick)
    hit = measure(summary(cached), quick)
    computed = measure(summary(cold), args.runs)
    print(f"  version check alone        {check.median_ms:9.3f} ms (a pooled connection)")
    print(f"  its statement alone        {statement_alone.median_ms:9.3f} ms (an open connection)")
    print(f"  cached summary read        {hit.median_ms:9.3f} ms (the check included)")
    print(f"  uncached computation       {computed.median_ms:9.3f} ms")
    print(
        f"  ratios: uncached / cached read = {computed.median_ms / hit.median_ms:,.0f}x; "
        f"cached read / check = {hit.median_ms / check.median_ms:.1f}x; "
        f"check / uncached = {check.median_ms / computed.median_ms:.2%}"
    )

    def month(workspace: Workspace) -> Callable[[], Any]:
        return lambda: analytics_summary(
            start=now - timedelta(days=60),
            end=now - timedelta(days=30),
            actor=ADMIN,
            workspace=workspace,
        )

    month(cached)()
    after, month_hits, whole_hits, changes = [], 0, 0, 0
    for _ in range(max(args.runs, 1)):
        if not finish_one_open_job(cold, datetime.now(UTC)):
            break
        changes += 1
        before = cached.cache.stats().hits
        started = time.perf_counter()
        summary(cached)()
        after.append((time.perf_counter() - started) * 1000)
        whole_hits += cached.cache.stats().hits - before
        before = cached.cache.stats().hits
        month(cached)()
        month_hits += cached.cache.stats().hits - before
    if changes:
        print(
            f"  after one document finished ({changes} times): whole history read "
            f"{statistics.median(after):.1f} ms, served from cache {whole_hits} of {changes} "
            f"(recomputed, as it must); a settled month served from cache {month_hits} of "
            f"{changes}"
        )
    if args.explain:
        with cached.db.connect() as connection:
            compiled = VERSION_QUERY.compile(connection, compile_kwargs={"literal_binds": True})
        statement = str(compiled)
        print(f"\n  plan of the version check: {one_line(statement, 160)}")
        print(explain(cached, statement, {}, []))


@contextmanager
def postgres_database(base_url: str, keep: bool = False) -> Iterator[str]:
    """A new database beside ``base_url``'s, dropped afterwards unless ``keep``."""
    name = f"batchnb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f'\nkept PostgreSQL database {name}: DROP DATABASE "{name}" WITH (FORCE)')
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7, help="timed calls per figure (median)")
    parser.add_argument("--postgres-url", default=os.environ.get("BATCHNB_TEST_POSTGRES_URL", ""))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print every statement's plan")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL database (to explore plans)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny history through every step: checks the script"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.batches, args.documents, args.runs, args.explain = 20, 400, 1, True
    for name in list(os.environ):
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_"):
            del os.environ[name]
    logging.basicConfig(level=logging.WARNING)
    # Every timed statement is a "slow query" for a 500 ms threshold or not; the figures are
    # printed below, so the log would only repeat them.
    logging.getLogger("batchnb.db.slow").setLevel(logging.ERROR)
    try:
        one, five, _ = os.getloadavg()
        load = f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"
    except OSError:
        load = "load average unknown"
    print(f"list_and_analytics: {args.batches:,} batches, {args.documents:,} documents; {load}")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    folder = Path(tempfile.mkdtemp(prefix="batchnb-bench-", dir=args.dir))
    lines: list[Line] = []
    failed = False
    try:
        if not args.no_sqlite:
            try:
                url = f"sqlite:///{folder / 'bench.db'}"
                lines += run_backend("sqlite", url, folder / "sqlite", args, now)
            except Exception:
                traceback.print_exc()
                failed = True
        if args.no_postgres:
            pass
        elif not args.postgres_url:
            print("\nPostgreSQL skipped: set BATCHNB_TEST_POSTGRES_URL or pass --postgres-url")
        else:
            try:
                with postgres_database(args.postgres_url, args.keep) as url:
                    lines += run_backend("postgresql", url, folder / "postgres", args, now)
            except Exception as exc:
                if "connect" in str(exc).lower() and not lines:
                    print(f"\nPostgreSQL skipped: cannot reach it ({exc})")
                else:
                    traceback.print_exc()
                    failed = True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\n== summary ({args.batches:,} batches, {args.documents:,} documents; "
        f"medians of {args.runs} calls)"
    )
    print_table(lines)
    try:
        one, five, _ = os.getloadavg()
        print(f"load average at the end {one:.2f} (1 min), {five:.2f} (5 min)")
    except OSError:
        pass
    return 1 if args.smoke and failed else 0


if __name__ == "__main__":
    sys.exit(main())
