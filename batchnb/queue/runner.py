"""Running one queue message: lease, run the job's handler, record the outcome.

A Huey message means "an item of this queue may be ready". The runner leases the best ready
items (so priority is decided by the database, whatever the transport), runs the handler for
each outside any transaction, and has :mod:`batchnb.queue.outcomes` write what became of them
in transactions that only commit while the lease is still held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.orm import aliased

from batchnb.db.engine import is_transient_database_error
from batchnb.db.models import QueueItem, UTCDateTime, utcnow
from batchnb.errors import CancelledError, LeaseLostError, is_permanent
from batchnb.queue import items, leasing
from batchnb.queue.messages import Message
from batchnb.queue.outcomes import (
    BUSY_RETRY_SECONDS,
    fail,
    release,
    retry,
    write_cancelled,
    write_successes,
)
from batchnb.queue.runtime import (
    LEASE_TARGET_SECONDS,
    Failure,
    QueueRuntime,
    WorkerStoppingError,
    by_job_type,
)

log = logging.getLogger(__name__)

BLOCKED_RETRY_SECONDS = 1.0
CHECKPOINT_INTERVAL_SECONDS = 1.0
INACTIVE_RETRY_SECONDS = 30.0
OUTCOME_FLUSH_SECONDS = 0.2
"""Longest a success waits to be written together with the next ones of its lease."""
GROUP_LATE_SECONDS = 2 * LEASE_TARGET_SECONDS
"""A group of items leased together that runs longer than this gives the rest back."""
"""Longest a success waits to be written together with the next ones of its lease."""

_DUE = aliased(QueueItem)
# The hinted item, and whether its queue has any item due: one read, no write lock.
_HINTED_ITEM = select(
    QueueItem.queue_name,
    QueueItem.status,
    QueueItem.priority,
    QueueItem.scheduled_at,
    select(_DUE.id)
    .where(
        _DUE.queue_name == QueueItem.queue_name,
        text("queue_items_1.status IN ('pending', 'retrying')"),
        _DUE.scheduled_at <= bindparam("now", type_=UTCDateTime()),
    )
    .exists()
    .label("any_due"),
).where(QueueItem.id == bindparam("item_id"))


def run_message(runtime: QueueRuntime, item_id: int) -> None:
    """Handle one Huey message for ``item_id`` (the Huey task body).

    A database that is busy (SQLite's write lock held past the busy timeout, a PostgreSQL lock
    timeout) or briefly unreachable costs neither the message nor an attempt: nothing was
    leased, so the message is sent again a moment later.
    """
    try:
        leased = _lease_for(runtime, item_id)
    except Exception as exc:
        if not is_transient_database_error(exc):
            raise
        log.warning("item %s: database busy or unreachable, message sent again: %s", item_id, exc)
        runtime.dispatch([Message(item_id, 0, utcnow() + timedelta(seconds=BUSY_RETRY_SECONDS))])
        return
    if leased:
        run_leased(runtime, leased)


def _lease_for(runtime: QueueRuntime, item_id: int) -> list[items.LeasedItem]:
    """Lease what a message for ``item_id`` entitles to: the queue's best ready items."""
    now = utcnow()
    with runtime.db.connect() as connection:
        hinted = connection.execute(_HINTED_ITEM, {"item_id": item_id, "now": now}).one_or_none()
    if hinted is None:
        return []
    # Read first, without the write lock: most messages of quick items find their item
    # already leased by a thread that took several at once.
    if not hinted.any_due:
        if hinted.status in items.READY_STATUSES and hinted.scheduled_at > now:
            # The message came before its item is due (a retry's backoff): wait for it.
            runtime.dispatch([Message(item_id, hinted.priority, hinted.scheduled_at)])
        return []
    resend: Message | None = None
    with runtime.db.begin() as connection:
        leased = leasing.lease(
            connection,
            hinted.queue_name,
            runtime.new_token(),
            runtime.lease_seconds,
            count=runtime.lease_sizer.count(hinted.queue_name),
        )
        if isinstance(leased, leasing.LeaseRefusal):
            # The queue is full or paused: keep the message alive and try again shortly.
            delay = (
                BLOCKED_RETRY_SECONDS
                if leased is leasing.LeaseRefusal.AT_CONCURRENCY_LIMIT
                else INACTIVE_RETRY_SECONDS
            )
            resend = Message(item_id, hinted.priority, utcnow() + timedelta(seconds=delay))
            leased = []
        for job_type, group in by_job_type(leased).items():
            runtime.handler(job_type).started(connection, group)
    if resend is not None:
        runtime.dispatch([resend])
    if leased:
        with runtime.db.connect() as connection:
            over = leasing.over_limit(connection, leased)
        if over:
            # PostgreSQL only: racing leasers took the queue past its limit; give these back.
            for item in leased:
                handler = runtime.handler(item.job_type)
                release(runtime, handler, item, BLOCKED_RETRY_SECONDS, "queue at its limit")
            return []
    return leased


def run_leased(runtime: QueueRuntime, leased: Sequence[items.LeasedItem]) -> None:
    """Run leased items one after the other; write their successes in groups.

    Successes wait at most :data:`OUTCOME_FLUSH_SECONDS` to be written together. Once the
    group has run for :data:`GROUP_LATE_SECONDS`, a timer writes the successes so far and
    gives the items not started yet back to the queue, while the current item still runs: one
    long document never holds back quick ones, nor their results. Items not started also go
    back when the worker stops.
    """
    group = _Group(runtime, leased)
    timer = None
    if len(leased) > 1:
        timer = threading.Timer(GROUP_LATE_SECONDS, group.cut, ("left for other workers",))
        timer.daemon = True
        timer.start()
    try:
        while (item := group.take()) is not None:
            started = time.monotonic()
            ok, output = _run_one(runtime, item)
            runtime.lease_sizer.record(item.queue_name, time.monotonic() - started)
            if ok:
                group.succeeded(item, output)
            if runtime.stop_event.is_set():
                group.cut("released by a stopping worker")
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()  # a cut under way finishes first
        group.flush()


class _Group:
    """One lease's items: those not started yet, and successes not written yet.

    The running thread takes items and adds successes; :meth:`cut` (that thread's, or the
    group timer's) writes the successes and gives back the items not started. A lock keeps
    every item either run or given back, and every success written once.
    """

    def __init__(self, runtime: QueueRuntime, leased: Sequence[items.LeasedItem]) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._waiting = list(leased)
        self._done: list[tuple[items.LeasedItem, Any]] = []
        self._first_done = 0.0

    def take(self) -> items.LeasedItem | None:
        with self._lock:
            return self._waiting.pop(0) if self._waiting else None

    def succeeded(self, item: items.LeasedItem, output: Any) -> None:
        with self._lock:
            if not self._done:
                self._first_done = time.monotonic()
            self._done.append((item, output))
            due = time.monotonic() - self._first_done >= OUTCOME_FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the successes so far (in one transaction per job type's tables)."""
        with self._lock:
            done, self._done = self._done, []
        write_successes(self.runtime, done)

    def cut(self, reason: str) -> None:
        """Write the successes so far and give back the items not started."""
        with self._lock:
            rest, self._waiting = self._waiting, []
        self.flush()
        for item in rest:
            release(self.runtime, self.runtime.handler(item.job_type), item, reason=reason)


def _run_one(runtime: QueueRuntime, item: items.LeasedItem) -> tuple[bool, Any]:
    """Run one item's handler; record any outcome but success. Returns (succeeded, output)."""
    handler = runtime.handler(item.job_type)
    last_check = time.monotonic()

    def checkpoint() -> None:
        nonlocal last_check
        if runtime.stop_event.is_set():
            raise WorkerStoppingError("worker is stopping")
        # Cancelling is rare and a second's delay is invisible; a query per step is not free.
        if time.monotonic() - last_check >= CHECKPOINT_INTERVAL_SECONDS:
            last_check = time.monotonic()
            with runtime.db.connect() as connection:
                items.check_lease(connection, item)

    try:
        return True, handler.run(item, checkpoint)
    except WorkerStoppingError:
        release(runtime, handler, item)
    except CancelledError:
        write_cancelled(runtime, handler, item)
    except LeaseLostError:
        log.warning("item %s: lease lost while running; another worker owns it now", item.id)
    except Exception as exc:
        if is_permanent(exc):
            # The document itself, the set-up (an unknown extractor, a missing program or
            # setting) or what an export asks for will not change by trying again: fail now.
            fail(runtime, handler, item, Failure.of(exc))
        elif item.attempts >= item.max_attempts:
            log.warning("item %s failed on its last attempt: %s", item.id, exc, exc_info=exc)
            fail(runtime, handler, item, Failure.of(exc, item.attempts))
        else:
            log.warning("item %s attempt %s failed: %s", item.id, item.attempts, exc)
            retry(runtime, handler, item, f"{type(exc).__name__}: {exc}")
    return False, None


def record_heartbeat(runtime: QueueRuntime, touch: Callable[[Connection, datetime], None]) -> int:
    """Extend this worker's leases and record it alive, in one short transaction."""
    now = utcnow()
    with runtime.db.begin() as connection:
        touch(connection, now)
        return items.extend_leases(connection, runtime.worker_id, runtime.lease_seconds, now)
