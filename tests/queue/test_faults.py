"""Faults that once stopped the whole queue (issue 14, findings 1 and 4), with real workers.

* PostgreSQL + Redis: a worker frozen (SIGSTOP: a VM pause, a long GC pause, a host gone
  quiet) *inside a write transaction* must not stop the other workers, and a session left idle
  in a transaction must be cut by the server so its locks go.
* SQLite: a process holding the write lock longer than the workers' busy timeout must cost no
  attempt and lose no queue message: every document finishes at once, not when a lease runs
  out.

Every count comes from the database; workers are real ``batchnb worker`` processes.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from batchnb.config import load_settings
from batchnb.db.models import utcnow
from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace, open_workspace
from tests.queue.fault_tools import (
    PROMPT,
    attempts_per_item,
    completion_times,
    count_completed,
    freeze_in_transaction,
    log_tail,
    longest_gap,
    results_per_document,
    server_settings,
    start_worker,
    stop_worker,
    text_documents,
    wait_for,
)
from tests.services.conftest import slow_worker_env

pytestmark = pytest.mark.slow

FREEZE_SECONDS = 20.0
MAX_GAP_SECONDS = 5.0
"""The longest stretch with no completion the other workers may show during a freeze: a
frozen session's locks must go in seconds (lock_timeout, idle_in_transaction timeout)."""
MAX_IDLE_IN_TRANSACTION_SECONDS = 30.0


@pytest.fixture
def server_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str
) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """A PostgreSQL + Redis workspace with the slow extractor, and its workers' environment."""
    env = slow_worker_env(tmp_path, monkeypatch, lease_seconds=5, slow_seconds=0.08)
    values = server_settings(postgres_url, redis_url, f"batchnb-faults-{uuid.uuid4().hex[:8]}")
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    env.update(values)
    workspace = open_workspace()
    yield workspace, env
    workspace.runtime.huey.flush()
    workspace.close()


def test_a_worker_frozen_inside_a_transaction_does_not_stop_the_others(
    server_workspace: tuple[Workspace, dict[str, str]], postgres_url: str, tmp_path: Path
) -> None:
    workspace, env = server_workspace
    count = 700
    batch = submit(text_documents(count), PROMPT, extractor="slow", workspace=workspace)
    names = [f"batchnb-fault-w{n}" for n in range(3)]
    workers = [start_worker(env, name=name, log=tmp_path / f"{name}.log") for name in names]
    admin_engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        wait_for(
            lambda: count_completed(workspace.db, batch.id) >= 30, 90, "the workers to be busy"
        )
        with admin_engine.connect() as admin:
            freeze = freeze_in_transaction(workers[0], admin, names[0])
        frozen_at = utcnow()
        print(f"froze {names[0]}: {freeze}")  # shown with -s, and in a failure's report
        time.sleep(FREEZE_SECONDS)
        thawed_at = utcnow()
        left = count - count_completed(workspace.db, batch.id)
        workers[0].send_signal(signal.SIGCONT)
        assert left > 0, "the batch ran out during the freeze: submit more documents"
        progress = batch.wait(timeout=240, poll_seconds=0.5, progress=False)
    finally:
        for worker in workers:
            stop_worker(worker)
        admin_engine.dispose()
    gap = longest_gap(completion_times(workspace.db, batch.id), frozen_at, thawed_at)
    print(f"longest stretch with no completion during the freeze: {gap:.1f} s")
    logs = {name: log_tail(tmp_path / f"{name}.log") for name in names}
    assert gap <= MAX_GAP_SECONDS, (
        f"the other workers completed nothing for {gap:.1f} s while worker {names[0]} was "
        f"frozen for {FREEZE_SECONDS:.0f} s inside a transaction: {freeze}"
    )
    assert progress.completed == count and progress.failed == 0, (progress, logs)
    per_document = results_per_document(workspace.db, batch.id)
    assert len(per_document) == count
    assert set(per_document.values()) == {1}


def _seconds(setting: str) -> float:
    """A PostgreSQL duration setting as SHOW prints it ('10s', '1500ms', '1min', '0')."""
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
    for unit in sorted(units, key=len, reverse=True):
        if setting.endswith(unit) and setting[: -len(unit)].strip().isdigit():
            return int(setting[: -len(unit)]) * units[unit]
    return int(setting) / 1000  # a bare number is milliseconds


def test_the_default_server_timeouts_release_a_dead_sessions_locks_in_seconds() -> None:
    """Without them a host that vanished mid-transaction holds its row locks for the kernel's
    TCP keepalive time (2 h by default) and a waiting statement waits for ever."""
    defaults = load_settings()
    assert 0 < defaults.db_idle_in_transaction_seconds <= MAX_IDLE_IN_TRANSACTION_SECONDS
    assert 0 < defaults.db_lock_timeout_seconds <= MAX_IDLE_IN_TRANSACTION_SECONDS


def test_a_session_idle_in_a_transaction_is_cut_and_its_locks_go(
    tmp_path: Path, postgres_url: str
) -> None:
    """A worker frozen (or its host gone) inside a transaction: the server ends the session
    after the workspace's ``db_idle_in_transaction_seconds`` and its row lock goes. The
    setting is shortened here so the test waits 2 s, not the default."""
    workspace = open_workspace(
        home=str(tmp_path / "home"),
        database_url=postgres_url,
        db_idle_in_transaction_seconds=2.0,
        db_lock_timeout_seconds=1.0,
    )
    db = workspace.db
    other = create_engine(postgres_url)
    try:
        with db.connect() as connection:
            timeout = _seconds(
                connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
            )
            lock_timeout = _seconds(connection.execute(text("SHOW lock_timeout")).scalar_one())
        assert (timeout, lock_timeout) == (2.0, 1.0), "the engine's sessions ignore the settings"
        with db.begin() as connection:
            connection.execute(text("CREATE TABLE hot_row (id int PRIMARY KEY, n int)"))
            connection.execute(text("INSERT INTO hot_row VALUES (1, 0)"))
        frozen = db.engine.connect()
        frozen.begin()
        frozen.execute(text("SELECT n FROM hot_row WHERE id = 1 FOR UPDATE"))
        quiet = time.monotonic()
        # The holder now sends nothing, as a frozen or vanished client would; another session
        # tries the row until it gets it.
        with other.connect() as waiter:
            waited = 0.0
            while True:
                try:
                    row = waiter.execute(
                        text("SELECT n FROM hot_row WHERE id = 1 FOR UPDATE NOWAIT")
                    ).scalar_one()
                    break
                except OperationalError:
                    waiter.rollback()
                waited = time.monotonic() - quiet
                assert waited < timeout + 15, f"the row is still locked after {waited:.1f} s"
                time.sleep(0.1)
            waiter.commit()
        print(f"lock released {time.monotonic() - quiet:.1f} s after the holder went quiet")
        assert row == 0 and waited >= timeout - 0.5, "the lock went before the timeout: by what?"
        with pytest.raises(Exception, match=r"(?i)terminat|closed|idle"):
            frozen.execute(text("SELECT 1"))
        frozen.invalidate()
    finally:
        other.dispose()
        workspace.close()


def test_sqlite_lock_held_past_the_busy_timeout_costs_no_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock ten times longer than the workers' busy
    timeout, three times, while two workers process a batch of 240 quick documents. Leases
    last 120 s and the workers run no periodic reaper, so the batch can only finish in time if
    a lock timeout neither loses a message nor strands an item: every document completes
    once, on its first attempt."""
    env = slow_worker_env(tmp_path, monkeypatch, lease_seconds=120, slow_seconds=0.1)
    env["BATCHNB_SQLITE_BUSY_TIMEOUT_MS"] = "200"
    workspace = open_workspace()
    count = 240
    logs = [tmp_path / f"w{n}.log" for n in range(2)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        batch = submit(text_documents(count), PROMPT, extractor="slow", workspace=workspace)
        workers = [start_worker(env, threads=2, log=log, periodic=False) for log in logs]
        wait_for(lambda: count_completed(workspace.db, batch.id) >= 5, 90, "the workers to start")
        holder = sqlite3.connect(workspace.settings.home / "batchnb.db", isolation_level=None)
        for _ in range(3):
            holder.execute("BEGIN IMMEDIATE")
            time.sleep(2.0)
            holder.execute("COMMIT")
            time.sleep(0.5)
        holder.close()
        released = time.monotonic()
        done_before = count_completed(workspace.db, batch.id)
        assert done_before < count, "the batch finished before the lock was held: add documents"
        tails = " / ".join(log_tail(log, 800) for log in logs)
        wait_for(
            lambda: count_completed(workspace.db, batch.id) == count,
            30,
            f"every document to complete after the lock went ({done_before} of {count} "
            f"before; leases last 120 s, so a stranded item or a lost message waits that "
            f"long); workers: {tails}",
        )
        finished_in = time.monotonic() - released
        attempts = attempts_per_item(workspace.db, batch.id)
        per_document = results_per_document(workspace.db, batch.id)
    finally:
        for worker in workers:
            stop_worker(worker)
        workspace.close()
    assert set(attempts.values()) == {1}, {item: n for item, n in attempts.items() if n != 1}
    assert len(per_document) == count and set(per_document.values()) == {1}
    print(f"every document completed {finished_in:.1f} s after the lock went")
    assert finished_in < 30
