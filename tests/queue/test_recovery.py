"""Recovery with real ``batchnb worker`` processes: SIGKILL, SIGSTOP and lost queue messages.

Recovery runs on a thread of every worker (batchnb/queue/recovery.py), never through the
Huey queue, so a backlog cannot starve it. These tests reproduce what issue 14 measured (an
orphan that waited 45 s behind a backlog, a minute of idleness after FLUSHDB that health
called healthy) and check that every document still ends with exactly one result.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from batchnb.db.models import ExtractedData, MaintenanceLock, QueueItem
from batchnb.db.models import Worker as WorkerRow
from batchnb.services.batches import Batch
from batchnb.services.health import check_health
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from tests.services.conftest import slow_worker_env

pytestmark = pytest.mark.slow

BATCHNB = Path(sys.executable).with_name("batchnb")
LEASE_SECONDS = 3.0
"""Short leases: recovery runs every second (a third of the lease), its lock lasts 3 s."""
RELEASE_SLACK_SECONDS = 7.0
"""'A few seconds' past the lease: one recovery interval, the lock of a dead holder running
out, a message's trip, and a loaded test machine."""
FLUSH_REDIS_DB = 13
"""FLUSHDB empties a whole Redis database: this test uses one of its own, not the shared one."""


def _documents(count: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"invoice-{n:05d}.txt",
            f"ACME Ltd\nInvoice Number: INV-{n:05d}\nTotal: {n}.50 EUR\n".encode(),
        )
        for n in range(count)
    ]


def _set(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
        env[key] = value


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres_redis", marks=(pytest.mark.postgres, pytest.mark.redis)),
    ]
)
def backend_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment of the test and its workers: SQLite + SqliteHuey, or PostgreSQL + Redis."""
    env = slow_worker_env(tmp_path, monkeypatch, lease_seconds=LEASE_SECONDS, slow_seconds=0.5)
    if request.param == "postgres_redis":
        _set(
            env,
            monkeypatch,
            BATCHNB_DATABASE_URL=request.getfixturevalue("postgres_url"),
            BATCHNB_QUEUE_URL=(
                f"{request.getfixturevalue('redis_url')}"
                f"?huey_name=batchnb-recovery-{uuid.uuid4().hex[:8]}"
            ),
            # A worker frozen inside a transaction keeps its rows locked until the server
            # ends its session: make that as short as the lease.
            BATCHNB_DB_IDLE_IN_TRANSACTION_SECONDS=str(LEASE_SECONDS),
        )
    return env


@pytest.fixture
def workspace(backend_env: dict[str, str]) -> Iterator[Workspace]:
    ws = open_workspace()
    yield ws
    ws.runtime.huey.flush()
    ws.close()


class Workers:
    """``batchnb worker`` processes started by a test, all stopped when it ends."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str], threads: int = 2) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            # One process each: the test signals the worker itself, not a supervisor.
            [str(BATCHNB), "worker", "--processes", "1", "--threads", str(threads)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen one cannot act on SIGTERM
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            self.stop(process)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    yield started
    started.stop_all()


def _wait_for(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll until ``condition()`` is true; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _held_by(workspace: Workspace, pid: int) -> list[int]:
    """Items a worker process holds (lease tokens start with hostname:pid:...)."""
    with workspace.db.read() as session:
        return list(
            session.scalars(
                select(QueueItem.id).where(
                    QueueItem.status == "processing", QueueItem.locked_by.like(f"%:{pid}:%")
                )
            ).all()
        )


def _lock_holder(workspace: Workspace) -> str | None:
    with workspace.db.read() as session:
        lock = session.get(MaintenanceLock, "recovery")
        return None if lock is None else lock.held_by


def _assert_exactly_once(workspace: Workspace, batch: Batch, count: int) -> None:
    with workspace.db.read() as session:
        per_document = dict(
            session.execute(
                select(ExtractedData.document_id, func.count())
                .where(ExtractedData.batch_id == batch.id)
                .group_by(ExtractedData.document_id)
            ).all()
        )
    assert len(per_document) == count
    assert set(per_document.values()) == {1}


def _drain(
    workers: Workers, env: dict[str, str], batch: Batch, count: int, timeout: float = 300
) -> None:
    """Finish the batch with fast workers (the slow extractor made quick)."""
    fast = {**env, "SLOW_EXTRACTOR_SECONDS": "0"}
    for _ in range(2):
        workers.start(fast)
    progress = batch.wait(timeout=timeout)
    assert progress.completed == count and progress.failed == 0, progress


def test_an_orphan_is_leased_again_within_its_lease_despite_a_backlog(
    workspace: Workspace, backend_env: dict[str, str], workers: Workers
) -> None:
    """A worker SIGKILLed while holding items, 3,000 documents waiting behind them: another
    worker leases the orphans within the lease plus a few seconds (the Huey-periodic reaper
    waited for the backlog: 3,000 x 0.5 s / 2 threads, over 10 minutes here)."""
    count = 3000
    batch = submit(
        _documents(count), "invoice number, total", extractor="slow", workspace=workspace
    )
    doomed = workers.start(backend_env)
    survivor = workers.start(backend_env)
    _wait_for(lambda: _held_by(workspace, doomed.pid), 120, "the first worker to hold items")
    _wait_for(lambda: _held_by(workspace, survivor.pid), 60, "the second worker to be busy")
    doomed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.wait(timeout=10)
    orphans = _held_by(workspace, doomed.pid)
    assert orphans, "the kill should have left items held by the dead worker"

    def leased_again() -> bool:
        with workspace.db.read() as session:
            rows = session.execute(
                select(QueueItem.status, QueueItem.locked_by).where(QueueItem.id.in_(orphans))
            ).all()
        return all(
            status == "completed"
            or (status == "processing" and f":{doomed.pid}:" not in (locked_by or ""))
            for status, locked_by in rows
        )

    _wait_for(leased_again, LEASE_SECONDS + RELEASE_SLACK_SECONDS, "the orphans to be leased again")
    waited = time.monotonic() - killed_at
    assert waited <= LEASE_SECONDS + RELEASE_SLACK_SECONDS
    assert batch.progress().pending > count / 2, "the backlog should still be there"

    workers.stop(survivor)
    _drain(workers, backend_env, batch, count)
    _assert_exactly_once(workspace, batch, count)
    with workspace.db.read() as session:
        attempts = set(
            session.scalars(select(QueueItem.attempts).where(QueueItem.id.in_(orphans))).all()
        )
    assert attempts == {2}


def test_a_killed_local_worker_frees_its_items_long_before_its_lease_runs_out(
    workspace: Workspace, backend_env: dict[str, str], workers: Workers
) -> None:
    """With a minute-long lease, a worker SIGKILLed on this machine gives its items back on
    the first recovery round after its heartbeat is two intervals late: its pid is gone."""
    count = 200
    env = {
        **backend_env,
        "BATCHNB_LEASE_SECONDS": "60",
        "BATCHNB_HEARTBEAT_SECONDS": "0.5",
        "BATCHNB_RECOVERY_SECONDS": "1",
    }
    batch = submit(
        _documents(count), "invoice number, total", extractor="slow", workspace=workspace
    )
    doomed = workers.start(env)
    survivor = workers.start(env)
    _wait_for(lambda: _held_by(workspace, doomed.pid), 120, "the first worker to hold items")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    orphans = _held_by(workspace, doomed.pid)
    assert orphans, "the kill should have left items held by the dead worker"
    # Two heartbeats (1 s) + one round (1 s) + the lock, a message's trip and a loaded machine:
    # far below the 60 s lease.
    waited = _wait_for(lambda: not _held_by(workspace, doomed.pid), 20, "the orphans to go back")
    assert waited < 20
    with workspace.db.read() as session:
        stopped = session.scalars(
            select(WorkerRow.stopped_at).where(WorkerRow.pid == doomed.pid)
        ).all()
    assert stopped and None not in stopped, "the dead worker should be marked stopped"

    workers.stop(survivor)
    _drain(workers, env, batch, count)
    _assert_exactly_once(workspace, batch, count)


def test_a_frozen_lock_holder_loses_the_recovery_lock(
    workspace: Workspace, backend_env: dict[str, str], workers: Workers
) -> None:
    """Two workers, one recovery lock: the holder keeps it while it lives (the other never
    runs a round meanwhile); frozen with SIGSTOP it loses the lock when its claim runs out,
    and the other worker also takes back the frozen worker's items; nothing runs twice."""
    count = 60
    batch = submit(
        _documents(count), "invoice number, total", extractor="slow", workspace=workspace
    )
    first = workers.start(backend_env)
    _wait_for(lambda: f":{first.pid}:" in (_lock_holder(workspace) or ""), 30, "a lock holder")
    second = workers.start(backend_env)
    _wait_for(lambda: _held_by(workspace, second.pid), 60, "the second worker to be busy")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert f":{first.pid}:" in (_lock_holder(workspace) or ""), "the lock changed hands"
        time.sleep(0.1)

    frozen_items = _held_by(workspace, first.pid)
    first.send_signal(signal.SIGSTOP)
    try:
        # The claim lasts 3 intervals (3 s here); then the next try of the other worker wins.
        _wait_for(
            lambda: f":{second.pid}:" in (_lock_holder(workspace) or ""),
            3 * 1.0 + RELEASE_SLACK_SECONDS,
            "the other worker to take the lock",
        )
        if frozen_items:
            _wait_for(
                lambda: not set(frozen_items) & set(_held_by(workspace, first.pid)),
                LEASE_SECONDS + RELEASE_SLACK_SECONDS,
                "the frozen worker's items to be reclaimed",
            )
    finally:
        first.send_signal(signal.SIGCONT)
    # Awake again, the old holder cannot renew a claim that another holds.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert f":{second.pid}:" in (_lock_holder(workspace) or "")
        time.sleep(0.1)
    progress = batch.wait(timeout=120)
    assert progress.completed == count and progress.failed == 0, progress
    _assert_exactly_once(workspace, batch, count)


@pytest.fixture
def flush_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str
) -> dict[str, str]:
    """PostgreSQL + Redis (a database of its own, FLUSHDB-able) with settings that make the
    stall observable: leases long enough not to interfere (30 s), recovery every 4 s (a lost
    message is re-sent on the second round that sees it missing, so 4 to 8 s after the loss),
    and a 1 s stall threshold for health."""
    env = slow_worker_env(tmp_path, monkeypatch, lease_seconds=30, slow_seconds=0.2)
    base = redis_url.rsplit("/", 1)[0]
    _set(
        env,
        monkeypatch,
        BATCHNB_DATABASE_URL=postgres_url,
        BATCHNB_QUEUE_URL=f"{base}/{FLUSH_REDIS_DB}?huey_name=batchnb-flush-{uuid.uuid4().hex[:8]}",
        BATCHNB_RECOVERY_SECONDS="4",
        BATCHNB_HEALTH_STALL_SECONDS="1",
    )
    return env


def test_after_flushdb_work_resumes_within_seconds_and_health_sees_the_stall(
    flush_env: dict[str, str], workers: Workers, redis_url: str
) -> None:
    count = 300
    workspace = open_workspace()
    try:
        batch = submit(
            _documents(count), "invoice number, total", extractor="slow", workspace=workspace
        )
        for _ in range(2):
            workers.start(flush_env)
        _wait_for(lambda: batch.progress().completed >= 20, 120, "work to be under way")
        assert check_health(workspace).healthy, check_health(workspace).problems

        redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{FLUSH_REDIS_DB}").flushdb()
        flushed_at = time.monotonic()
        done_at_flush = batch.progress().completed
        stall_seen: list[str] = []
        resumed_after: float | None = None
        while time.monotonic() - flushed_at < 30:
            problems = [p for p in check_health(workspace).problems if "stalled" in p]
            stall_seen.extend(problems)
            progress = batch.progress()
            # Items running at the flush finish on their own: resumed means more than those.
            if progress.completed > done_at_flush + 8:
                resumed_after = time.monotonic() - flushed_at
                break
            time.sleep(0.2)
        assert stall_seen, "health never reported the stall"
        assert "queue batch_processing is stalled" in stall_seen[0]
        assert resumed_after is not None and resumed_after <= 15, resumed_after

        progress = batch.wait(timeout=180)
        assert progress.completed == count and progress.failed == 0, progress
        _assert_exactly_once(workspace, batch, count)
        assert not [p for p in check_health(workspace).problems if "stalled" in p]
    finally:
        workspace.runtime.huey.flush()
        workspace.close()
