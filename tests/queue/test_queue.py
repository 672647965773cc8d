"""The queue with a real Huey consumer (threads in this process) and a real database."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select, update

from batchnb.db.models import AuditEvent, QueueItem, utcnow
from batchnb.queue import items, leasing
from batchnb.queue.outcomes import reclaim_expired
from batchnb.queue.recovery import redispatch_stranded

from .conftest import QueueHarness, make_harness


def _done_count(h: QueueHarness, item_id: int) -> int:
    with h.db.read() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    AuditEvent.action == "done", AuditEvent.target_id == str(item_id)
                )
            )
            or 0
        )


def test_items_complete_once(harness: QueueHarness) -> None:
    ids = [harness.add({"value": n}) for n in range(10)]
    harness.start_worker(threads=2)
    harness.wait_final(ids)
    assert [harness.item(i).status for i in ids] == ["completed"] * 10
    assert [_done_count(harness, i) for i in ids] == [1] * 10
    assert all(harness.item(i).locked_by is None for i in ids)


def test_priority_is_honoured(harness: QueueHarness) -> None:
    priorities = [0, 5, 1, 9, 3, 0, 9]
    ids = [harness.add(priority=p) for p in priorities]
    harness.start_worker(threads=1)
    harness.wait_final(ids)
    ran = [item_id for item_id, _, _ in harness.handler.calls]
    expected = [
        i for _, i in sorted(zip(priorities, ids, strict=True), key=lambda t: (-t[0], t[1]))
    ]
    assert ran == expected


def test_retry_with_backoff_then_failure(harness: QueueHarness) -> None:
    harness.configure_queue(max_attempts=3, retry_delay_seconds=0.3, retry_backoff=2.0)
    item_id = harness.add({"fail_times": 99})
    harness.start_worker()
    harness.wait_final([item_id], timeout=20)
    row = harness.item(item_id)
    assert row.status == "failed"
    assert row.attempts == 3
    assert "transient failure 3" in row.last_error and "after 3 attempts" in row.last_error
    failure = harness.handler.failures[item_id]
    assert failure.kind == "RuntimeError"
    assert failure.traceback is not None and "probe: transient failure 3" in failure.traceback
    assert "in run" in failure.traceback  # the frame that raised, not only the message
    times = [t for i, _, t in harness.handler.calls if i == item_id]
    assert len(times) == 3
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert first_gap >= 0.3 and second_gap >= 0.6, (first_gap, second_gap)
    assert _done_count(harness, item_id) == 0


def test_transient_failure_then_success(harness: QueueHarness) -> None:
    harness.configure_queue(max_attempts=3, retry_delay_seconds=0.1, retry_backoff=2.0)
    item_id = harness.add({"fail_times": 1, "value": "ok"})
    harness.start_worker()
    harness.wait_final([item_id])
    row = harness.item(item_id)
    assert (row.status, row.attempts) == ("completed", 2)
    assert _done_count(harness, item_id) == 1


def test_permanent_error_fails_without_retry(harness: QueueHarness) -> None:
    harness.configure_queue(max_attempts=5, retry_delay_seconds=0.1)
    bad = harness.add({"permanent": True})
    good = harness.add({"value": 1})
    harness.start_worker()
    harness.wait_final([bad, good])
    assert harness.item(bad).status == "failed"
    assert harness.item(bad).attempts == 1
    assert harness.item(bad).last_error == "probe: this document can never work"
    assert harness.handler.failures[bad].kind == "corrupt"
    assert "DocumentError" in (harness.handler.failures[bad].traceback or "")
    assert harness.item(good).status == "completed"


def test_cancelled_pending_items_never_start(harness: QueueHarness) -> None:
    ids = [harness.add() for _ in range(4)]
    with harness.db.begin() as session:
        assert items.cancel_items(session, ids[:3], now=utcnow()) == 3
    harness.start_worker()
    harness.wait_final(ids)
    ran = {item_id for item_id, _, _ in harness.handler.calls}
    assert ran == {ids[3]}
    assert [harness.item(i).status for i in ids] == ["cancelled"] * 3 + ["completed"]


def test_running_item_stops_at_checkpoint_when_cancelled(harness: QueueHarness) -> None:
    item_id = harness.add({"sleep": 30})
    harness.start_worker()
    deadline = time.monotonic() + 10
    while harness.item(item_id).status != "processing" and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    with harness.db.begin() as session:
        items.cancel_items(session, [item_id], now=utcnow())
    deadline = time.monotonic() + 10
    while ("cancelled", item_id) not in harness.handler.events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("cancelled", item_id) in harness.handler.events
    assert time.monotonic() - started < 5
    row = harness.item(item_id)
    assert (row.status, row.locked_by) == ("cancelled", None)
    assert _done_count(harness, item_id) == 0


def test_concurrency_limit(harness: QueueHarness) -> None:
    harness.configure_queue(concurrency_limit=2)
    ids = [harness.add({"sleep": 0.3}) for _ in range(6)]
    harness.start_worker(threads=4)
    harness.wait_final(ids)
    assert harness.handler.max_running == 2
    assert all(harness.item(i).status == "completed" for i in ids)


def test_expired_lease_is_reclaimed_and_processed_once(harness: QueueHarness) -> None:
    item_id = harness.add(send=False)
    with harness.db.begin() as session:
        leases = leasing.lease(session, "batch_processing", "dead-worker#1", 60)
        assert isinstance(leases, list) and len(leases) == 1
        leased = leases[0]
        session.execute(
            update(QueueItem)
            .where(QueueItem.id == item_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert reclaim_expired(harness.runtime) == (1, 0)
    harness.start_worker()
    harness.wait_final([item_id])
    row = harness.item(item_id)
    assert (row.status, row.attempts) == ("completed", 2)
    assert _done_count(harness, item_id) == 1
    # The dead worker's late write cannot land: its lease is gone.
    with harness.db.begin() as session:
        assert not items.finish(session, leased, items.ItemStatus.COMPLETED, utcnow())


def test_reaper_fails_an_item_that_always_kills_its_worker(harness: QueueHarness) -> None:
    harness.configure_queue(max_attempts=1)
    item_id = harness.add(send=False)
    with harness.db.begin() as session:
        leasing.lease(session, "batch_processing", "dead-worker#2", 60)
        session.execute(
            update(QueueItem)
            .where(QueueItem.id == item_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert reclaim_expired(harness.runtime) == (0, 1)
    row = harness.item(item_id)
    assert row.status == "failed" and "stopped responding" in row.last_error
    assert harness.handler.failures[item_id].kind == "worker_lost"


def test_graceful_stop_releases_running_item(harness: QueueHarness) -> None:
    item_id = harness.add({"sleep": 30})
    worker = harness.start_worker()
    deadline = time.monotonic() + 10
    while harness.item(item_id).status != "processing" and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.stop()
    row = harness.item(item_id)
    assert (row.status, row.attempts, row.locked_by) == ("pending", 0, None)
    assert ("requeued", item_id) in harness.handler.events


def test_leases_are_extended_while_running(database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(database, f"sqlite:///{tmp_path / 'q.db'}", lease_seconds=1.0)
    item_id = h.add({"sleep": 2.5})
    h.start_worker()
    try:
        deadline = time.monotonic() + 15
        while h.item(item_id).status != "completed" and time.monotonic() < deadline:
            # Act as a reaper the whole time: a lease that was not extended would be taken.
            assert reclaim_expired(h.runtime) == (0, 0)
            time.sleep(0.2)
        row = h.item(item_id)
        assert (row.status, row.attempts) == ("completed", 1)
        assert len(h.handler.calls) == 1
    finally:
        for worker in h.workers:
            worker.stop()


def test_items_whose_messages_were_lost_are_sent_again(harness: QueueHarness) -> None:
    # As if a worker took the messages and was killed before leasing anything.
    ids = [harness.add(send=False) for _ in range(3)]
    sent_before = harness.add()
    assert redispatch_stranded(harness.runtime) == 3
    assert redispatch_stranded(harness.runtime) == 0
    harness.start_worker(threads=2)
    harness.wait_final([*ids, sent_before])
    assert [_done_count(harness, i) for i in [*ids, sent_before]] == [1, 1, 1, 1]


def test_worker_start_resends_lost_messages(harness: QueueHarness) -> None:
    ids = [harness.add(send=False) for _ in range(2)]
    harness.start_worker()
    harness.wait_final(ids)
    assert all(harness.item(i).status == "completed" for i in ids)
