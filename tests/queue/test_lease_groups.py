"""Quick items leased and completed several per transaction; a busy database loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchnb.db.engine import Database
from batchnb.db.migrate import ensure_current
from batchnb.db.models import AuditEvent, utcnow
from batchnb.queue import items, leasing, runner
from batchnb.queue.runtime import LEASE_TARGET_SECONDS, MAX_LEASE_COUNT, LeaseSizer

from .conftest import QUEUE, QueueHarness, make_harness


def _lease(h: QueueHarness, count: int) -> list[items.LeasedItem]:
    with h.db.begin() as connection:
        leased = leasing.lease(connection, QUEUE, h.runtime.new_token(), 60, count=count)
        assert isinstance(leased, list)
        h.handler.started(connection, leased)
    return leased


def _done(h: QueueHarness, item_id: int) -> int:
    with h.db.read() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    AuditEvent.action == "done", AuditEvent.target_id == str(item_id)
                )
            )
            or 0
        )


def test_the_lease_size_follows_how_long_items_take() -> None:
    sizer = LeaseSizer()
    assert sizer.count("q") == 1  # nothing known yet: one at a time
    for _ in range(20):
        sizer.record("q", 0.001)
    assert sizer.count("q") == MAX_LEASE_COUNT
    for _ in range(20):
        sizer.record("q", LEASE_TARGET_SECONDS)
    assert sizer.count("q") == 1  # slow items: one at a time, so idle workers get the rest
    assert sizer.count("other") == 1


def test_quick_items_are_leased_in_groups_and_each_completes_once(harness: QueueHarness) -> None:
    ids = [harness.add({"value": n}) for n in range(60)]
    harness.start_worker(threads=2)
    harness.wait_final(ids)
    assert harness.runtime.lease_sizer.count(QUEUE) > 1
    rows = [harness.item(i) for i in ids]
    assert [row.status for row in rows] == ["completed"] * 60
    assert [row.attempts for row in rows] == [1] * 60
    assert [_done(harness, i) for i in ids] == [1] * 60
    # Leased in groups: several items share a lease's start time.
    assert len({row.started_at for row in rows}) < 60


def test_a_group_with_a_cancelled_item_completes_the_others(harness: QueueHarness) -> None:
    ids = [harness.add(send=False) for _ in range(3)]
    leased = _lease(harness, 3)
    assert [item.id for item in leased] == ids
    with harness.db.begin() as connection:
        items.cancel_items(connection, [ids[1]], now=utcnow())
    runner.run_leased(harness.runtime, leased)
    assert [harness.item(i).status for i in ids] == ["completed", "cancelled", "completed"]
    assert [_done(harness, i) for i in ids] == [1, 0, 1]
    assert harness.item(ids[1]).locked_by is None
    assert ("cancelled", ids[1]) in harness.handler.events


def test_a_slow_item_gives_the_rest_of_its_group_back(harness: QueueHarness) -> None:
    first = harness.add({"sleep": 3 * LEASE_TARGET_SECONDS}, send=False)
    rest = [harness.add(send=False) for _ in range(2)]
    leased = _lease(harness, 3)
    runner.run_leased(harness.runtime, leased)
    assert harness.item(first).status == "completed"
    for item_id in rest:
        row = harness.item(item_id)
        # Back to waiting, the attempt not counted, and a message sent for it.
        assert (row.status, row.attempts, row.locked_by) == ("pending", 0, None)
    assert harness.runtime.huey.pending_count() == 2


def test_a_slow_item_holds_back_neither_the_results_before_it_nor_the_items_after(
    harness: QueueHarness,
) -> None:
    """While a group's slow item still runs, its timer writes the quick item done before it
    and gives back the one after it, which another thread then completes."""
    before = harness.add(send=False)
    slow = harness.add({"sleep": 10 * runner.GROUP_LATE_SECONDS}, send=False)
    after = harness.add(send=False)
    leased = _lease(harness, 3)
    thread = threading.Thread(target=runner.run_leased, args=(harness.runtime, leased))
    thread.start()
    try:
        harness.start_worker(threads=1)
        harness.wait_final([before, after])
        assert harness.item(slow).status == "processing"  # still running
        # The given-back item's first try was not counted: its attempt is the other thread's.
        assert harness.item(after).attempts == 1
    finally:
        thread.join()
    assert harness.item(slow).status == "completed"
    assert [_done(harness, i) for i in (before, slow, after)] == [1, 1, 1]


def test_a_group_takes_one_place_under_the_concurrency_limit(harness: QueueHarness) -> None:
    """The limit counts leases (threads running), not items: a thread's group of quick items
    is one place, so a killed worker holds no more places than it had threads."""
    harness.configure_queue(concurrency_limit=2)
    ids = [harness.add(send=False) for _ in range(8)]
    assert [item.id for item in _lease(harness, 5)] == ids[:5]
    assert [item.id for item in _lease(harness, 2)] == ids[5:7]
    with harness.db.begin() as connection:
        refused = leasing.lease(connection, QUEUE, harness.runtime.new_token(), 60, count=1)
    assert refused is leasing.LeaseRefusal.AT_CONCURRENCY_LIMIT


@pytest.fixture
def busy_harness(tmp_path: Path) -> Iterator[QueueHarness]:
    db = Database(f"sqlite:///{tmp_path / 'batchnb.db'}", sqlite_busy_timeout_ms=200)
    ensure_current(db)
    yield make_harness(db, f"sqlite:///{tmp_path / 'queue.db'}")
    db.dispose()


def test_a_locked_database_costs_neither_the_message_nor_an_attempt(
    busy_harness: QueueHarness, tmp_path: Path
) -> None:
    h = busy_harness
    item_id = h.add(send=False)
    blocker = sqlite3.connect(tmp_path / "batchnb.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        runner.run_message(h.runtime, item_id)
        row = h.item(item_id)
        assert (row.status, row.attempts) == ("pending", 0)
        huey = h.runtime.huey
        assert huey.pending_count() + huey.scheduled_count() == 1  # its message, sent again
    finally:
        blocker.rollback()
        blocker.close()
    h.start_worker()
    h.wait_final([item_id])
    row = h.item(item_id)
    assert (row.status, row.attempts) == ("completed", 1)
    assert _done(h, item_id) == 1


def test_an_outcome_write_waits_out_a_locked_database(
    busy_harness: QueueHarness, tmp_path: Path
) -> None:
    h = busy_harness
    item_id = h.add(send=False)
    leased = _lease(h, 1)
    blocker = sqlite3.connect(
        tmp_path / "batchnb.db", isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.5, blocker.rollback)  # held far past the 200 ms busy timeout
    release.start()
    try:
        runner.run_leased(h.runtime, leased)
    finally:
        release.join()
        blocker.close()
    row = h.item(item_id)
    assert (row.status, row.attempts, row.locked_by) == ("completed", 1, None)
    assert _done(h, item_id) == 1
