"""Leasing, priority and the concurrency limit on PostgreSQL (row locks instead of SQLite's)."""

from __future__ import annotations

from .conftest import QueueHarness


def test_priority_and_exactly_once(postgres_harness: QueueHarness) -> None:
    h = postgres_harness
    priorities = [1, 7, 3, 7, 0]
    ids = [h.add(priority=p) for p in priorities]
    h.start_worker(threads=1)
    h.wait_final(ids)
    ran = [item_id for item_id, _, _ in h.handler.calls]
    assert ran == [ids[1], ids[3], ids[2], ids[0], ids[4]]
    assert all(h.item(i).status == "completed" for i in ids)


def test_concurrency_limit_across_two_workers(postgres_harness: QueueHarness) -> None:
    h = postgres_harness
    h.configure_queue(concurrency_limit=3)
    ids = [h.add({"sleep": 0.3}) for _ in range(9)]
    h.start_worker(threads=3)
    h.start_worker(threads=3)
    h.wait_final(ids)
    assert h.handler.max_running == 3
    assert [h.item(i).attempts for i in ids] == [1] * 9
