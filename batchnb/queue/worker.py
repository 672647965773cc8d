"""A worker: a Huey consumer plus heartbeats, lease extension, recovery and a graceful stop.

``Worker.run()`` is what ``batchnb worker`` runs: it owns the process's SIGINT/SIGTERM and
stops gracefully on either. ``Worker.start()``/``stop()`` run the same consumer in background
threads without touching signal handlers, which is what a notebook kernel needs.
"""

from __future__ import annotations

import html
import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime
from types import FrameType

from huey.consumer import Consumer
from sqlalchemy import Connection, update

from batchnb.db.models import Worker as WorkerRow
from batchnb.db.models import utcnow
from batchnb.queue.outcomes import reclaim_expired, release_held
from batchnb.queue.recovery import (
    RECOVERY_INTERVAL_SECONDS,
    RecoveryLoop,
    recovery_interval,
    redispatch_stranded,
)
from batchnb.queue.runner import record_heartbeat
from batchnb.queue.runtime import Activity, QueueRuntime
from batchnb.queue.state import queue_state

log = logging.getLogger(__name__)

#: How often a busy worker logs a summary line (see ``Worker(summary_seconds=...)``).
SUMMARY_SECONDS = 60.0


class _QuietConsumer(Consumer):
    """A Huey consumer that leaves signal handlers alone (they belong to the host process)."""

    def _set_signal_handlers(self) -> None:
        return None


class Worker:
    """One consumer process (or set of kernel threads) working the workspace's queues.

    Parameters
    ----------
    runtime:
        The queue runtime (database, Huey, handlers) of the workspace.
    threads:
        Items processed at once by this worker.
    heartbeat_seconds:
        How often the worker records itself alive and extends its leases.
    periodic:
        Run the periodic tasks (stats, cleanup, schedules) in this consumer. Recovery (expired
        leases, lost messages, repair sweeps) runs on its own thread whatever this says.
    in_process:
        Recorded on the heartbeat row: True for a worker inside a notebook or ``batchnb run``.
    shutdown_timeout:
        How long a graceful stop waits for running items before releasing them.
    summary_seconds:
        How often the worker logs (INFO) what it did since the last summary and how many items
        wait; an idle worker with nothing waiting stays quiet.
    recovery_seconds:
        How often the recovery loop tries to run a round (at most a third of the lease; see
        :mod:`batchnb.queue.recovery`).
    """

    def __init__(
        self,
        runtime: QueueRuntime,
        *,
        threads: int,
        heartbeat_seconds: float,
        periodic: bool = True,
        in_process: bool = False,
        shutdown_timeout: float = 30.0,
        summary_seconds: float = SUMMARY_SECONDS,
        recovery_seconds: float = RECOVERY_INTERVAL_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.summary_seconds = summary_seconds
        self.threads = threads
        self.heartbeat_seconds = min(heartbeat_seconds, runtime.lease_seconds / 3)
        self.periodic = periodic
        self.in_process = in_process
        self.shutdown_timeout = shutdown_timeout
        self._consumer: _QuietConsumer | None = None
        self._heartbeat_thread: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self._signalled = threading.Event()
        self.recovery = RecoveryLoop(
            runtime,
            recovery_interval(runtime.lease_seconds, recovery_seconds),
            self.heartbeat_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"Worker(id={self.id!r}, threads={self.threads}, running={self.running}, "
            f"in_process={self.in_process})"
        )

    def _repr_html_(self) -> str:
        # A plain table: the cards of batchnb.services.display are a layer above the queue.
        facts = {
            "worker": self.id,
            "threads": self.threads,
            "running": "yes" if self.running else "no (stopped)",
            "in process": "yes" if self.in_process else "no",
        }
        rows = "".join(
            f"<tr><th style='text-align:left'>{name}</th>"
            f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
            for name, value in facts.items()
        )
        return f"<table>{rows}</table>"

    @property
    def id(self) -> str:
        return self.runtime.worker_id

    @property
    def running(self) -> bool:
        return self._consumer is not None

    def start(self) -> None:
        """Reclaim expired leases, register the heartbeat, start the consumer and recovery."""
        if self._consumer is not None:
            return
        self.runtime.stop_event.clear()
        self._heartbeat_stop.clear()
        reclaim_expired(self.runtime)
        if self.recovery.lock.acquire():
            # Messages lost while no worker ran go out now, not two rounds from now; the lock
            # keeps workers that start together (``--processes N``) from each sending them.
            redispatch_stranded(self.runtime)
        with self.runtime.db.write() as session:
            session.merge(
                WorkerRow(
                    id=self.id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    threads=self.threads,
                    in_process=self.in_process,
                    stopped_at=None,
                )
            )
        self._consumer = _QuietConsumer(
            self.runtime.huey,
            workers=self.threads,
            worker_type="thread",
            periodic=self.periodic,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
            shutdown_timeout=self.shutdown_timeout,
        )
        self._consumer.start()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="batchnb-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        self.recovery.start()
        log.info("worker %s started with %s threads", self.id, self.threads)

    def _touch(self, connection: Connection, now: datetime) -> None:
        connection.execute(update(WorkerRow).where(WorkerRow.id == self.id).values(last_seen=now))

    def _heartbeat_loop(self) -> None:
        last_summary = time.monotonic()
        while not self._heartbeat_stop.wait(self.heartbeat_seconds):
            try:
                record_heartbeat(self.runtime, self._touch)
            except Exception:
                # A missed heartbeat costs nothing if the next one lands; keep beating.
                log.exception("heartbeat failed")
            if time.monotonic() - last_summary >= self.summary_seconds:
                self._log_summary(time.monotonic() - last_summary)
                last_summary = time.monotonic()

    def _log_summary(self, elapsed: float) -> None:
        """One line: what this worker finished since the last one, and what waits."""
        counts = self.runtime.activity.take()
        try:
            state = queue_state(self.runtime.db, utcnow())
        except Exception:
            log.exception("could not measure the queue for the summary")
            return
        waiting = sum(state.depth.values())
        if not any(counts.values()) and not waiting and not state.processing:
            return
        done = ", ".join(f"{counts[outcome]} {outcome}" for outcome in Activity.OUTCOMES)
        log.info(
            "worker %s, last %.0f s: %s; queue: %s waiting, %s running",
            self.id,
            elapsed,
            done,
            waiting,
            state.processing,
        )

    def stop(self, graceful: bool = True) -> None:
        """Stop consuming. Running items finish, or are released at their next checkpoint.

        Items still held after ``shutdown_timeout`` are released in the database, so another
        worker picks them up at once instead of waiting for the lease to expire.
        """
        consumer = self._consumer
        if consumer is None:
            return
        self.runtime.stop_event.set()
        # First, so the lock goes to a worker that stays (it runs the next round at once).
        self.recovery.stop()
        consumer.stop(graceful=graceful)
        released = release_held(self.runtime)
        if released:
            log.warning("released %s items still running at shutdown", released)
        self._heartbeat_stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=5)
        with self.runtime.db.write() as session:
            session.execute(
                update(WorkerRow).where(WorkerRow.id == self.id).values(stopped_at=utcnow())
            )
        for hook in self.runtime.on_stop:
            try:
                hook()
            except Exception:
                # The worker has stopped either way; a resource that will not close is logged.
                log.exception("cleanup after stopping worker %s failed", self.id)
        self._consumer = None
        log.info("worker %s stopped", self.id)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping gracefully", signal.Signals(signum).name)
        self._signalled.set()

    def run(self) -> None:
        """Run in the foreground until SIGINT or SIGTERM, then stop gracefully."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            assert self._consumer is not None
            health_check = time.monotonic()
            while not self._signalled.wait(0.2):
                health_check = self._consumer.loop(health_check) or health_check
        finally:
            self.stop(graceful=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
