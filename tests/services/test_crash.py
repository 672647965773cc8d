"""Real crash and shutdown tests: `batchnb worker` subprocesses killed and stopped.

A worker killed with SIGKILL in the middle of a batch must cost time, never a document and
never a duplicate result.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchnb.db.models import ExtractedData, QueueItem
from batchnb.services.batches import Batch
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from tests.services.conftest import slow_worker_env

pytestmark = pytest.mark.slow

BATCHNB = Path(sys.executable).with_name("batchnb")


@pytest.fixture
def crash_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return slow_worker_env(tmp_path, monkeypatch, lease_seconds=2, slow_seconds=0.4)


@pytest.fixture
def workspace(crash_env: dict[str, str]) -> Iterator[Workspace]:
    ws = open_workspace()
    yield ws
    ws.close()


def _documents(count: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"invoice-{n:02d}.txt",
            f"ACME Ltd\nInvoice Number: INV-{n:04d}\nTotal: {n}.50 EUR\n".encode(),
        )
        for n in range(count)
    ]


def _start_worker(env: dict[str, str], threads: int = 2) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        # One process: the test kills the worker itself, not a supervisor.
        [str(BATCHNB), "worker", "--processes", "1", "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _results_per_document(workspace: Workspace, batch: Batch) -> dict[int, int]:
    with workspace.db.read() as session:
        rows = session.execute(
            select(ExtractedData.document_id, func.count())
            .where(ExtractedData.batch_id == batch.id)
            .group_by(ExtractedData.document_id)
        ).all()
    return dict(rows)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    workspace: Workspace, crash_env: dict[str, str]
) -> None:
    batch = submit(_documents(16), "invoice number, total", extractor="slow", workspace=workspace)
    first = _start_worker(crash_env)
    try:
        _wait_for(
            lambda: batch.progress().completed >= 3 and batch.progress().processing >= 1,
            60,
            "the first worker to be mid-batch",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    with workspace.db.read() as session:
        orphaned = (
            session.execute(
                select(QueueItem.id).where(
                    QueueItem.batch_id == batch.id, QueueItem.status == "processing"
                )
            )
            .scalars()
            .all()
        )
    assert orphaned, "the kill should have left items mid-processing"
    # The dead worker's leases run out; a new worker reclaims them when it starts.
    time.sleep(2.5)
    second = _start_worker(crash_env)
    try:
        progress = batch.wait(timeout=90)
    finally:
        _stop(second)
    assert progress.completed == 16 and progress.failed == 0, progress
    per_document = _results_per_document(workspace, batch)
    assert len(per_document) == 16
    assert set(per_document.values()) == {1}
    with workspace.db.read() as session:
        attempts = dict(
            session.execute(
                select(QueueItem.id, QueueItem.attempts).where(QueueItem.id.in_(orphaned))
            ).all()
        )
    assert all(count == 2 for count in attempts.values()), attempts
    assert second.returncode == 0


def test_sigterm_finishes_or_releases_and_nothing_is_lost(
    workspace: Workspace, crash_env: dict[str, str]
) -> None:
    crash_env["SLOW_EXTRACTOR_SECONDS"] = "0.3"
    batch = submit(_documents(12), "invoice number, total", extractor="slow", workspace=workspace)
    first = _start_worker(crash_env)
    _wait_for(lambda: batch.progress().processing >= 1, 60, "the worker to start processing")
    stopped_at = time.monotonic()
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=30)
    assert first.returncode == 0, first.stderr.read() if first.stderr else ""
    assert time.monotonic() - stopped_at < 15
    with workspace.db.read() as session:
        stuck = session.scalar(
            select(func.count()).where(
                QueueItem.batch_id == batch.id, QueueItem.status == "processing"
            )
        )
    assert stuck == 0
    assert batch.progress().completed < 12
    second = _start_worker(crash_env)
    try:
        progress = batch.wait(timeout=90)
    finally:
        _stop(second)
    assert progress.completed == 12
    assert set(_results_per_document(workspace, batch).values()) == {1}
