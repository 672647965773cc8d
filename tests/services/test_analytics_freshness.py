"""Cached analytics follow the data: a summary read after a worker finished documents, or
after another process retried or deleted a batch, shows the change at once (the cache's time
to live is five minutes, so nothing here waits for it); a read with nothing changed is served
from the cache (counted as a hit); a period that has settled stays cached while other work
goes on.

The workspace reading the summaries uses the default in-process cache, which no other process
can invalidate: only the data version can tell it (batchnb/services/analytics_freshness.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from batchnb.db.models import Document, ExtractionBatch, ExtractionJob, QueueItem, utcnow
from batchnb.services.analytics import AnalyticsSummary, analytics_summary
from batchnb.services.analytics_freshness import read_freshness
from batchnb.services.batches import Batch
from batchnb.services.manage import delete_batch
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

pytestmark = pytest.mark.slow

BATCHNB = Path(sys.executable).with_name("batchnb")
ADMIN = "root"
PROMPT = "invoice number, total"
BROKEN_PDF = ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage\n")


def _invoices(count: int, first: int = 0) -> list[tuple[str, bytes]]:
    return [
        (f"invoice-{n:03d}.txt", f"Invoice Number: INV-{n:04d}\nTotal: {n}.50 EUR\n".encode())
        for n in range(first, first + count)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """This process's settings (SQLite or PostgreSQL, ``root`` acting and admin), returned as
    the environment of the worker and CLI processes the tests start."""
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BATCHNB_USER", ADMIN)
    monkeypatch.setenv("BATCHNB_ADMINS", ADMIN)
    monkeypatch.setenv("BATCHNB_HEARTBEAT_SECONDS", "0.5")
    if request.param == "postgresql":
        monkeypatch.setenv("BATCHNB_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return dict(os.environ)


@pytest.fixture
def ws(env: dict[str, str]) -> Iterator[Workspace]:
    workspace = open_workspace()
    assert workspace.cache.backend == "memory"
    yield workspace
    workspace.close()


def _summary(workspace: Workspace, **period: Any) -> AnalyticsSummary:
    return analytics_summary(actor=ADMIN, workspace=workspace, **period)


def _counts(summary: AnalyticsSummary) -> tuple[int, int, int, int]:
    return summary.documents, summary.completed, summary.failed, summary.open


def _hits_and_misses(workspace: Workspace) -> tuple[int, int]:
    stats = workspace.cache.stats()
    return stats.hits, stats.misses


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _finished(batch: Batch) -> bool:
    return batch.progress(cached=False).finished


def _run_worker_process(env: dict[str, str], batch: Batch) -> None:
    """A real ``batchnb worker`` process, until the batch is finished; then stopped."""
    process = subprocess.Popen(
        [str(BATCHNB), "worker", "--processes", "1", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: _finished(batch), 120, f"the worker to finish batch {batch.id}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BATCHNB), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _in_process_worker(workspace: Workspace, batch: Batch) -> None:
    worker = start_worker(workspace, threads=2, periodic=False)
    try:
        _wait_for(lambda: _finished(batch), 120, f"the worker to finish batch {batch.id}")
    finally:
        worker.stop()


def test_documents_finished_by_a_worker_process_show_at_once(
    env: dict[str, str], ws: Workspace
) -> None:
    batch = submit(_invoices(3), PROMPT, workspace=ws)
    assert _counts(_summary(ws)) == (3, 0, 0, 3)
    hits, misses = _hits_and_misses(ws)
    assert _counts(_summary(ws)) == (3, 0, 0, 3)
    assert _hits_and_misses(ws) == (hits + 1, misses)

    _run_worker_process(env, batch)

    assert _counts(_summary(ws)) == (3, 3, 0, 0)
    assert _hits_and_misses(ws) == (hits + 1, misses + 1)
    # Nothing changed since: served from the cache.
    assert _counts(_summary(ws)) == (3, 3, 0, 0)
    assert _hits_and_misses(ws) == (hits + 2, misses + 1)


def test_a_retry_and_a_delete_by_another_process_show_at_once(
    env: dict[str, str], ws: Workspace
) -> None:
    batch = submit([*_invoices(2), BROKEN_PDF], PROMPT, workspace=ws)
    _in_process_worker(ws, batch)
    assert _counts(_summary(ws)) == (3, 2, 1, 0)
    assert _counts(_summary(ws)) == (3, 2, 1, 0)
    hits, misses = _hits_and_misses(ws)

    assert "queued 1 failed" in _cli(env, "retry", str(batch.id))
    assert _counts(_summary(ws)) == (3, 2, 0, 1)
    assert _hits_and_misses(ws) == (hits, misses + 1)

    # The retried document fails again in a worker: that shows too.
    _in_process_worker(ws, batch)
    assert _counts(_summary(ws)) == (3, 2, 1, 0)

    _cli(env, "delete", str(batch.id), "--yes")
    assert _counts(_summary(ws)) == (0, 0, 0, 0)
    assert _summary(ws).batches == 0


def _move_to_the_past(workspace: Workspace, batch: Batch, days: int) -> None:
    """Make a finished batch look created ``days`` ago (the history of a settled period)."""
    past = utcnow() - timedelta(days=days)
    with workspace.db.begin() as connection:
        connection.execute(
            update(ExtractionBatch).where(ExtractionBatch.id == batch.id).values(created_at=past)
        )
        for model in (Document, ExtractionJob, QueueItem):
            connection.execute(
                update(model).where(model.batch_id == batch.id).values(created_at=past)
            )


def test_a_settled_period_stays_cached_while_other_documents_finish(
    env: dict[str, str], ws: Workspace
) -> None:
    old = submit(_invoices(2), PROMPT, workspace=ws)
    _in_process_worker(ws, old)
    _move_to_the_past(ws, old, days=30)
    now = utcnow()
    month = {"start": now - timedelta(days=40), "end": now - timedelta(days=20)}
    assert _counts(_summary(ws, **month)) == (2, 2, 0, 0)
    new = submit(_invoices(3, first=10), PROMPT, workspace=ws)
    assert _counts(_summary(ws, **month)) == (2, 2, 0, 0)  # the submit was a service call
    assert _counts(_summary(ws)) == (5, 2, 0, 3)

    _run_worker_process(env, new)

    hits, misses = _hits_and_misses(ws)
    assert _counts(_summary(ws, **month)) == (2, 2, 0, 0)
    assert _hits_and_misses(ws) == (hits + 1, misses)
    assert _counts(_summary(ws)) == (5, 5, 0, 0)
    assert _hits_and_misses(ws) == (hits + 1, misses + 1)

    # Another process (here: a workspace whose cache reaches nobody) deletes the old batch.
    other = open_workspace(cache_url="none")
    try:
        delete_batch(old.id, actor=ADMIN, workspace=other)
    finally:
        other.close()
    assert _counts(_summary(ws, **month)) == (0, 0, 0, 0)
    assert _counts(_summary(ws)) == (3, 3, 0, 0)


def test_the_version_is_one_cheap_statement_that_moves_with_the_data(ws: Workspace) -> None:
    first = read_freshness(ws.db).version
    assert read_freshness(ws.db).version == first
    batch = submit(_invoices(1), PROMPT, workspace=ws)
    queued = read_freshness(ws.db).version
    assert queued != first
    _in_process_worker(ws, batch)
    assert read_freshness(ws.db).version != queued
