"""A small load test under faults: 800 tiny documents, two worker processes, one of them killed
(SIGKILL, replaced as a supervisor would) and one frozen past its lease (SIGSTOP, SIGCONT), on
SQLite and on PostgreSQL + Redis. Exactly once, nothing lost. ``benchmarks/faults.py`` runs
the same faults at scale and measures the stalls.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchnb.db.models import QueueItem
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from tests.queue.fault_tools import (
    PROMPT,
    attempts_per_item,
    count_completed,
    log_tail,
    results_per_document,
    server_settings,
    start_worker,
    stop_worker,
    text_documents,
    wait_for,
)
from tests.services.conftest import slow_worker_env

pytestmark = pytest.mark.slow

DOCUMENTS = 800
LEASE_SECONDS = 3.0
FREEZE_SECONDS = 5.0
"""Longer than the lease: the frozen worker's items go to the other worker, and what it
writes when it wakes must be refused."""
FINISH_TIMEOUT = 60.0


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def load_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """A workspace on the backend of the parameter, and its workers' environment: short
    leases and recovery rounds, the slow extractor taking 30 ms a document (so the faults
    land while work remains and items are in flight)."""
    env = slow_worker_env(tmp_path, monkeypatch, lease_seconds=LEASE_SECONDS, slow_seconds=0.03)
    values = {"BATCHNB_RECOVERY_SECONDS": "1"}
    if request.param == "postgres+redis":
        values |= server_settings(
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("redis_url"),
            f"batchnb-load-{uuid.uuid4().hex[:8]}",
        )
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    env.update(values)
    workspace = open_workspace()
    yield workspace, env
    if request.param == "postgres+redis":
        workspace.runtime.huey.flush()
    workspace.close()


def _open_items(workspace: Workspace, batch_id: int) -> dict[str, int]:
    with workspace.db.read() as session:
        rows = session.execute(
            select(QueueItem.status, func.count())
            .where(QueueItem.batch_id == batch_id)
            .group_by(QueueItem.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def test_kill_and_freeze_under_load_lose_and_duplicate_nothing(
    load_workspace: tuple[Workspace, dict[str, str]], tmp_path: Path
) -> None:
    workspace, env = load_workspace
    batch = submit(text_documents(DOCUMENTS), PROMPT, extractor="slow", workspace=workspace)
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    workers: list[subprocess.Popen[bytes]] = [
        start_worker(env, threads=2, log=logs[0]),
        start_worker(env, threads=2, log=logs[1]),
    ]
    try:

        def done() -> int:
            return count_completed(workspace.db, batch.id)

        wait_for(lambda: done() >= DOCUMENTS // 5, 60, "a fifth of the batch")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed_at = done()
        workers.append(start_worker(env, threads=2, log=logs[2]))
        wait_for(lambda: done() >= DOCUMENTS * 2 // 5, 60, "two fifths of the batch")
        workers[1].send_signal(signal.SIGSTOP)
        time.sleep(FREEZE_SECONDS)
        workers[1].send_signal(signal.SIGCONT)
        frozen_at = done()
        assert killed_at < DOCUMENTS and frozen_at < DOCUMENTS, "add documents: faults came late"
        started = time.monotonic()
        tails = lambda: " / ".join(log_tail(log, 600) for log in logs)  # noqa: E731
        wait_for(
            lambda: done() == DOCUMENTS,
            FINISH_TIMEOUT,
            f"every document to complete: {_open_items(workspace, batch.id)}; {tails()}",
        )
        finished_in = time.monotonic() - started
        attempts = attempts_per_item(workspace.db, batch.id)
        per_document = results_per_document(workspace.db, batch.id)
        statuses = _open_items(workspace, batch.id)
    finally:
        for worker in workers:
            stop_worker(worker)
    assert statuses == {"completed": DOCUMENTS}, statuses
    assert len(per_document) == DOCUMENTS, "a document has no result"
    assert set(per_document.values()) == {1}, "a document has more than one result"
    # A crash costs the items in flight one attempt; nothing else does.
    assert max(attempts.values()) <= 2, sorted(attempts.values())[-5:]
    print(f"finished {finished_in:.1f} s after the faults; attempts {set(attempts.values())}")
