"""The recovery lock and the recovery round, in one process on real databases and transports.

The lock is a lease row (migration 0009): these tests check that one holder at a time gets
it, that a holder that stops renewing loses it when its time runs out, and that rounds of
two loops never overlap. The round's re-sending is checked against a real transport: a
deficit is answered only when seen twice, so messages in flight are never duplicated.
Real worker processes (SIGKILL, SIGSTOP, FLUSHDB) are in test_recovery.py.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, update

from batchnb.db import migrate
from batchnb.db.engine import Database
from batchnb.db.migrate import ensure_current
from batchnb.db.models import MaintenanceLock, ProcessingQueue, QueueItem, utcnow
from batchnb.db.models import Worker as WorkerRow
from batchnb.queue import items, leasing
from batchnb.queue.locks import LeaseLock
from batchnb.queue.recovery import (
    LOCK_INTERVALS,
    RecoveryLoop,
    count_missing_messages,
    recovery_interval,
)
from batchnb.services.health import check_health
from batchnb.services.workers import start_worker
from batchnb.services.workspace import open_workspace
from tests.queue.conftest import Probe, QueueHarness, make_harness


@pytest.fixture(params=["sqlite", "postgres"])
def lock_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'locks.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    ensure_current(db)
    yield db
    db.dispose()


def test_one_holder_at_a_time_and_an_expired_claim_passes_on(lock_db: Database) -> None:
    first = LeaseLock(lock_db, "recovery", "worker-a", seconds=30)
    second = LeaseLock(lock_db, "recovery", "worker-b", seconds=30)

    assert first.acquire()  # the first claim inserts the row
    assert not second.acquire()
    assert first.acquire()  # renewing
    holder = first.current()
    assert holder is not None and holder[0] == "worker-a"

    # worker-a froze: 31 s later its claim has run out, and worker-b takes the lock.
    later = utcnow() + timedelta(seconds=31)
    assert second.acquire(now=later)
    # worker-a wakes up: it may not renew what it lost.
    assert not first.acquire(now=later)
    assert not first.release()
    assert second.release()
    # Released: the next claimant does not wait for the claim to run out.
    assert first.acquire()


def test_concurrent_claims_let_exactly_one_through(lock_db: Database) -> None:
    for round_ in range(2):  # the first round inserts the row, the second updates it
        locks = [LeaseLock(lock_db, "recovery", f"worker-{n}", seconds=30) for n in range(6)]
        start = threading.Barrier(len(locks))
        won: list[str] = []
        threads = [threading.Thread(target=_claim, args=(lock, start, won)) for lock in locks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(won) == 1, (round_, won)
        # Free the lock for the next round: its holder releases it.
        assert LeaseLock(lock_db, "recovery", won[0], seconds=30).release()


def _claim(lock: LeaseLock, start: threading.Barrier, won: list[str]) -> None:
    start.wait()
    if lock.acquire():
        won.append(lock.holder)


def test_rounds_of_two_loops_never_overlap_and_the_lock_passes_on_stop(
    database: Database, tmp_path: Path
) -> None:
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    first, second = make_harness(database, queue_url), make_harness(database, queue_url)
    rounds: list[tuple[str, float, float]] = []

    def recording_sweep(worker_id: str) -> int:
        started = time.monotonic()
        time.sleep(0.15)
        rounds.append((worker_id, started, time.monotonic()))
        return 0

    for h in (first, second):
        h.runtime.sweeps.append(lambda h=h: recording_sweep(h.runtime.worker_id))
    loops = [RecoveryLoop(first.runtime, 0.1, 5.0), RecoveryLoop(second.runtime, 0.1, 5.0)]
    for loop in loops:
        loop.start()
    try:
        time.sleep(2.0)
        holders = {worker for worker, _, _ in rounds}
        # The holder renews its claim every round, so it keeps doing the rounds.
        assert len(holders) == 1, holders
        (holder,) = holders
        holding = loops[0] if holder == first.runtime.worker_id else loops[1]
        other = loops[1] if holding is loops[0] else loops[0]
        holding.stop()  # releases the lock
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(worker == other.runtime.worker_id for worker, _, _ in rounds):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the other loop never took over after the holder stopped")
    finally:
        for loop in loops:
            loop.stop()
    ordered = sorted(rounds, key=lambda r: r[1])
    for (_, _, ended), (_, started, _) in itertools.pairwise(ordered):
        assert started >= ended, ordered


def test_interval_follows_the_lease() -> None:
    assert recovery_interval(60.0) == 5.0
    assert recovery_interval(3.0) == 1.0
    assert recovery_interval(60.0, 2.0) == 2.0
    assert LOCK_INTERVALS >= 2


def _round(loop: RecoveryLoop) -> int:
    done = loop.run_round()
    assert done is not None and done.complete
    return done.resent


def test_a_deficit_is_resent_only_when_seen_twice(harness: QueueHarness) -> None:
    """No worker consumes here: the transport's messages stay where they are."""
    loop = RecoveryLoop(harness.runtime, 1.0, 5.0)
    sent = [harness.add() for _ in range(3)]
    assert count_missing_messages(harness.runtime) == 0
    assert _round(loop) == 0

    # A producer between its commit and its send: the deficit is seen once, then it sends.
    with harness.db.begin() as connection:
        late = items.enqueue(connection, [Probe() for _ in range(4)], owner="t", now=utcnow())
    assert count_missing_messages(harness.runtime) == 4
    assert _round(loop) == 0
    harness.runtime.dispatch(late)
    assert _round(loop) == 0
    assert harness.runtime.huey.pending_count() == 7

    # Messages really lost (as after FLUSHDB): re-sent on the second round that sees it.
    stranded = [harness.add(send=False) for _ in range(5)]
    assert _round(loop) == 0
    assert _round(loop) == 5
    assert _round(loop) == 0
    assert harness.runtime.huey.pending_count() == 12
    harness.start_worker(threads=2)
    harness.wait_final([*sent, *(m.item_id for m in late), *stranded])
    assert len(harness.handler.calls) == 12


def test_round_runs_every_sweep_and_survives_a_broken_one(
    harness: QueueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> int:
        raise RuntimeError("sweep exploded")

    def repairs_two() -> int:
        return 2

    harness.runtime.sweeps.extend([broken, repairs_two])
    loop = RecoveryLoop(harness.runtime, 1.0, 5.0)
    with caplog.at_level(logging.WARNING, logger="batchnb.queue.recovery"):
        done = loop.run_round()
    assert done is not None
    assert done.repaired == {"repairs_two": 2}
    assert "recovery sweep broken failed" in caplog.text
    assert "recovery sweep repairs_two repaired 2" in caplog.text


def test_a_round_is_skipped_while_another_worker_holds_the_lock(harness: QueueHarness) -> None:
    assert LeaseLock(harness.db, "recovery", "someone-else", seconds=30).acquire()
    assert RecoveryLoop(harness.runtime, 1.0, 5.0).run_round() is None


def test_the_reaper_is_no_longer_a_huey_periodic_task(harness: QueueHarness) -> None:
    names = {task.__name__ for task in harness.runtime.huey._registry._periodic_tasks}
    assert not any("reap" in name for name in names), names


def test_worker_runs_the_loop_and_stops_it(harness: QueueHarness) -> None:
    worker = harness.start_worker()
    assert worker.recovery.running
    assert worker.recovery.interval == recovery_interval(harness.runtime.lease_seconds)
    worker.stop()
    assert not worker.recovery.running


def test_migration_0009_adds_the_lock_table(lock_db: Database) -> None:
    migrate.downgrade(lock_db, "0008")
    with lock_db.engine.connect() as connection:
        assert "maintenance_locks" not in inspect(connection).get_table_names()
    migrate.upgrade(lock_db)
    with lock_db.engine.connect() as connection:
        assert "maintenance_locks" in inspect(connection).get_table_names()
    assert LeaseLock(lock_db, "recovery", "w", seconds=5).acquire()


def test_health_reports_a_stall_only_when_free_consumers_lease_nothing(tmp_path: Path) -> None:
    """Items due with no message, a live idle worker whose recovery is far off: a stall. The
    same items in a paused queue, or with the queue at its limit, are not one."""
    workspace = open_workspace(
        home=str(tmp_path / "home"),
        heartbeat_seconds=0.5,
        health_stall_seconds=0.5,
        recovery_seconds=1800,
        lease_seconds=7200,
    )
    worker = start_worker(workspace, threads=2)
    assert worker.recovery.running  # a notebook's worker recovers too
    assert worker.recovery.interval == 1800  # BATCHNB_RECOVERY_SECONDS (a third of the lease: 2400)
    try:
        with workspace.db.begin() as connection:
            # No message is sent: as if the transport lost them.
            items.enqueue(connection, [Probe() for _ in range(3)], owner="t", now=utcnow())
        time.sleep(1.0)
        report = check_health(workspace)
        stalls = [p for p in report.problems if "stalled" in p]
        assert len(stalls) == 1, report.problems
        assert "queue batch_processing is stalled: 3 items" in stalls[0]
        assert "2 free threads" in stalls[0]

        for values in ({"active": False}, {"active": True, "concurrency_limit": 0}):
            with workspace.db.write() as session:
                session.execute(
                    update(ProcessingQueue)
                    .where(ProcessingQueue.name == "batch_processing")
                    .values(**values)
                )
            assert not [p for p in check_health(workspace).problems if "stalled" in p], values
    finally:
        with workspace.db.write() as session:
            ids = session.scalars(select(QueueItem.id)).all()
        with workspace.db.begin() as connection:
            items.cancel_items(connection, ids, now=utcnow())
        worker.stop()
        workspace.close()


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_leases_of_a_dead_worker_on_this_machine_end_at_once(harness: QueueHarness) -> None:
    """A killed worker's items come back on the next round, not when its lease runs out; a
    worker whose process lives (another pid namespace, a slow heartbeat) keeps its items."""
    late = utcnow() - timedelta(seconds=30)
    workers = {
        "dead": (_gone_pid(), late),
        "alive-but-late": (os.getpid(), late),  # a process with this pid exists here
        "dead-but-fresh": (_gone_pid(), utcnow()),  # heartbeat on time: not judged yet
    }
    held = {}
    for name, (pid, last_seen) in workers.items():
        item_id = harness.add(send=False)
        with harness.db.begin() as connection:
            connection.execute(
                WorkerRow.__table__.insert().values(
                    id=name, hostname=socket.gethostname(), pid=pid, threads=1, last_seen=last_seen
                )
            )
            leased = leasing.lease(connection, "batch_processing", f"{name}#1", 600)
        assert isinstance(leased, list) and [i.id for i in leased] == [item_id]
        held[name] = item_id
    done = RecoveryLoop(harness.runtime, 1.0, 5.0).run_round()
    assert done is not None and done.dead_workers == ["dead"] and done.requeued == 1
    row = harness.item(held["dead"])
    assert (row.status, row.locked_by, row.attempts) == ("pending", None, 1)
    for name in ("alive-but-late", "dead-but-fresh"):
        assert harness.item(held[name]).locked_by == f"{name}#1"
    with harness.db.read() as session:
        stopped = dict(session.execute(select(WorkerRow.id, WorkerRow.stopped_at)).all())
    assert stopped["dead"] is not None and stopped["alive-but-late"] is None


def test_the_recovery_lock_of_a_dead_holder_is_taken_over_at_once(harness: QueueHarness) -> None:
    """A killed holder's claim would keep every round from running until it ran out; with
    workers killed more often than that (a crash loop), no round would ever run."""
    late = utcnow() - timedelta(seconds=30)
    for name, pid in (("dead-holder", _gone_pid()), ("live-holder", os.getpid())):
        with harness.db.begin() as connection:
            connection.execute(
                WorkerRow.__table__.insert().values(
                    id=name, hostname=socket.gethostname(), pid=pid, threads=1, last_seen=late
                )
            )
    loop = RecoveryLoop(harness.runtime, 1.0, 5.0)
    assert LeaseLock(harness.db, "recovery", "live-holder", seconds=30).acquire()
    assert loop.run_round() is None, "a late holder whose process lives keeps the lock"
    with harness.db.begin() as connection:
        connection.execute(
            update(MaintenanceLock)
            .values(held_by="dead-holder")
            .execution_options(synchronize_session=False)
        )
    assert loop.run_round() is not None
    assert loop.lock.current() is not None and loop.lock.current()[0] == harness.runtime.worker_id
