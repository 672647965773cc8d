"""The Huey tasks of a runtime: the item task and the periodic housekeeping.

Recovery (expired leases, lost messages, repair sweeps) is not a Huey task: a periodic task
travels through the same queue as the documents and waits behind any backlog, so it runs on
each worker's own thread instead (:mod:`batchnb.queue.recovery`).

Tasks are registered on the runtime's own Huey instance (not at import time), so every
workspace gets its own transport and tests can run many workspaces in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from huey import crontab

from batchnb.queue.maintenance import remove_expired_temp_files
from batchnb.queue.runner import QueueRuntime, run_message
from batchnb.queue.scheduler import run_due_schedules, stop_runs
from batchnb.queue.stats import aggregate_queue_stats

log = logging.getLogger(__name__)

PROCESS_TASK_NAME = "batchnb.process_item"


def register_tasks(
    runtime: QueueRuntime,
    temp_dirs: Sequence[Path],
    temp_max_age_hours: float,
    cleanups: Sequence[Callable[[], int]] = (),
) -> None:
    """Register the item task and the periodic tasks on ``runtime.huey``.

    ``cleanups`` are run by the hourly cleanup task beside the temporary-file sweep (e.g.
    removing expired exports); each returns how many things it removed.
    Periodic tasks are idempotent, so it is harmless when several consumers run them (the
    scheduler claims each due time once, whoever ticks).
    """
    huey = runtime.huey

    @huey.task(name=PROCESS_TASK_NAME)
    def process_item(item_id: int) -> None:
        run_message(runtime, item_id)

    @huey.periodic_task(crontab(minute="*"), name="batchnb.run_due_schedules")
    def run_schedules() -> None:
        # Claims are exactly-once (see scheduler.py): every consumer may run this task.
        claims = run_due_schedules(runtime.db, runtime.worker_id)
        if claims:
            log.info("started scheduled runs: %s", ", ".join(c.name for c in claims))

    @huey.periodic_task(crontab(minute="*/10"), name="batchnb.aggregate_queue_stats")
    def aggregate_stats() -> None:
        aggregate_queue_stats(runtime.db)

    @huey.periodic_task(crontab(minute="17"), name="batchnb.cleanup_temp_files")
    def cleanup_temp_files() -> None:
        removed = sum(remove_expired_temp_files(d, temp_max_age_hours) for d in temp_dirs)
        if removed:
            log.info("removed %s expired temporary files", removed)
        for cleanup in cleanups:
            removed = cleanup()
            if removed:
                log.info(
                    "%s removed %s expired items", getattr(cleanup, "__name__", cleanup), removed
                )

    runtime.process_task = process_item

    def stop_scheduled_runs() -> None:
        # A stopping worker waits a moment for the notebooks it runs, then ends and records them.
        ended = stop_runs(runtime.worker_id)
        if ended:
            log.warning("ended %s scheduled runs still running at shutdown", ended)

    runtime.on_stop.append(stop_scheduled_runs)
