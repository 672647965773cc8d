"""What the fault tests (test_faults.py, test_load.py) share: real worker processes, documents,
freezing a worker inside a database transaction, and counting from the database.

Counting is done in the database, never from the workers' logs: "exactly once" means one
``extracted_data`` row per document, and "the others kept working" means completed
``queue_items`` rows with their ``finished_at`` spread over the freeze.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from batchnb.db.engine import Database
from batchnb.db.models import ExtractedData, QueueItem

BATCHNB = Path(sys.executable).with_name("batchnb")
PROMPT = "invoice number, total"


def text_documents(count: int, tag: str = "doc") -> list[tuple[str, bytes]]:
    """Tiny distinct invoices (intake refuses duplicate content)."""
    return [
        (
            f"{tag}-{n:05d}.txt",
            f"ACME Ltd\nInvoice Number: INV-{n:05d}\nTotal: {n}.50 EUR\n".encode(),
        )
        for n in range(count)
    ]


def start_worker(
    env: dict[str, str],
    *,
    threads: int = 1,
    name: str = "",
    log: Path | None = None,
    periodic: bool = True,
) -> subprocess.Popen[bytes]:
    """One ``batchnb worker`` process (no supervisor: the test signals the worker itself).

    ``name`` becomes the PostgreSQL ``application_name`` of its connections (libpq reads
    ``PGAPPNAME``), so the test can find its sessions in ``pg_stat_activity``; ``log`` gets
    its output (to show in a failure message).
    """
    argv = [str(BATCHNB), "worker", "--processes", "1", "--threads", str(threads)]
    if not periodic:
        argv.append("--no-periodic")
    child_env = {**env, "PGAPPNAME": name} if name else env
    if log is None:
        return subprocess.Popen(
            argv, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with open(log, "ab") as output:
        return subprocess.Popen(argv, env=child_env, stdout=output, stderr=output)


def log_tail(log: Path, chars: int = 2000) -> str:
    """The end of a worker's log, for a failure message."""
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGCONT (in case it is frozen), SIGTERM, then SIGKILL if it will not stop."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def results_per_document(db: Database, batch_id: int) -> dict[int, int]:
    """How many results each document of the batch has (exactly once: all 1)."""
    with db.read() as session:
        rows = session.execute(
            select(ExtractedData.document_id, func.count())
            .where(ExtractedData.batch_id == batch_id)
            .group_by(ExtractedData.document_id)
        ).all()
    return {int(document): int(count) for document, count in rows}


def count_completed(db: Database, batch_id: int) -> int:
    """Completed queue items of the batch, straight from the database (no cache)."""
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    QueueItem.batch_id == batch_id, QueueItem.status == "completed"
                )
            )
            or 0
        )


def attempts_per_item(db: Database, batch_id: int) -> dict[int, int]:
    """Each queue item's attempt count (a lost message or a crash costs one more)."""
    with db.read() as session:
        rows = session.execute(
            select(QueueItem.id, QueueItem.attempts).where(QueueItem.batch_id == batch_id)
        ).all()
    return {int(item): int(attempts) for item, attempts in rows}


def completion_times(db: Database, batch_id: int) -> list[datetime]:
    """When each completed item of the batch finished, in order."""
    with db.read() as session:
        return sorted(
            session.execute(
                select(QueueItem.finished_at).where(
                    QueueItem.batch_id == batch_id,
                    QueueItem.status == "completed",
                    QueueItem.finished_at.is_not(None),
                )
            ).scalars()
        )


def longest_gap(times: list[datetime], start: datetime, end: datetime) -> float:
    """The longest stretch in seconds between ``start`` and ``end`` with no completion."""
    inside = [t for t in times if start <= t <= end]
    edges = [start, *inside, end]
    return max((b - a).total_seconds() for a, b in pairwise(edges))


@dataclass(frozen=True)
class Freeze:
    """A worker frozen with SIGSTOP inside a write transaction: which session, doing what."""

    backend_pid: int
    xid: str
    tries: int
    blocking: tuple[str, ...]
    """Other workers' sessions that waited for its locks right after it froze
    (``application: query``); any at all means the worst moment to stop was caught."""
    query: str
    """The session's last statement when it was frozen."""
    locks: tuple[str, ...]
    """The relation locks its transaction held (``table mode``)."""


# A session "inside a write transaction" has a transaction id: PostgreSQL assigns one at the
# first row it changes or locks (SELECT ... FOR UPDATE included). Read-only transactions have
# none and hold no row locks, so freezing in one proves nothing. The heartbeat's transaction
# (it writes the workers table) touches only the worker's own rows, so it is left out: the
# freeze lands in a lease, an outcome or a repair, where the shared rows are.
_WRITING_SESSIONS = text(
    "SELECT a.pid, a.backend_xid::text FROM pg_stat_activity a "
    "WHERE a.application_name = :name AND a.backend_xid IS NOT NULL AND NOT EXISTS ("
    "SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'workers'::regclass)"
)
_BLOCKED_BY = text(
    "SELECT application_name || ': ' || left(query, 120) FROM pg_stat_activity "
    "WHERE :pid = ANY(pg_blocking_pids(pid)) AND application_name <> :name"
)
_QUERY = text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
_LOCKS = text(
    "SELECT l.relation::regclass::text || ' ' || l.mode FROM pg_locks l "
    "WHERE l.pid = :pid AND l.relation IS NOT NULL ORDER BY 1"
)


def freeze_in_transaction(
    process: subprocess.Popen[bytes],
    admin: Connection,
    name: str,
    *,
    prefer_blocking_seconds: float = 10,
    timeout: float = 60,
) -> Freeze:
    """SIGSTOP ``process`` at a moment one of its sessions is inside a write transaction.

    Polls ``pg_stat_activity`` for a session of application ``name`` holding a transaction
    id, stops the process, and checks the same transaction is still open (it did not commit
    between the look and the signal); otherwise resumes it and tries again. For the first
    ``prefer_blocking_seconds`` only a freeze that other workers soon wait on is kept (a
    transaction holding a lock every worker needs: the worst moment to stop); after that any
    write transaction will do, since a queue that shares no hot lock offers no such moment.
    ``admin`` is an autocommit connection of the test's own to the same database.
    """
    started = time.monotonic()
    tries = 0
    while time.monotonic() - started < timeout:
        seen = admin.execute(_WRITING_SESSIONS, {"name": name}).all()
        if not seen:
            continue
        process.send_signal(signal.SIGSTOP)
        tries += 1
        # The stop is asynchronous: wait until the kernel reports the process stopped.
        _wait_stopped(process.pid)
        still = {tuple(row) for row in admin.execute(_WRITING_SESSIONS, {"name": name}).all()}
        caught = [(pid, xid) for pid, xid in seen if (pid, xid) in still]
        if caught:
            pid, xid = caught[0]
            blocking = _blocks_others(admin, pid, name, wait=0.5)
            if blocking or time.monotonic() - started >= prefer_blocking_seconds:
                query = admin.execute(_QUERY, {"pid": pid}).scalar_one()
                locks = admin.execute(_LOCKS, {"pid": pid}).scalars().all()
                return Freeze(int(pid), str(xid), tries, blocking, str(query), tuple(locks))
        process.send_signal(signal.SIGCONT)
    raise AssertionError(f"could not catch worker {name} inside a write transaction in {timeout}s")


def _blocks_others(admin: Connection, pid: int, name: str, wait: float) -> tuple[str, ...]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        blocked = admin.execute(_BLOCKED_BY, {"pid": pid, "name": name}).scalars().all()
        if blocked:
            return tuple(blocked)
        time.sleep(0.02)
    return ()


def _wait_stopped(pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            # Field 3 is the state; the command name before it is in parentheses.
            if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop")


def server_settings(database_url: str, redis_url: str, queue_name: str) -> dict[str, str]:
    """Settings for a PostgreSQL database and a Redis queue of this test's own."""
    return {
        "BATCHNB_DATABASE_URL": database_url,
        "BATCHNB_QUEUE_URL": f"{redis_url}?huey_name={queue_name}",
    }
