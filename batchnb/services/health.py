"""Health of the queue (live consumers, depth, oldest waiting item, stalls, failure rate) and
the cache (reachable or not; hits and misses, of every process when the cache is in Redis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchnb.cache import CacheStats
from batchnb.db.models import Worker, utcnow
from batchnb.queue import state
from batchnb.services import display
from batchnb.services.schedules import failing_schedules
from batchnb.services.workspace import Workspace


@dataclass(frozen=True)
class HealthReport:
    """What ``batchnb health`` prints; ``healthy`` is False when any problem was found."""

    consumers: list[dict[str, Any]]
    queue_depth: dict[str, int]
    processing: int
    oldest_pending_seconds: float | None
    completed_last_hour: int
    failed_last_hour: int
    problems: list[str] = field(default_factory=list)
    cache: CacheStats | None = None

    @property
    def failure_rate(self) -> float | None:
        finished = self.completed_last_hour + self.failed_last_hour
        return None if finished == 0 else self.failed_last_hour / finished

    @property
    def healthy(self) -> bool:
        return not self.problems

    def _rate(self) -> str:
        return "-" if self.failure_rate is None else f"{self.failure_rate:.0%}"

    def __repr__(self) -> str:
        state = "healthy" if self.healthy else f"{len(self.problems)} problems"
        return (
            f"HealthReport({state}, consumers={len(self.consumers)}, "
            f"waiting={sum(self.queue_depth.values())}, processing={self.processing}, "
            f"failure_rate={self._rate()})"
        )

    def _repr_html_(self) -> str:
        oldest = self.oldest_pending_seconds
        facts = [
            ("consumers", len(self.consumers)),
            ("waiting", ", ".join(f"{n} {q}" for q, n in self.queue_depth.items()) or "0"),
            ("processing", self.processing),
            ("oldest waiting", "-" if oldest is None else f"{oldest:.0f}s"),
            ("last hour", f"{self.completed_last_hour} completed, {self.failed_last_hour} failed"),
            ("failure rate", self._rate()),
        ]
        problems = display.join(*(display.note(problem) for problem in self.problems))
        workers = display.section(
            f"consumers ({len(self.consumers)})",
            display.table(
                ("id", "host", "pid", "threads", "last seen"),
                [
                    (c["id"], c["hostname"], c["pid"], c["threads"], c["last_seen"])
                    for c in self.consumers
                ],
            ),
        )
        title = "Health: ok" if self.healthy else f"Health: {len(self.problems)} problems"
        return display.card(title, facts, after=display.join(problems, workers))

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "consumers": self.consumers,
            "queue_depth": self.queue_depth,
            "processing": self.processing,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "completed_last_hour": self.completed_last_hour,
            "failed_last_hour": self.failed_last_hour,
            "failure_rate": self.failure_rate,
            "cache": None if self.cache is None else self.cache.as_dict(),
        }


def live_workers(workspace: Workspace, grace_seconds: float = 0.0) -> list[Worker]:
    """Workers that sent a heartbeat within three heartbeat intervals and did not stop.

    ``grace_seconds`` widens that window, for callers to whom a worker whose heartbeat is late
    on a loaded machine should still count (a false "no worker" warning costs more than a late one).
    """
    settings = workspace.settings
    # A worker beats at most every third of a lease (see Worker), whatever the setting says.
    interval = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
    return state.live_workers(workspace.db, utcnow() - timedelta(seconds=grace_seconds), interval)


def check_health(workspace: Workspace) -> HealthReport:
    """Measure the queue and list what is wrong, if anything."""
    settings = workspace.settings
    now = utcnow()
    workers = live_workers(workspace)
    queue = state.queue_state(workspace.db, now)
    oldest = queue.oldest_due
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    cache_problem = workspace.cache.check()
    report = HealthReport(
        consumers=[
            {
                "id": w.id,
                "hostname": w.hostname,
                "pid": w.pid,
                "threads": w.threads,
                "in_process": w.in_process,
                "last_seen": w.last_seen.isoformat(),
            }
            for w in workers
        ],
        queue_depth=queue.depth,
        processing=queue.processing,
        oldest_pending_seconds=None if oldest is None else (now - oldest).total_seconds(),
        completed_last_hour=queue.completed_last_hour,
        failed_last_hour=queue.failed_last_hour,
        cache=workspace.cache.stats(),
    )
    waiting = sum(queue.depth.values())
    if waiting and not workers:
        report.problems.append(
            f"{waiting} items are waiting and no consumer is running: start `batchnb worker`"
        )
    age = report.oldest_pending_seconds
    if age is not None and age > settings.health_max_pending_age_seconds:
        report.problems.append(
            f"the oldest waiting item has waited {age:.0f}s "
            f"(limit {settings.health_max_pending_age_seconds:.0f}s)"
        )
    report.problems.extend(_stall_problems(workspace, workers, now))
    rate = report.failure_rate
    if rate is not None and rate > settings.health_max_failure_rate:
        report.problems.append(
            f"{rate:.0%} of the items finished in the last hour failed "
            f"(limit {settings.health_max_failure_rate:.0%})"
        )
    if cache_problem is not None:
        report.problems.append(cache_problem)
    for run in failing_schedules(workspace):
        # The latest run of the schedule failed: it stays a problem until a run succeeds.
        when = display.format_time(run.finished_at or run.started_at)
        report.problems.append(f"schedule {run.schedule} failed at {when}: {run.error}")
    return report


def _stall_problems(workspace: Workspace, workers: list[Worker], now: datetime) -> list[str]:
    """A stall: items due for a while, consumers alive with free threads, nothing leased.

    Live consumers that lease nothing while items wait are not working through the queue;
    the usual cause is messages the transport lost (a Redis restart without persistence, a
    FLUSHDB), which the workers' recovery round re-sends within seconds. A stall that lasts
    means the workers cannot reach the queue or the database.
    """
    if not workers:
        return []  # "no consumer is running" says it already
    seconds = workspace.settings.health_stall_seconds
    stalls = state.find_stalls(workspace.db, now, seconds)
    free = sum(w.threads for w in workers) - stalls.running
    if free <= 0:
        return []
    return [
        f"queue {queue} is stalled: {waiting} items have been due for over {seconds:.0f}s and "
        f"none was leased in that time, although the live consumers ({len(workers)}) have "
        f"{free} free threads. Their messages were probably lost; workers re-send them within "
        "seconds (the recovery round). If this persists, check the workers' logs (can they "
        "reach the queue and the database?) and restart them with `batchnb worker`."
        for queue, waiting in stalls.queues.items()
    ]
