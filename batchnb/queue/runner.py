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
from functools import partial
from typing import Any, Protocol, TypeVar

from huey import Huey
from sqlalchemy import Connection, bindparam, select

from batchnb.db.engine import Database, is_transient_database_error
from batchnb.db.models import QueueItem, UTCDateTime, utcnow
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
BUSY_RETRY_SECONDS = 0.5
"""Pause before a message or an outcome write is tried again after the database was busy."""
CHECKPOINT_INTERVAL_SECONDS = 1.0
INACTIVE_RETRY_SECONDS = 30.0
LEASE_TARGET_SECONDS = 0.2
"""Work one lease may take on at once: quick items are leased several per transaction, so
the database's per-transaction cost is shared (see :class:`LeaseSizer`)."""
MAX_LEASE_COUNT = 16
OUTCOME_FLUSH_SECONDS = 0.2
"""Longest a success waits to be written together with the next ones of its lease."""
TRACEBACK_FRAMES = 8
"""Frames kept of a failure's traceback (the innermost ones: where it went wrong)."""


_HINTED_ITEM = select(
    QueueItem.queue_name, QueueItem.status, QueueItem.priority, QueueItem.scheduled_at
).where(QueueItem.id == bindparam("item_id"))
_ANY_DUE = (
    select(QueueItem.id)
    .where(
        QueueItem.queue_name == bindparam("queue"),
        items.READY_CONDITION,
        QueueItem.scheduled_at <= bindparam("now", type_=UTCDateTime()),
    )
    .limit(1)
)

T = TypeVar("T")


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
    """What a job type does. The hooks taking a connection run inside the outcome transaction.

    Items are leased and their outcomes written several at a time when they are quick (see
    :class:`LeaseSizer`), so ``started`` and ``succeeded`` take a group of items.
    """

    def started(self, connection: Connection, leased: Sequence[items.LeasedItem]) -> None:
        """The items were leased (same transaction as the lease)."""

    def run(self, item: items.LeasedItem, checkpoint: Checkpoint) -> Any:
        """Do the work, holding no database connection; call ``checkpoint()`` between steps."""

    def succeeded(
        self, connection: Connection, done: Sequence[tuple[items.LeasedItem, Any]]
    ) -> None:
        """Store the outputs; runs only while the leases are held, so at most once each."""

    def failed(self, connection: Connection, item: items.LeasedItem, failure: Failure) -> None:
        """The item failed for good (permanent error or attempts used up)."""

    def requeued(self, connection: Connection, item: items.LeasedItem, reason: str) -> None:
        """The item goes back to waiting (retry, graceful stop, or reaped after a crash)."""

    def cancelled(self, connection: Connection, item: items.LeasedItem) -> None:
        """The item was cancelled while it ran."""

    def settled(self, closed: Sequence[items.LeasedItem]) -> None:
        """The items' final outcomes have committed (runs outside any transaction): e.g. close
        a batch whose last document this was. Must be idempotent and safe to skip: a worker
        that dies before it runs leaves the repair to ``QueueRuntime.sweeps``."""


class LeaseSizer:
    """How many items a thread leases at once, per queue: enough for about
    :data:`LEASE_TARGET_SECONDS` of work at the recent run time of the queue's items.

    Quick items (tiny documents, cached results) are leased up to :data:`MAX_LEASE_COUNT`
    at a time; items taking a tenth of a second or more, one at a time, so a slow document
    never keeps others from idle workers. Thread-safe; one per runtime.
    """

    SMOOTHING = 0.3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}

    def count(self, queue_name: str) -> int:
        with self._lock:
            seconds = self._seconds.get(queue_name)
        if seconds is None:
            return 1
        return max(1, min(MAX_LEASE_COUNT, int(LEASE_TARGET_SECONDS / max(seconds, 1e-4))))

    def record(self, queue_name: str, seconds: float) -> None:
        with self._lock:
            before = self._seconds.get(queue_name, seconds)
            self._seconds[queue_name] = before + self.SMOOTHING * (seconds - before)


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
    """Called when a worker of this runtime stops (e.g. closing the extractors it built)."""
    activity: Activity = field(default_factory=Activity)
    lease_sizer: LeaseSizer = field(default_factory=LeaseSizer)
    sweeps: list[Callable[[], int]] = field(default_factory=list)
    """Repairs run with the reaper, one worker at a time (e.g. closing a batch whose last
    document's worker died between writing the outcome and closing the batch); each returns
    how many things it repaired."""

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
        _run_leased(runtime, leased)


def _lease_for(runtime: QueueRuntime, item_id: int) -> list[items.LeasedItem]:
    """Lease what a message for ``item_id`` entitles to: the queue's best ready items."""
    with runtime.db.connect() as connection:
        hinted = connection.execute(_HINTED_ITEM, {"item_id": item_id}).one_or_none()
        if hinted is None:
            return []
        now = utcnow()
        # Read first, without the write lock: most messages of quick items find their item
        # already leased by a thread that took several at once.
        if connection.execute(_ANY_DUE, {"queue": hinted.queue_name, "now": now}).first() is None:
            if hinted.status in items.READY_STATUSES and hinted.scheduled_at > now:
                # The message came before its item is due (a retry's backoff): wait for it.
                runtime.dispatch([Message(item_id, hinted.priority, hinted.scheduled_at)])
            return []
    resend: Message | None = None
    with runtime.db.begin() as connection:
        leased = items.lease(
            connection,
            hinted.queue_name,
            runtime.new_token(),
            runtime.lease_seconds,
            count=runtime.lease_sizer.count(hinted.queue_name),
        )
        if isinstance(leased, items.LeaseRefusal):
            # The queue is full or paused: keep the message alive and try again shortly.
            delay = (
                BLOCKED_RETRY_SECONDS
                if leased is items.LeaseRefusal.AT_CONCURRENCY_LIMIT
                else INACTIVE_RETRY_SECONDS
            )
            resend = Message(item_id, hinted.priority, utcnow() + timedelta(seconds=delay))
            leased = []
        for job_type, group in _by_job_type(leased).items():
            _handler(runtime, job_type).started(connection, group)
    if resend is not None:
        runtime.dispatch([resend])
    if leased:
        with runtime.db.connect() as connection:
            over = items.over_limit(connection, leased)
        if over:
            # PostgreSQL only: racing leasers took the queue past its limit; give these back.
            for item in leased:
                handler = _handler(runtime, item.job_type)
                _release(runtime, handler, item, BLOCKED_RETRY_SECONDS, "queue at its limit")
            return []
    return leased


def _by_job_type(leased: Sequence[items.LeasedItem]) -> dict[str, list[items.LeasedItem]]:
    groups: dict[str, list[items.LeasedItem]] = {}
    for item in leased:
        groups.setdefault(item.job_type, []).append(item)
    return groups


def _handler(runtime: QueueRuntime, job_type: str) -> JobHandler:
    try:
        return runtime.handlers[job_type]
    except KeyError:
        raise LookupError(
            f"no handler for job type {job_type!r}; known: {sorted(runtime.handlers)}"
        ) from None


def _run_leased(runtime: QueueRuntime, leased: Sequence[items.LeasedItem]) -> None:
    """Run leased items one after the other; write their successes in groups.

    Successes wait at most :data:`OUTCOME_FLUSH_SECONDS` to be written together. Items not
    started yet go back to the queue when the worker stops or when the group turns out slower
    than its size assumed (one long document must not hold quick ones back).
    """
    done: list[tuple[items.LeasedItem, Any]] = []
    first_done = 0.0
    began = time.monotonic()
    for index, item in enumerate(leased):
        late = time.monotonic() - began > 2 * LEASE_TARGET_SECONDS
        if index and (runtime.stop_event.is_set() or late):
            _write_successes(runtime, done)
            reason = "released by a stopping worker" if not late else "left for other workers"
            for rest in leased[index:]:
                _release(runtime, _handler(runtime, rest.job_type), rest, reason=reason)
            return
        started = time.monotonic()
        ok, output = _run_one(runtime, item)
        runtime.lease_sizer.record(item.queue_name, time.monotonic() - started)
        if ok:
            if not done:
                first_done = time.monotonic()
            done.append((item, output))
        if done and time.monotonic() - first_done >= OUTCOME_FLUSH_SECONDS:
            _write_successes(runtime, done)
            done = []
    _write_successes(runtime, done)


def _run_one(runtime: QueueRuntime, item: items.LeasedItem) -> tuple[bool, Any]:
    """Run one item's handler; record any outcome but success. Returns (succeeded, output)."""
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
        return True, handler.run(item, checkpoint)
    except WorkerStoppingError:
        _release(runtime, handler, item)
    except CancelledError:
        _write_cancelled(runtime, handler, item)
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
    return False, None


def _write(runtime: QueueRuntime, write: Callable[[Connection], T]) -> T | None:
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


def _write_successes(runtime: QueueRuntime, done: Sequence[tuple[items.LeasedItem, Any]]) -> None:
    if not done:
        return
    if len(done) > 1:
        try:
            if _write(runtime, partial(_finish_group, runtime, done=done)):
                _after_success(runtime, [item for item, _ in done])
            return
        except _NotAllHeld:
            pass  # one was cancelled or lost: write them one by one to see which
    for item, output in done:
        if _write(runtime, partial(_finish_group, runtime, done=[(item, output)])):
            _after_success(runtime, [item])
            continue
        handler = _handler(runtime, item.job_type)
        if not _write_cancelled(runtime, handler, item):
            _report_lost(item)


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
        _handler(runtime, job_type).succeeded(connection, group)
    return True


def _after_success(runtime: QueueRuntime, leased: Sequence[items.LeasedItem]) -> None:
    for _ in leased:
        runtime.activity.add("completed")
    _settle(runtime, leased)


def _settle(runtime: QueueRuntime, closed: Sequence[items.LeasedItem]) -> None:
    """Run the handlers' after-commit hook; a failure there is repaired by the sweeps."""
    for job_type, group in _by_job_type(closed).items():
        try:
            _handler(runtime, job_type).settled(group)
        except Exception:
            log.exception("after-outcome step failed for items %s", [i.id for i in group])


def _report_lost(item: items.LeasedItem) -> None:
    log.warning("item %s: lease lost before the result was written; result discarded", item.id)


def _write_cancelled(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem) -> bool:
    def write(connection: Connection) -> bool:
        if not items.finish_cancelled(connection, item, utcnow()):
            return False
        handler.cancelled(connection, item)
        return True

    if _write(runtime, write):
        runtime.activity.add("cancelled")
        _settle(runtime, [item])
        return True
    return False


def _fail(
    runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, failure: Failure
) -> None:
    def write(connection: Connection) -> bool:
        if not items.finish(connection, item, ItemStatus.FAILED, utcnow(), error=failure.message):
            return False
        handler.failed(connection, item, failure)
        return True

    if _write(runtime, write):
        runtime.activity.add("failed")
        _settle(runtime, [item])
    else:
        _report_lost(item)


def _retry(runtime: QueueRuntime, handler: JobHandler, item: items.LeasedItem, error: str) -> None:
    def write(connection: Connection) -> Message | None:
        when = items.schedule_retry(connection, item, error, utcnow())
        if when is None:
            return None
        handler.requeued(connection, item, f"retrying at {when.isoformat()}: {error}")
        return Message(item.id, items.priority_of(connection, item.id), when)

    message = _write(runtime, write)
    if message is None:
        _report_lost(item)
        return
    runtime.activity.add("retried")
    runtime.dispatch([message])


def _release(
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

    message = _write(runtime, write)
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


def record_heartbeat(runtime: QueueRuntime, touch: Callable[[Connection, datetime], None]) -> int:
    """Extend this worker's leases and record it alive, in one short transaction."""
    now = utcnow()
    with runtime.db.begin() as connection:
        touch(connection, now)
        return items.extend_leases(connection, runtime.worker_id, runtime.lease_seconds, now)
