"""A real queue runtime per test: migrated database, real Huey storage, a test job type.

The job type ``probe`` is the test's own work (not a stand-in for batchnb's database or
queue): it records what ran in ``audit_events`` so tests can count exactly-once in the
database, and its payload says how to behave (sleep, fail N times, fail permanently).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, update

from batchnb.db.engine import Database
from batchnb.db.migrate import ensure_current
from batchnb.db.models import ProcessingQueue, utcnow
from batchnb.errors import DocumentError
from batchnb.queue import items
from batchnb.queue.messages import Payload
from batchnb.queue.runtime import Checkpoint, Failure, QueueRuntime
from batchnb.queue.tasks import register_tasks
from batchnb.queue.transport import create_huey
from batchnb.queue.worker import Worker
from batchnb.services.audit import record_event

QUEUE = "batch_processing"


@dataclass(frozen=True)
class Probe(Payload):
    """How a probe item behaves: sleep, fail the first attempts, fail for good, return a value."""

    job_type = "probe"
    queue = QUEUE

    sleep: float = 0
    fail_times: int = 0
    permanent: bool = False
    value: Any = None


@dataclass
class ProbeHandler:
    """Behaves as its payload says and remembers what happened, in order."""

    calls: list[tuple[int, int, float]] = field(default_factory=list)
    events: list[tuple[str, int]] = field(default_factory=list)
    failures: dict[int, Failure] = field(default_factory=dict)
    running: int = 0
    max_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, connection: Connection, leased: Sequence[items.LeasedItem]) -> None:
        self.events.extend(("started", item.id) for item in leased)

    def run(self, item: items.LeasedItem, checkpoint: Checkpoint) -> Any:
        with self.lock:
            self.calls.append((item.id, item.attempts, time.monotonic()))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            payload = item.payload_as(Probe)
            deadline = time.monotonic() + payload.sleep
            while time.monotonic() < deadline:
                checkpoint()
                time.sleep(0.02)
            checkpoint()
            if payload.permanent:
                raise DocumentError("probe: this document can never work")
            if item.attempts <= payload.fail_times:
                raise RuntimeError(f"probe: transient failure {item.attempts}")
            return {"value": payload.value}
        finally:
            with self.lock:
                self.running -= 1

    def succeeded(
        self, connection: Connection, done: Sequence[tuple[items.LeasedItem, Any]]
    ) -> None:
        for item, output in done:
            record_event(connection, "probe", "done", "queue_item", item.id, output)
            self.events.append(("succeeded", item.id))

    def failed(self, connection: Connection, item: items.LeasedItem, failure: Failure) -> None:
        self.failures[item.id] = failure
        self.events.append(("failed", item.id))

    def requeued(self, connection: Connection, item: items.LeasedItem, reason: str) -> None:
        self.events.append(("requeued", item.id))

    def cancelled(self, connection: Connection, item: items.LeasedItem) -> None:
        self.events.append(("cancelled", item.id))

    def settled(self, closed: Sequence[items.LeasedItem]) -> None:
        self.events.extend(("settled", item.id) for item in closed)


@dataclass
class QueueHarness:
    runtime: QueueRuntime
    handler: ProbeHandler
    workers: list[Worker] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.runtime.db

    def add(
        self, payload: dict[str, Any] | None = None, *, priority: int = 0, send: bool = True
    ) -> int:
        with self.db.begin() as connection:
            (message,) = items.enqueue(
                connection,
                [Probe(**(payload or {}))],
                owner="tester",
                now=utcnow(),
                priority=priority,
            )
        if send:
            self.runtime.dispatch([message])
        return message.item_id

    def configure_queue(self, **values: Any) -> None:
        with self.db.write() as session:
            session.execute(
                update(ProcessingQueue).where(ProcessingQueue.name == QUEUE).values(**values)
            )

    def start_worker(self, threads: int = 1) -> Worker:
        worker = Worker(
            self.runtime,
            threads=threads,
            heartbeat_seconds=0.5,
            periodic=False,
            in_process=True,
            shutdown_timeout=5,
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def item(self, item_id: int) -> Any:
        from batchnb.db.models import QueueItem

        with self.db.read() as session:
            return session.get(QueueItem, item_id)

    def wait_final(self, item_ids: list[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.item(i).status in ("completed", "failed", "cancelled") for i in item_ids):
                return
            time.sleep(0.05)
        states = {i: self.item(i).status for i in item_ids}
        raise AssertionError(f"items not final after {timeout}s: {states}")


@pytest.fixture(params=["sqlite", "redis"])
def transport_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    redis_url = request.getfixturevalue("redis_url")
    return f"{redis_url}?huey_name=batchnb-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'batchnb.db'}")
    ensure_current(db)
    yield db
    db.dispose()


def make_harness(db: Database, queue_url: str, lease_seconds: float = 5.0) -> QueueHarness:
    handler = ProbeHandler()
    runtime = QueueRuntime(
        db=db,
        huey=create_huey(queue_url),
        lease_seconds=lease_seconds,
        handlers={"probe": handler},
    )
    register_tasks(runtime, [Path("/nonexistent-temp")], 24.0)
    return QueueHarness(runtime, handler)


@pytest.fixture
def harness(database: Database, transport_url: str) -> Iterator[QueueHarness]:
    h = make_harness(database, transport_url)
    yield h
    for worker in h.workers:
        worker.stop()
    h.runtime.huey.flush()


@pytest.fixture
def postgres_harness(postgres_url: str, tmp_path: Path) -> Iterator[QueueHarness]:
    """The same harness on a real PostgreSQL database (SqliteHuey as transport)."""
    db = Database(postgres_url)
    ensure_current(db)
    h = make_harness(db, f"sqlite:///{tmp_path / 'queue.db'}")
    yield h
    for worker in h.workers:
        worker.stop()
    db.dispose()
