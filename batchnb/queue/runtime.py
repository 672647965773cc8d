"""What the queue's parts share: the runtime (database, transport, handlers, identity), the job
handler protocol, failures, and the per-worker state (activity tally, lease sizing)."""

from __future__ import annotations

import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

from huey import Huey
from sqlalchemy import Connection

from batchnb.db.engine import Database
from batchnb.errors import error_kind, is_permanent
from batchnb.queue import items
from batchnb.queue.messages import Message
from batchnb.queue.transport import send_messages

LEASE_TARGET_SECONDS = 0.2
"""Work one lease may take on at once: quick items are leased several per transaction, so
the database's per-transaction cost is shared (see :class:`LeaseSizer`)."""
MAX_LEASE_COUNT = 16
TRACEBACK_FRAMES = 8
"""Frames kept of a failure's traceback (the innermost ones: where it went wrong)."""


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

    def handler(self, job_type: str) -> JobHandler:
        """The handler of a job type."""
        try:
            return self.handlers[job_type]
        except KeyError:
            raise LookupError(
                f"no handler for job type {job_type!r}; known: {sorted(self.handlers)}"
            ) from None

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


def by_job_type(leased: Sequence[items.LeasedItem]) -> dict[str, list[items.LeasedItem]]:
    """Items grouped by job type, in their order."""
    groups: dict[str, list[items.LeasedItem]] = {}
    for item in leased:
        groups.setdefault(item.job_type, []).append(item)
    return groups
