"""Leasing, priority and the concurrency limit on PostgreSQL: no leaser waits for another."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from batchnb import start_worker, submit
from batchnb.db.engine import Database
from batchnb.db.migrate import ensure_current
from batchnb.db.models import ExtractedData, utcnow
from batchnb.queue import items, leasing
from batchnb.queue.messages import Message
from batchnb.services.workspace import Workspace

from .conftest import QueueHarness, make_harness


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


def test_an_open_lease_transaction_does_not_block_other_leasers(postgres_url: str) -> None:
    # A worker frozen inside its lease transaction (SIGSTOP, a VM pause) holds that
    # transaction's row locks. Leasing locks no shared row and skips locked items, so another
    # worker leases the next item at once; with a short lock_timeout, waiting would fail here.
    db = Database(postgres_url, lock_timeout=1.0)
    ensure_current(db)
    h = make_harness(db, "sqlite:///:memory:")
    ids = [h.add(send=False) for _ in range(3)]
    try:
        with db.begin() as frozen:
            held = leasing.lease(frozen, "batch_processing", "frozen#1", 60)
            assert isinstance(held, list) and [i.id for i in held] == [ids[0]]
            with db.begin() as other:
                taken = leasing.lease(other, "batch_processing", "other#1", 60, count=5)
            assert isinstance(taken, list) and [i.id for i in taken] == ids[1:]
            frozen.rollback()
        with db.begin() as later:
            again = leasing.lease(later, "batch_processing", "later#1", 60)
        assert isinstance(again, list) and [i.id for i in again] == [ids[0]]
    finally:
        db.dispose()


def test_a_racing_lease_over_the_limit_is_given_back(postgres_url: str) -> None:
    # Two leasers that each saw a free place: after committing, the one that finds the limit
    # reached by others gives its item back (over_limit), so the limit holds without a lock.
    db = Database(postgres_url)
    ensure_current(db)
    h = make_harness(db, "sqlite:///:memory:")
    h.configure_queue(concurrency_limit=1)
    for _ in range(2):
        h.add(send=False)
    try:
        with db.begin() as first, db.begin() as second:
            a = leasing.lease(first, "batch_processing", "a#1", 60)
            b = leasing.lease(second, "batch_processing", "b#1", 60)
            assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 1
        with db.connect() as connection:
            verdicts = [leasing.over_limit(connection, a), leasing.over_limit(connection, b)]
        assert verdicts == [True, True]  # both see the other: both give back, none runs twice
        with db.begin() as first:
            items.release(first, a[0], utcnow())
        with db.connect() as connection:
            assert leasing.over_limit(connection, b) is False
    finally:
        db.dispose()


def test_documents_of_a_batch_finish_while_another_lease_of_it_is_open(
    postgres_workspace: Workspace, tmp_path: Path
) -> None:
    # The first lease of a batch marks it processing. A worker frozen right there must not
    # stop the others finishing the batch's documents (no lock on the batch's row is waited
    # for), and the batch closes once the frozen document is done too.
    ws = postgres_workspace
    files = []
    for index in range(4):
        path = tmp_path / f"note-{index}.txt"
        path.write_text(f"Invoice number: INV-{index}\nTotal: {index + 1}.00\n")
        files.append(path)
    batch = submit(files, "invoice number, total", workspace=ws)
    handler = ws.runtime.handlers["process_document"]
    with ws.db.begin() as frozen:
        held = leasing.lease(frozen, "batch_processing", "frozen#1", 120)
        assert isinstance(held, list) and len(held) == 1
        handler.started(frozen, held)
        worker = start_worker(ws, threads=2, periodic=False)
        try:
            deadline = time.monotonic() + 60
            while batch.progress().completed < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert batch.progress().completed == 3
            frozen.rollback()
            # The rolled-back lease is ready again; its message was taken, so send one.
            ws.runtime.dispatch([Message(held[0].id)])
            batch.wait(timeout=60)
        finally:
            worker.stop()
    progress = batch.progress()
    assert (progress.completed, progress.failed) == (4, 0)
    assert batch.status == "completed"
    with ws.db.connect() as connection:
        results = connection.execute(select(func.count()).select_from(ExtractedData)).scalar()
    assert results == 4
