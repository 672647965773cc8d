"""The recovery loop: every worker, on a thread of its own, repairs what crashes leave behind.

Every :func:`recovery_interval` seconds each worker tries to take the ``recovery`` lock (a
lease row, see :mod:`batchnb.queue.locks`); the one that holds it runs a round:

1. end at once the leases of workers on this machine whose process is gone (killed, crashed:
   :func:`expire_dead_local_workers`), then requeue items whose lease expired (their worker
   was killed or froze), or fail those out of attempts
   (:func:`~batchnb.queue.outcomes.reclaim_expired`);
2. re-send messages for waiting items that have none (a worker killed between taking a
   message and leasing, or a Redis that lost its data), acting only on a deficit seen on two
   rounds in a row so that messages in flight are never answered with duplicates
   (:func:`redispatch_stranded`);
3. run the runtime's repair sweeps (``QueueRuntime.sweeps``), logging what each repaired.

The loop does not travel through the Huey queue, so a backlog of thousands of messages
cannot delay it (the once-a-minute reaper that did was starved by exactly that). The holder
keeps the lock by claiming it again each round and checks it before each step; a holder
that freezes loses it :data:`LOCK_INTERVALS` intervals after its last claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Row, select, update

from batchnb.db.engine import is_transient_database_error
from batchnb.db.models import Worker as WorkerRow
from batchnb.db.models import utcnow
from batchnb.queue import items
from batchnb.queue.locks import LeaseLock
from batchnb.queue.outcomes import reclaim_expired
from batchnb.queue.runtime import QueueRuntime

log = logging.getLogger(__name__)

RECOVERY_LOCK = "recovery"
RECOVERY_INTERVAL_SECONDS = 5.0
"""The default of ``BATCHNB_RECOVERY_SECONDS``: how often a worker tries to run a round."""
LOCK_INTERVALS = 3
"""A claim of the lock lasts this many intervals: a holder that misses two rounds keeps it,
one silent for three loses it (as a worker silent for three heartbeats counts as gone)."""


def recovery_interval(lease_seconds: float, seconds: float = RECOVERY_INTERVAL_SECONDS) -> float:
    """Seconds between rounds: ``seconds``, but at most a third of the lease.

    An orphaned item then waits at most its lease plus about one interval (two when the lock's
    holder died with it and its claim must run out first).
    """
    return min(seconds, lease_seconds / 3)


def count_missing_messages(runtime: QueueRuntime) -> int:
    """Waiting items minus the messages the transport holds (queued or scheduled), at least 0.

    Items are counted before messages, so a producer that commits and sends between the two
    reads errs towards too few. A producer between its commit and its send, or a worker between
    taking a message and leasing an item, makes the deficit look larger for a moment: act only
    on a deficit seen twice (see :func:`redispatch_stranded`'s ``limit``).
    """
    huey = runtime.huey
    with runtime.db.connect() as connection:
        waiting = items.count_ready(connection)
    queued = huey.pending_count() + huey.scheduled_count()
    return max(waiting - queued, 0)


def redispatch_stranded(runtime: QueueRuntime, limit: int | None = None) -> int:
    """Send messages for waiting items that have none; returns how many were sent.

    Huey deletes a message when a worker takes it, so a worker killed after taking a message
    but before leasing an item loses that message, and its item would wait forever; a Redis
    that loses its data (a restart without persistence, FLUSHDB) loses them all. Every
    waiting item should be matched by a queued message; where the queue holds fewer messages
    than there are waiting items, the difference is sent again for the items a worker would
    take first. Messages running in live workers are not counted, so a few extra may go out;
    an extra message finds nothing to lease and costs one query.

    ``limit`` caps how many are sent: the recovery loop passes the deficit it saw on its
    previous round too, so a deficit that is only a producer between its commit and its send
    (or messages being taken right now) is never answered with duplicates.
    """
    missing = count_missing_messages(runtime)
    if limit is not None:
        missing = min(missing, limit)
    if missing <= 0:
        return 0
    with runtime.db.connect() as connection:
        stranded = items.oldest_ready(connection, missing, utcnow())
    runtime.dispatch(stranded)
    log.warning("sent %s messages for waiting items that had none", len(stranded))
    return len(stranded)


def dead_local_workers(runtime: QueueRuntime, heartbeat_seconds: float) -> list[Row[str, int]]:
    """Workers on this machine, not marked stopped, whose process no longer exists.

    A worker counts as dead only when both its heartbeat is two intervals late and no process
    has its pid here, so a live worker in another pid namespace under the same host name
    (containers given one ``hostname``) is never taken for dead. Rows have ``id`` and ``pid``.
    """
    late = utcnow() - timedelta(seconds=2 * heartbeat_seconds)
    with runtime.db.connect() as connection:
        candidates = connection.execute(
            select(WorkerRow.id, WorkerRow.pid).where(
                WorkerRow.hostname == socket.gethostname(),
                WorkerRow.stopped_at.is_(None),
                WorkerRow.last_seen < late,
            )
        ).all()
    return [row for row in candidates if not _process_exists(row.pid)]


def expire_dead_local_workers(runtime: QueueRuntime, heartbeat_seconds: float) -> list[str]:
    """End the leases of workers on this machine whose process no longer exists.

    A killed worker's leases would otherwise hold its items, and its places under the queue's
    concurrency limit, until they expire (``lease_seconds``, a minute by default). Returns the
    ids of the workers found dead (see :func:`dead_local_workers`), now marked stopped.
    """
    now = utcnow()
    dead = dead_local_workers(runtime, heartbeat_seconds)
    for worker in dead:
        with runtime.db.begin() as connection:
            ended = items.expire_leases_of(connection, worker.id, now)
            connection.execute(
                update(WorkerRow).where(WorkerRow.id == worker.id).values(stopped_at=now)
            )
        log.warning(
            "worker %s is gone (no process %s here): its %s items go back",
            worker.id,
            worker.pid,
            ended,
        )
    return [worker.id for worker in dead]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@dataclass
class RecoveryRound:
    """What one round did: dead workers found, items requeued and failed, messages re-sent,
    repairs per sweep."""

    dead_workers: list[str] = field(default_factory=list)
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    repaired: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    """False when the lock was lost part way (the rest is left to its new holder)."""


class RecoveryLoop:
    """The recovery round, run every ``interval`` seconds by whichever worker holds the lock.

    Parameters
    ----------
    runtime:
        The worker's queue runtime; its ``worker_id`` is the lock holder's name.
    interval:
        Seconds between tries (see :func:`recovery_interval`).
    heartbeat_seconds:
        The workers' heartbeat interval, for :func:`expire_dead_local_workers`.
    """

    def __init__(self, runtime: QueueRuntime, interval: float, heartbeat_seconds: float) -> None:
        self.runtime = runtime
        self.interval = interval
        self.heartbeat_seconds = heartbeat_seconds
        self.lock = LeaseLock(
            runtime.db, RECOVERY_LOCK, runtime.worker_id, interval * LOCK_INTERVALS
        )
        self._missing_before = 0
        self._holding = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"RecoveryLoop(interval={self.interval}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop's thread (the first round comes one interval from now)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="batchnb-recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give the lock up, so another worker runs the next round at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lock.seconds + 5)
            self._thread = None
        try:
            self.lock.release()
        except Exception:
            # The claim runs out on its own; another worker takes it then.
            log.exception("could not release the recovery lock")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_round()
            except Exception as exc:
                # A failed round is retried next time; a busy or restarting database is
                # expected now and then and needs no traceback.
                if not is_transient_database_error(exc):
                    log.exception("recovery round failed")
                else:
                    log.warning("recovery round skipped, database busy or unreachable: %s", exc)

    def run_round(self) -> RecoveryRound | None:
        """Run one round if this worker gets the lock; None when another worker holds it."""
        holding = self.lock.acquire() or self._take_from_dead_holder()
        if holding != self._holding:
            # Once per change, so the logs say which worker does the rounds.
            self._holding = holding
            log.info(
                "worker %s %s the recovery rounds",
                self.runtime.worker_id,
                "now runs" if holding else "no longer runs",
            )
        if not holding:
            # Another worker does the rounds; a deficit seen before it took over is stale.
            self._missing_before = 0
            return None
        done = RecoveryRound()
        done.dead_workers = expire_dead_local_workers(self.runtime, self.heartbeat_seconds)
        done.requeued, done.failed = reclaim_expired(self.runtime)
        if not self._still_held(done):
            return done
        missing = count_missing_messages(self.runtime)
        confirmed = min(missing, self._missing_before)
        self._missing_before = missing
        if confirmed:
            done.resent = redispatch_stranded(self.runtime, limit=confirmed)
            # What was sent answers this deficit; the next round measures afresh.
            self._missing_before = max(missing - done.resent, 0)
        for sweep in self.runtime.sweeps:
            if not self._still_held(done):
                return done
            name = _sweep_name(sweep)
            try:
                repaired = sweep()
            except Exception:
                # One broken sweep must not stop the others or the next round.
                log.exception("recovery sweep %s failed", name)
                continue
            done.repaired[name] = repaired
            if repaired:
                log.warning("recovery sweep %s repaired %s", name, repaired)
        return done

    def _take_from_dead_holder(self) -> bool:
        """Take the lock now if its holder is a worker on this machine whose process is gone.

        Otherwise a killed holder's claim (``LOCK_INTERVALS`` intervals) passes with no round,
        and with workers killed more often than that (a crash loop, an OOM killer at work) no
        round would run at all: lost messages would never be re-sent."""
        current = self.lock.current()
        if current is None:
            return False
        holder = current[0]
        dead = {row.id for row in dead_local_workers(self.runtime, self.heartbeat_seconds)}
        if holder not in dead or not self.lock.take_over(holder):
            return False
        log.warning(
            "worker %s took the recovery lock from %s, which is gone", self.lock.holder, holder
        )
        return True

    def _still_held(self, done: RecoveryRound) -> bool:
        """Claim the lock again before the next step; a holder that froze mid-round stops."""
        if self.lock.acquire():
            return True
        done.complete = False
        self._missing_before = 0
        self._holding = False
        log.warning("recovery lock lost during a round; its new holder carries on")
        return False


def _sweep_name(sweep: Callable[[], int]) -> str:
    """A sweep's name for the log: its function's, seen through ``functools.partial``."""
    target = getattr(sweep, "func", sweep)
    return str(getattr(target, "__name__", repr(sweep)))
