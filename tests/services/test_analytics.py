"""Analytics on a seeded history: every figure against numbers worked out by hand from the seed.

The history (three users' worth of batches, retries, failures of several kinds, two queues,
classified and unclassified documents) is written with bulk Core inserts; queue_stats rows are
produced by the real ``aggregate_queue_stats``. The expected numbers below are written out,
not recomputed by the code under test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from batchnb.db.models import (
    AuditEvent,
    Document,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    ProcessingQueue,
    QueueItem,
)
from batchnb.errors import PermissionDeniedError
from batchnb.queue.stats import aggregate_queue_stats
from batchnb.services.analytics import (
    FAILURE_COLUMNS,
    TIMING_COLUMNS,
    TREND_COLUMNS,
    VOLUME_COLUMNS,
    AnalyticsSummary,
    analytics_summary,
    compute_summary,
)
from batchnb.services.workspace import Workspace

ADMIN = "root"
BP = "batch_processing"
EXPRESS = "express"


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


# batch id -> owner, created at
BATCHES = {
    1: ("alice", at(4, 9)),
    2: ("bob", at(5, 10)),
    3: ("alice", at(11, 8)),
    4: ("bob", at(26, 12, month=2)),
}
# document id -> batch, file name, file type, status, pages, error
DOCUMENTS: dict[int, tuple[int, str, str, str, int | None, str | None]] = {
    1: (1, "a.pdf", "pdf", "completed", 2, None),
    2: (1, "b.pdf", "pdf", "completed", 3, None),
    3: (1, "c.png", "png", "completed", 1, None),
    4: (
        1,
        "locked.pdf",
        "pdf",
        "failed",
        None,
        "the PDF is encrypted/password-protected: save an unprotected copy and add that instead",
    ),
    5: (1, "slow.txt", "txt", "failed", None, "TimeoutError: read timed out (after 3 attempts)"),
    6: (2, "letter.docx", "docx", "completed", 4, None),
    7: (2, "e.pdf", "pdf", "completed", 1, None),
    8: (2, "<b>x</b>.pdf", "pdf", "failed", None, "not a readable PDF: <script>alert(1)</script>"),
    9: (2, "gone.pdf", "pdf", "cancelled", None, None),
    10: (2, "later.csv", "csv", "pending", None, None),
    11: (3, "f.pdf", "pdf", "completed", 5, None),
    12: (3, "g.xlsx", "xlsx", "failed", None, "the Excel workbook is empty (no text in any sheet)"),
    15: (3, "h.csv", "csv", "failed", None, "the CSV file is empty (no text)"),
    13: (4, "old.pdf", "pdf", "completed", 10, None),
    14: (4, "old2.pdf", "pdf", "failed", None, "ConnectionError: refused"),
}
# job id (= its queue item id) -> document, extractor, queue, status, duration ms, attempts,
# classified type, minutes after the batch was created. A completed job stores the classified
# type as its document_type, else its document's file type, as the worker does.
JOBS: dict[int, tuple[int, str, str, str, float | None, int, str | None, int]] = {
    1: (1, "offline", BP, "completed", 100.0, 1, "invoice", 0),
    20: (2, "offline", BP, "failed", 50.0, 1, None, 0),  # failed first run of document 2
    2: (2, "offline", BP, "completed", 200.0, 1, "invoice", 10),  # its retry
    3: (3, "offline", BP, "completed", 300.0, 1, "receipt", 0),
    4: (4, "offline", BP, "failed", None, 1, None, 0),
    5: (5, "offline", BP, "failed", None, 3, None, 0),
    6: (6, "openai", BP, "completed", 1000.0, 1, None, 0),
    7: (7, "openai", EXPRESS, "completed", 2000.0, 1, "invoice", 0),
    8: (8, "openai", BP, "failed", None, 1, None, 0),
    9: (9, "openai", BP, "cancelled", None, 0, None, 0),
    10: (10, "openai", BP, "pending", None, 0, None, 0),
    11: (11, "offline", BP, "completed", 400.0, 1, None, 0),
    12: (12, "offline", BP, "failed", None, 1, None, 0),
    15: (15, "offline", BP, "failed", None, 1, None, 0),
    13: (13, "offline", BP, "completed", 5000.0, 1, "invoice", 0),
    14: (14, "offline", BP, "failed", None, 1, None, 0),
}
# The kind each failure was recorded with when it happened (the worker stores it).
KINDS = {
    4: "encrypted",
    5: "TimeoutError",
    8: "corrupt",
    12: "empty",
    15: "empty",
    14: "ConnectionError",
}
SEEDED_HOURS = [at(26, 12, month=2), at(4, 9), at(5, 10), at(11, 8)]


def seed_history(workspace: Workspace) -> None:
    """Write the history above, then aggregate its hours into queue_stats."""
    batches, documents, jobs, items, results = [], [], [], [], []
    for batch_id, (owner, created) in BATCHES.items():
        batches.append(
            {
                "id": batch_id,
                "name": f"batch {batch_id}",
                "owner": owner,
                "status": "completed",
                "strategy": "auto",
                "extractor": "offline",
                "plan": "local",
                "options": {},
                "document_count": 0,
                "created_at": created,
                "updated_at": created,
            }
        )
    for document_id, (batch_id, name, kind, status, pages, error) in DOCUMENTS.items():
        owner, created = BATCHES[batch_id]
        documents.append(
            {
                "id": document_id,
                "batch_id": batch_id,
                "owner": owner,
                "file_name": name,
                "content_hash": f"{document_id:064d}",
                "storage_key": f"k{document_id}",
                "size_bytes": 100,
                "file_type": kind,
                "mime_type": "application/octet-stream",
                "status": status,
                "error": error,
                "error_kind": KINDS.get(document_id),
                "page_count": pages,
                "created_at": created,
                "updated_at": created,
            }
        )
    for job_id, spec in JOBS.items():
        document_id, extractor, queue, status, duration, attempts, kind, minutes = spec
        batch_id = DOCUMENTS[document_id][0]
        owner, batch_created = BATCHES[batch_id]
        created = batch_created + timedelta(minutes=minutes)
        started = created + timedelta(minutes=1) if status not in ("pending", "cancelled") else None
        if status == "completed":
            finished = started + timedelta(milliseconds=duration or 0) if started else None
        elif status == "failed":
            finished = created + timedelta(seconds=30)
        elif status == "cancelled":
            finished = created + timedelta(minutes=1)
        else:
            finished = None
        items.append(
            {
                "id": job_id,
                "queue_name": queue,
                "job_type": "process_document",
                "payload": {"document_id": document_id, "job_id": job_id},
                "batch_id": batch_id,
                "owner": owner,
                "status": status,
                "priority": 0,
                "attempts": attempts,
                "scheduled_at": created,
                "created_at": created,
                "updated_at": created,
                "started_at": started,
                "finished_at": finished,
            }
        )
        jobs.append(
            {
                "id": job_id,
                "batch_id": batch_id,
                "document_id": document_id,
                "queue_item_id": job_id,
                "owner": owner,
                "status": status,
                "extractor": extractor,
                "started_at": started,
                "finished_at": finished,
                "duration_ms": duration,
                "document_type": (kind or DOCUMENTS[document_id][2])
                if status == "completed"
                else None,
                "created_at": created,
                "updated_at": created,
            }
        )
        if status == "completed":
            evidence: dict[str, Any] = {"total": {"page": 1}}
            if kind is not None:
                evidence["_document"] = {"type": kind, "confidence": 0.9}
            results.append(
                {
                    "id": job_id,
                    "job_id": job_id,
                    "document_id": document_id,
                    "batch_id": batch_id,
                    "data": {"total": 1},
                    "evidence": evidence,
                    "schema": {},
                    "flags": [],
                    "created_at": finished,
                }
            )
    with workspace.db.begin() as connection:
        connection.execute(
            insert(ProcessingQueue),
            {
                "name": EXPRESS,
                "concurrency_limit": 1,
                "max_attempts": 3,
                "retry_delay_seconds": 1.0,
                "retry_backoff": 1.0,
            },
        )
        connection.execute(insert(ExtractionBatch), batches)
        connection.execute(insert(Document), documents)
        connection.execute(insert(QueueItem), items)
        connection.execute(insert(ExtractionJob), jobs)
        connection.execute(insert(ExtractedData), results)
    for hour in SEEDED_HOURS:
        aggregate_queue_stats(workspace.db, hours=1, now=hour)


@pytest.fixture(params=["sqlite", "postgresql"])
def history(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace (SQLite or PostgreSQL) with ``root`` as admin, holding the seeded history."""
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    fixture = "workspace" if request.param == "sqlite" else "postgres_workspace"
    workspace: Workspace = request.getfixturevalue(fixture)
    seed_history(workspace)
    yield workspace


def records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def hour(day: int, at_hour: int, month: int = 3) -> pd.Timestamp:
    return pd.Timestamp(datetime(2024, month, day, at_hour), tz="UTC")


def test_whole_workspace_for_a_period(history: Workspace) -> None:
    summary = analytics_summary(start=datetime(2024, 3, 1), actor=ADMIN, workspace=history)

    assert summary.user is None
    assert summary.start == datetime(2024, 3, 1, tzinfo=UTC)
    # Batches 1-3 (batch 4 is from February): documents 1-12 and 15.
    assert (summary.batches, summary.documents, summary.completed, summary.failed) == (3, 13, 6, 5)
    assert (summary.cancelled, summary.open, summary.pages) == (1, 1, 2 + 3 + 1 + 4 + 1 + 5)
    assert summary.success_rate == 6 / 11
    assert dict(zip(summary.overview["metric"], summary.overview["value"], strict=True)) == {
        "batches": 3,
        "documents": 13,
        "completed": 6,
        "failed": 5,
        "cancelled": 1,
        "open": 1,
        "success_rate": 6 / 11,
        "pages": 16,
    }
    assert list(summary.timing.columns) == TIMING_COLUMNS
    # Completed jobs: 100, 200 (the retry; the failed first run is left out), 300, 1000,
    # 2000 (express queue) and 400 ms. p95 of [100, 200, 300, 400, 1000] sits at position
    # 0.95 * 4 = 3.8: 400 + 0.8 * 600 = 880.
    assert records(summary.timing) == [
        ("queue", BP, 5, 400.0, 300.0, 880.0),
        ("queue", EXPRESS, 1, 2000.0, 2000.0, 2000.0),
        ("extractor", "offline", 4, 250.0, 250.0, 385.0),
        ("extractor", "openai", 2, 1500.0, 1500.0, 1950.0),
        ("document_type", "docx", 1, 1000.0, 1000.0, 1000.0),
        ("document_type", "invoice", 3, round(2300 / 3, 3), 200.0, 1820.0),
        ("document_type", "pdf", 1, 400.0, 400.0, 400.0),
        ("document_type", "receipt", 1, 300.0, 300.0, 300.0),
    ]
    assert list(summary.failures.columns) == FAILURE_COLUMNS
    assert records(summary.failures) == [
        ("empty", 2, 0.4, "the CSV file is empty (no text)", "h.csv"),
        ("TimeoutError", 1, 0.2, "TimeoutError: read timed out (after 3 attempts)", "slow.txt"),
        ("corrupt", 1, 0.2, "not a readable PDF: <script>alert(1)</script>", "<b>x</b>.pdf"),
        (
            "encrypted",
            1,
            0.2,
            "the PDF is encrypted/password-protected: save an unprotected copy and add that "
            "instead",
            "locked.pdf",
        ),
    ]
    assert list(summary.volume_daily.columns) == ["day", *VOLUME_COLUMNS]
    assert records(summary.volume_daily) == [
        (date(2024, 3, 4), 5, 3, 2, 0, 0, 6),
        (date(2024, 3, 5), 5, 2, 1, 1, 1, 5),
        (date(2024, 3, 11), 3, 1, 2, 0, 0, 5),
    ]
    assert records(summary.volume_weekly) == [
        (date(2024, 3, 4), 10, 5, 3, 1, 1, 11),
        (date(2024, 3, 11), 3, 1, 2, 0, 0, 5),
    ]
    assert list(summary.trends.columns) == TREND_COLUMNS
    # From queue_stats: hour 9 of March 4 holds documents 1-5 and the retry of document 2.
    assert records(summary.trends) == [
        (hour(4, 9), BP, 6, 3, 3, 0, 1, 200.0, 300.0),
        (hour(5, 10), BP, 4, 1, 1, 1, 0, 1000.0, 1000.0),
        (hour(5, 10), EXPRESS, 1, 1, 0, 0, 0, 2000.0, 2000.0),
        (hour(11, 8), BP, 3, 1, 2, 0, 0, 400.0, 400.0),
    ]


def test_a_user_sees_only_their_own_documents(history: Workspace) -> None:
    summary = analytics_summary(actor="alice", workspace=history)

    assert summary.user == "alice"
    assert (summary.batches, summary.documents, summary.completed, summary.failed) == (2, 8, 4, 4)
    assert (summary.cancelled, summary.open, summary.pages, summary.success_rate) == (0, 0, 11, 0.5)
    assert records(summary.timing) == [
        ("queue", BP, 4, 250.0, 250.0, 385.0),
        ("extractor", "offline", 4, 250.0, 250.0, 385.0),
        ("document_type", "invoice", 2, 150.0, 150.0, 195.0),
        ("document_type", "pdf", 1, 400.0, 400.0, 400.0),
        ("document_type", "receipt", 1, 300.0, 300.0, 300.0),
    ]
    assert [row[:3] for row in records(summary.failures)] == [
        ("empty", 2, 0.5),
        ("TimeoutError", 1, 0.25),
        ("encrypted", 1, 0.25),
    ]
    assert records(summary.volume_daily) == [
        (date(2024, 3, 4), 5, 3, 2, 0, 0, 6),
        (date(2024, 3, 11), 3, 1, 2, 0, 0, 5),
    ]
    # Computed from alice's own queue items, with the rules of aggregate_queue_stats.
    assert records(summary.trends) == [
        (hour(4, 9), BP, 6, 3, 3, 0, 1, 200.0, 300.0),
        (hour(11, 8), BP, 3, 1, 2, 0, 0, 400.0, 400.0),
    ]
    # Naming oneself is the same as naming no one.
    assert analytics_summary(actor="alice", user="alice", workspace=history).documents == 8


def test_an_admin_can_look_at_one_user(history: Workspace) -> None:
    summary = analytics_summary(user="bob", actor=ADMIN, workspace=history)

    assert summary.user == "bob"
    assert (summary.batches, summary.documents, summary.completed, summary.failed) == (2, 7, 3, 2)
    assert (summary.cancelled, summary.open, summary.pages, summary.success_rate) == (1, 1, 15, 0.6)
    assert records(summary.timing) == [
        ("queue", BP, 2, 3000.0, 3000.0, 4800.0),
        ("queue", EXPRESS, 1, 2000.0, 2000.0, 2000.0),
        ("extractor", "offline", 1, 5000.0, 5000.0, 5000.0),
        ("extractor", "openai", 2, 1500.0, 1500.0, 1950.0),
        ("document_type", "docx", 1, 1000.0, 1000.0, 1000.0),
        ("document_type", "invoice", 2, 3500.0, 3500.0, 4850.0),
    ]
    assert [row[:2] for row in records(summary.failures)] == [
        ("ConnectionError", 1),
        ("corrupt", 1),
    ]
    assert records(summary.volume_weekly) == [
        (date(2024, 2, 26), 2, 1, 1, 0, 0, 10),
        (date(2024, 3, 4), 5, 2, 1, 1, 1, 5),
    ]
    assert records(summary.trends) == [
        (hour(26, 12, month=2), BP, 2, 1, 1, 0, 0, 5000.0, 5000.0),
        (hour(5, 10), BP, 4, 1, 1, 1, 0, 1000.0, 1000.0),
        (hour(5, 10), EXPRESS, 1, 1, 0, 0, 0, 2000.0, 2000.0),
    ]


def test_the_end_of_the_period_is_excluded(history: Workspace) -> None:
    summary = analytics_summary(
        start=datetime(2024, 3, 5, tzinfo=UTC),
        end=datetime(2024, 3, 11, 8, tzinfo=UTC),
        actor=ADMIN,
        workspace=history,
    )

    assert (summary.batches, summary.documents, summary.completed) == (1, 5, 2)
    assert [row[0] for row in records(summary.volume_daily)] == [date(2024, 3, 5)]
    assert [(row[0], row[1]) for row in records(summary.trends)] == [
        (hour(5, 10), BP),
        (hour(5, 10), EXPRESS),
    ]


def test_trends_keep_the_hours_that_overlap_the_period(history: Workspace) -> None:
    start = datetime(2024, 3, 5, 10, 30, tzinfo=UTC)
    end = datetime(2024, 3, 5, 10, 45, tzinfo=UTC)
    for actor, user in ((ADMIN, None), (ADMIN, "bob")):
        summary = analytics_summary(start=start, end=end, user=user, actor=actor, workspace=history)
        # No document was created in those 15 minutes, but hour 10 overlaps them.
        assert summary.documents == 0
        assert [row[1:4] for row in records(summary.trends)] == [(BP, 4, 1), (EXPRESS, 1, 1)]


def test_another_users_figures_are_refused_and_audited(history: Workspace) -> None:
    with pytest.raises(PermissionDeniedError, match="'alice' may not see the analytics of"):
        analytics_summary(user="bob", actor="alice", workspace=history)

    with history.db.connect() as connection:
        events = connection.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.target_id, AuditEvent.allowed)
        ).all()
    assert [tuple(event) for event in events] == [("alice", "analytics", "bob", False)]


def test_an_empty_workspace_has_empty_tables(workspace: Workspace) -> None:
    summary = analytics_summary(workspace=workspace)

    assert (summary.documents, summary.pages, summary.success_rate) == (0, 0, None)
    for name, frame in summary.tables().items():
        assert name == "overview" or frame.empty
    assert list(summary.volume_weekly.columns) == ["week", *VOLUME_COLUMNS]
    assert summary.as_dict()["timing"] == []


def test_summaries_are_cached_until_invalidated(history: Workspace) -> None:
    """A change no data version sees (a row edited by hand) is served from the cache until
    the namespace is invalidated; tests/services/test_analytics_freshness.py has the changes
    that show at once."""
    first = analytics_summary(actor=ADMIN, workspace=history)
    with history.db.begin() as connection:
        connection.execute(update(Document).where(Document.id == 1).values(page_count=102))
    hits = history.cache.stats().hits

    assert analytics_summary(actor=ADMIN, workspace=history).pages == first.pages == 26
    assert first.batches == 4
    assert history.cache.stats().hits == hits + 1
    # Another scope is another entry.
    assert analytics_summary(actor="alice", workspace=history).pages == 111
    history.cache.invalidate("analytics")
    assert analytics_summary(actor=ADMIN, workspace=history).pages == 126
    assert compute_summary(history).pages == 126


def test_as_dict_is_json_ready(history: Workspace) -> None:
    data = analytics_summary(user="bob", actor=ADMIN, workspace=history).as_dict()

    assert data["user"] == "bob"
    assert data["success_rate"] == 0.6
    assert data["volume_daily"][0] == {
        "day": "2024-02-26T00:00:00.000",
        "created": 2,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "open": 0,
        "pages": 10,
    }
    assert data["trends"][0]["hour"].startswith("2024-02-26T12:00:00")
    assert data["failures"][0]["kind"] == "ConnectionError"


def test_summary_pickles(history: Workspace) -> None:
    import pickle

    summary = compute_summary(history, user="alice")
    copy: AnalyticsSummary = pickle.loads(pickle.dumps(summary))
    assert copy.documents == 8 and records(copy.timing) == records(summary.timing)
    assert not math.isnan(copy.trends["mean_duration_ms"].iloc[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_percentiles_match_numpy_on_many_durations(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Groups of 1 to 150 random durations (with ties): every interpolation position."""
    workspace: Workspace = request.getfixturevalue(
        "workspace" if backend == "sqlite" else "postgres_workspace"
    )
    rng = random.Random(7)
    sizes = {"a": 1, "b": 2, "c": 7, "d": 150}
    durations = {
        name: [round(rng.choice([rng.uniform(1, 5000), 42.0]), 3) for _ in range(size)]
        for name, size in sizes.items()
    }
    created = at(4, 9)
    common = {"owner": "alice", "created_at": created, "updated_at": created}
    documents, jobs = [], []
    for number, (name, value) in enumerate(
        ((name, value) for name, values in durations.items() for value in values), start=1
    ):
        documents.append(
            {
                **common,
                "id": number,
                "batch_id": 1,
                "file_name": f"{number}.pdf",
                "content_hash": "0" * 64,
                "storage_key": "k",
                "size_bytes": 1,
                "file_type": "pdf",
                "mime_type": "application/pdf",
                "status": "completed",
            }
        )
        jobs.append(
            {
                **common,
                "id": number,
                "batch_id": 1,
                "document_id": number,
                "status": "completed",
                "extractor": name,
                "duration_ms": value,
            }
        )
    with workspace.db.begin() as connection:
        connection.execute(
            insert(ExtractionBatch),
            {**common, "id": 1, "name": "b", "status": "completed", "options": {}},
        )
        connection.execute(insert(Document), documents)
        connection.execute(insert(ExtractionJob), jobs)

    timing = compute_summary(workspace).timing
    found = timing[timing["dimension"] == "extractor"]
    assert list(found["value"]) == list(sizes)
    for (_, row), values in zip(found.iterrows(), durations.values(), strict=True):
        assert row["jobs"] == len(values)
        assert row["mean_ms"] == pytest.approx(float(np.mean(values)), abs=1e-3)
        assert row["p50_ms"] == pytest.approx(float(np.quantile(values, 0.5)), abs=1e-3)
        assert row["p95_ms"] == pytest.approx(float(np.quantile(values, 0.95)), abs=1e-3)


def test_failures_keep_the_kind_they_were_recorded_with(history: Workspace) -> None:
    # A reworded message (here: one that reads like another kind) moves no failure.
    with history.db.begin() as connection:
        connection.execute(
            update(Document)
            .where(Document.id == 4)
            .values(error="could not open: the file looks truncated or corrupt")
        )
    kinds = dict(
        (row.kind, row.documents) for row in compute_summary(history).failures.itertuples()
    )
    assert kinds == {
        "empty": 2,
        "TimeoutError": 1,
        "corrupt": 1,
        "encrypted": 1,
        "ConnectionError": 1,
    }
