"""Running one queue message: lease, run the job's handler, record the outcome.

A Huey message means "an item of this queue may be ready". The runner leases the best ready
item (so priority is decided by the database, whatever the transport), runs the handler for
its job type outside any transaction, and then writes the outcome and the handler's result in
one transaction that only commits while the lease is still held.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from huey import Huey
from sqlalchemy import Connection, bindparam, select

from batchnb.db.engine import Database
from batchnb.db.models import QueueItem, utcnow
from batchnb.db.statuses import ItemStatus
from batchnb.errors import (
    WORKER_LOST,
    CancelledError,
    LeaseLostError,
    error_kind,
    is_permanent,
)
from batchnb.queue import items
from batchnb.queue.messages import Message
from batchnb.queue.transport import send_messages

log = logging.getLogger(__name__)

BLOCKED_RETRY_SECONDS = 1.0
CHECKPOINT_INTERVAL_SECONDS = 1.0
INACTIVE_RETRY_SECONDS = 30.0
TRACEBACK_FRAMES = 8
"""Frames kept of a failure's traceback (the innermost ones: where it went wrong)."""


_HINTED_ITEM = select(
    QueueItem.queue_name, QueueItem.status, QueueItem.priority, QueueItem.scheduled_at
).where(QueueItem.id == bindparam("item_id"))


class WorkerStoppingError(Exception):
    """Raised at a checkpoint when the worker is shutting down: the item is released."""


Checkpoint = Callable[[], None]


@dataclass(frozen=True)
class Failure:
    """Why an item failed for good: the message users read, its kind, and where it happened."""

    message: str
    kind: str
    traceback: str | None = None

    @classmethod
    def of(cls, exc: BaseException, attempts: int | None = None) -> Failure:
        """The failure of ``exc``; ``attempts`` is said when retries were used up."""
        message = str(exc) if is_permanent(exc) else f"{type(exc).__name__}: {exc}"
        if attempts is not None:
            message = f"{message} (after {attempts} attempts)"
        frames = traceback.format_exception(exc, limit=-TRACEBACK_FRAMES)
        return cls(message, error_kind(exc), "".join(frames).rstrip())


class JobHandler(Protocol):
    """What a job type does. The hooks taking a connection run inside the outcome transaction."""

    def started(self, connection: Connection, item: items.LeasedItem) -> None:
        """The item was leased (same transaction as the lease)."""

    def run(self, item: items.LeasedItem, checkpoint: Checkpoint) -> Any:
        """Do the work, holding no database connection; call ``checkpoint()`` between steps."""

    def succeeded(self, connection: Connection, item: items.LeasedItem, output: Any) -> None:
        """Store the output; runs only while the lease is held, so at most once."""

    def failed(self, connection: Connection, item: items.LeasedItem, failure: Failure) -> None:
        """The item failed for good (permanent error or attempts used up)."""

    def requeued(self, connection: Connection, item: items.LeasedItem, reason: str) -> None:
        """The item goes back to waiting (retry, graceful stop, or reaped after a crash)."""

    def cancelled(self, connection: Connection, item: items.LeasedItem) -> None:
        """The item was cancelled while it ran."""


class Activity:
    """What this process's runner did to items since the last :meth:`take`: a thread-safe tally.

    Outcomes: ``completed``, ``failed``, ``cancelled``, ``retried``, ``released``.
    """

    OUTCOMES = ("completed", "failed", "cancelled", "retried", "released")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.OUTCOMES, 0)

    def add(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero."""
        with self._lock:
            counts, self._counts = self._counts, dict.fromkeys(self.OUTCOMES, 0)
        return counts


@dataclass
class QueueRuntime:
    """Everything a producer or worker needs: database, transport, handlers, identity."""

    db: Database
    huey: Huey
    lease_seconds: float
    handlers: Mapping[str, JobHandler]
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    stop_event: threading.Event = field(default_factory=threading.Event)
    process_task: Any = None
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    activity: Activity = field(default_factory=Activity)
    """Called when a worker of this runtime stops (e.g. closing the extractors it built)."""

    def new_token(self) -> str:
        """A lease token: this worker's id plus a random part, unique per lease."""
        return f"{self.worker_id}#{uuid.uuid4().hex[:10]}"

    def dispatch(self, messages: Sequence[Message]) -> None:
        """Send the messages of committed items through Huey (call after the commit)."""
        tasks = []
        for message in messages:
            task = self.process_task.s(message.item_id)
            task.priority = message.priority
            # Huey compares etas with naive UTC timestamps.
            eta = message.eta
            task.eta = None if eta is None else eta.astimezone(UTC).replace(tzinfo=None)
            tasks.append(task)
        send_messages(self.huey, tasks)


def run_message(runtime: QueueRuntime, item_id: int) -> None:
    """Handle one Huey message for ``item_id`` (the Huey task body)."""
    resend: Message | None = None
    with runtime.db.begin() as connection:
        hinted = connection.execute(_HINTED_ITEM, {"item_id": item_id}).one_or_none()
        if hinted is None:
            return
        leased = items.lease_next(
            connection, hinted.queue_name, runtime.new_token(), runtime.lease_seconds
        )
        now = utcnow()
        if isinstance(leased, items.LeasedItem):
            _handler(runtime, leased.job_type).started(connection, leased)
        elif isinstance(leased, items.LeaseRefusal):
            # The queue is full or paused: keep the message alive and try again shortly.
            delay = (
                BLOCKED_RETRY_SECONDS
                if leased is items.LeaseRefusal.AT_CONCURRENCY_LIMIT
                else INACTIVE_RETRY_SECONDS
            )
            resend = Message(item_id, hinted.priority, now + timedelta(seconds=delay))
        elif hinted.status in items.READY_STATUSES and hinted.scheduled_at > now:
            # The message came before its item is due (a retry's backoff): wait for it.
            resend = Message(item_id, hinted.priority, hinted.scheduled_at)
    if resend is not None:
        runtime.dispatch([resend])
    if isinstance(leased, items.LeasedItem):
        _run_leased(runtime, leased)


def _handler(runtime: QueueRuntime, job_type: str) -> JobHandler:
    try:
        return runtime.handlers[job_type]
    except KeyError:
        raise LookupError(
            f"no handler for job type {job_type!r}; known: {sorted(runtime.handlers)}"
        ) from None


def _run_leased(runtime: QueueRuntime, item: items.LeasedItem) -> None:
    handler = _handler(runtime, item.job_type)
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
        output = handler.run(item, checkpoint)
    except WorkerStoppingError:
        _release(runtime, handler, item)
    except CancelledError:
        with runtime.db.begin() as connection:
            if items.finish_cancelled(connection, item, utcnow()):
                handler.cancelled(connection, item)
                runtime.activity.add("cancelled")
    except LeaseLostError:
        log.warning("item %s: lease lost while running; another worker owns it now", item.id)
    except Exception as exc:
        if is_permanent(exc):
            # The document itself, the set-up (an unknown extractor, a missing program or
            # setting) or what an export asks for will not change by trying again: fail now.
            _fail(runtime, handler, item, Failure.of(exc))
        elif item.attempts >= item.max_attempts:
            log.warning("item %s failed on its last attempt: %s", item.id, exc, exc_info=exc)
            _fail(runtime, handler, item, Failure.of(exc, item.attempts))
        else:
            log.warning("item %s attempt %s failed: %s", item.id, item.attempts, exc)
            _retry(runtime, handler, item, f"{type(exc).__name__}: {exc}")
    else:
        with runtime.db.begin() as connection:
            if items.finish(connection, item, ItemStatus.COMPLETED, utcnow()):
                handler.succeeded(connection, item, output)
                runtime.activity.add("completed")
                return
        _report_lost(item)


def _report_lost(item: items.LeasedItem) -> None:
    log.warning("item %s: lease lost before the result was written; result discarded", item.id)


def _fail(
    runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, failure: Failure
) -> None:
    with runtime.db.begin() as connection:
        if items.finish(connection, item, ItemStatus.FAILED, utcnow(), error=failure.message):
            handler.failed(connection, item, failure)
            runtime.activity.add("failed")
            return
    _report_lost(item)


def _retry(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, error: str) -> None:
    with runtime.db.begin() as connection:
        when = items.schedule_retry(connection, item, error, utcnow())
        if when is None:
            _report_lost(item)
            return
        handler.requeued(connection, item, f"retrying at {when.isoformat()}: {error}")
        message = Message(item.id, items.priority_of(connection, item.id), when)
    runtime.activity.add("retried")
    runtime.dispatch([message])


def _release(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem) -> None:
    with runtime.db.begin() as connection:
        if not items.release(connection, item, utcnow()):
            return
        handler.requeued(connection, item, "released by a stopping worker")
        message = Message(item.id, items.priority_of(connection, item.id))
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
                _handler(runtime, view.job_type).requeued(
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
            handler = _handler(runtime, view.job_type)
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


def redispatch_stranded(runtime: QueueRuntime) -> int:
    """Send messages for waiting items that have none; returns how many were sent.

    Huey deletes a message when a worker takes it, so a worker killed after taking a message
    but before leasing an item loses that message, and its item would wait forever. Every
    waiting item should be matched by a queued message; where the queue holds fewer messages
    than there are waiting items, the difference is sent again for the items a worker would
    take first. Messages running in live workers are not counted, so a few extra may go out;
    an extra message finds nothing to lease and costs one query.
    """
    huey = runtime.huey
    with runtime.db.connect() as connection:
        waiting = items.count_ready(connection)
        queued = huey.pending_count() + huey.scheduled_count()
        missing = waiting - queued
        if missing <= 0:
            return 0
        stranded = items.oldest_ready(connection, missing, utcnow())
    runtime.dispatch(stranded)
    log.warning("sent %s messages for waiting items that had none", len(stranded))
    return len(stranded)


def record_heartbeat(runtime: QueueRuntime, touch: Callable[[Connection, datetime], None]) -> int:
    """Extend this worker's leases and record it alive, in one short transaction."""
    now = utcnow()
    with runtime.db.begin() as connection:
        touch(connection, now)
        return items.extend_leases(connection, runtime.worker_id, runtime.lease_seconds, now)
