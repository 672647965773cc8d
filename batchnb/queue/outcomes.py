"""Writing what became of leased items: successes (in groups), failures, retries, releases,
cancels, and the items of workers that died.

Every write is one transaction that first moves the item with a conditional update on its
lease, so a worker that lost its lease cannot write. A database that is busy or briefly
unreachable is waited out (:func:`write_outcome`) instead of costing the attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection

from batchnb.db.engine import is_transient_database_error
from batchnb.db.models import utcnow
from batchnb.db.statuses import ItemStatus
from batchnb.errors import WORKER_LOST
from batchnb.queue import items
from batchnb.queue.messages import Message
from batchnb.queue.runtime import Failure, JobHandler, QueueRuntime, by_job_type

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 0.5
"""Pause before a message or an outcome write is tried again after the database was busy."""

T = TypeVar("T")


def write_outcome(runtime: QueueRuntime, write: Callable[[Connection], T]) -> T | None:
    """Run one outcome transaction, again after a pause when the database is busy.

    The heartbeat keeps extending the lease meanwhile, so a lock held past the busy timeout
    costs time, not the attempt. Returns None when every try found the database busy; the
    lease then runs out and the reaper requeues the item.
    """
    delay = BUSY_RETRY_SECONDS
    deadline = time.monotonic() + runtime.lease_seconds
    while True:
        try:
            with runtime.db.begin() as connection:
                return write(connection)
        except Exception as exc:
            if not is_transient_database_error(exc) or time.monotonic() + delay > deadline:
                if is_transient_database_error(exc):
                    log.error("could not record an outcome, the database stayed busy: %s", exc)
                    return None
                raise
            log.warning("database busy or unreachable, outcome written again shortly: %s", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class _NotAllHeld(Exception):
    """Rolls back a grouped outcome write when one of its items is no longer held."""


def write_successes(runtime: QueueRuntime, done: Sequence[tuple[items.LeasedItem, Any]]) -> None:
    if not done:
        return
    if len(done) > 1:
        try:
            if write_outcome(runtime, partial(_finish_group, runtime, done=done)):
                _after_success(runtime, [item for item, _ in done])
            return
        except _NotAllHeld:
            pass  # one was cancelled or lost: write them one by one to see which
    for item, output in done:
        if write_outcome(runtime, partial(_finish_group, runtime, done=[(item, output)])):
            _after_success(runtime, [item])
            continue
        handler = runtime.handler(item.job_type)
        if not write_cancelled(runtime, handler, item):
            report_lost(item)


def _finish_group(
    runtime: QueueRuntime, connection: Connection, *, done: Sequence[tuple[items.LeasedItem, Any]]
) -> bool:
    """Complete every item of ``done`` and store its output, or nothing (returns False)."""
    leased = [item for item, _ in done]
    if not items.finish_all(connection, leased, ItemStatus.COMPLETED, utcnow()):
        if len(done) > 1:
            raise _NotAllHeld
        return False
    groups: dict[str, list[tuple[items.LeasedItem, Any]]] = {}
    for item, output in done:
        groups.setdefault(item.job_type, []).append((item, output))
    for job_type, group in groups.items():
        runtime.handler(job_type).succeeded(connection, group)
    return True


def _after_success(runtime: QueueRuntime, leased: Sequence[items.LeasedItem]) -> None:
    for _ in leased:
        runtime.activity.add("completed")
    settle(runtime, leased)


def settle(runtime: QueueRuntime, closed: Sequence[items.LeasedItem]) -> None:
    """Run the handlers' after-commit hook; a failure there is repaired by the sweeps."""
    for job_type, group in by_job_type(closed).items():
        try:
            runtime.handler(job_type).settled(group)
        except Exception:
            log.exception("after-outcome step failed for items %s", [i.id for i in group])


def report_lost(item: items.LeasedItem) -> None:
    log.warning("item %s: lease lost before the result was written; result discarded", item.id)


def write_cancelled(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem) -> bool:
    def write(connection: Connection) -> bool:
        if not items.finish_cancelled(connection, item, utcnow()):
            return False
        handler.cancelled(connection, item)
        return True

    if write_outcome(runtime, write):
        runtime.activity.add("cancelled")
        settle(runtime, [item])
        return True
    return False


def fail(
    runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, failure: Failure
) -> None:
    def write(connection: Connection) -> bool:
        if not items.finish(connection, item, ItemStatus.FAILED, utcnow(), error=failure.message):
            return False
        handler.failed(connection, item, failure)
        return True

    if write_outcome(runtime, write):
        runtime.activity.add("failed")
        settle(runtime, [item])
    else:
        report_lost(item)


def retry(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, error: str) -> None:
    def write(connection: Connection) -> Message | None:
        when = items.schedule_retry(connection, item, error, utcnow())
        if when is None:
            return None
        handler.requeued(connection, item, f"retrying at {when.isoformat()}: {error}")
        return Message(item.id, items.priority_of(connection, item.id), when)

    message = write_outcome(runtime, write)
    if message is None:
        report_lost(item)
        return
    runtime.activity.add("retried")
    runtime.dispatch([message])


def release(
    runtime: QueueRuntime,
    handler: JobHandler,
    item: items.LeasedItem,
    delay: float = 0.0,
    reason: str = "released by a stopping worker",
) -> None:
    """Give a held item back without counting the attempt, and send its message again."""

    def write(connection: Connection) -> Message | None:
        now = utcnow()
        if not items.release(connection, item, now):
            return None
        handler.requeued(connection, item, reason)
        eta = now + timedelta(seconds=delay) if delay else None
        return Message(item.id, items.priority_of(connection, item.id), eta)

    message = write_outcome(runtime, write)
    if message is not None:
        runtime.activity.add("released")
        runtime.dispatch([message])


def release_held(runtime: QueueRuntime) -> int:
    """Release every item this worker still holds (after a stop that timed out)."""
    with runtime.db.begin() as connection:
        rows = items.held_by_worker(connection, runtime.worker_id)
        messages = []
        for row in rows:
            view = items.leased_view(connection, row)
            if items.release(connection, view, utcnow()):
                runtime.handler(view.job_type).requeued(
                    connection, view, "released by a stopping worker"
                )
                messages.append(Message(row.id, row.priority))
    runtime.dispatch(messages)
    return len(messages)


def reclaim_expired(runtime: QueueRuntime) -> tuple[int, int]:
    """Requeue items whose lease expired (their worker died); fail those out of attempts.

    Returns (requeued, failed). Safe to run from several workers at once: every change is a
    conditional update on the expired lease.
    """
    now = utcnow()
    requeued: list[Message] = []
    failed = 0
    with runtime.db.begin() as connection:
        for row in items.expired_leases(connection, now):
            view = items.leased_view(connection, row)
            handler = runtime.handler(view.job_type)
            if view.attempts >= view.max_attempts:
                failure = Failure(
                    f"the worker processing this item stopped responding on every one of "
                    f"{view.attempts} attempts (lease expired)",
                    WORKER_LOST,
                )
                if items.finish(connection, view, ItemStatus.FAILED, now, error=failure.message):
                    handler.failed(connection, view, failure)
                    failed += 1
            # The crashed attempt still counts, so a document that kills workers ends.
            elif items.release(connection, view, now, count_attempt=True):
                handler.requeued(connection, view, "its worker stopped responding; requeued")
                requeued.append(Message(row.id, row.priority))
    runtime.dispatch(requeued)
    if requeued or failed:
        log.warning("reclaimed expired leases: %s requeued, %s failed", len(requeued), failed)
    return len(requeued), failed
