"""The Huey tasks of a runtime: the item task and the periodic housekeeping.

Tasks are registered on the runtime's own Huey instance (not at import time), so every
workspace gets its own transport and tests can run many workspaces in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from huey import crontab

from batchnb.queue.maintenance import remove_expired_temp_files
from batchnb.queue.runner import (
    QueueRuntime,
    reclaim_expired,
    redispatch_stranded,
    run_message,
)
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
    Periodic tasks are idempotent, so it is harmless when several consumers run them.
    """
    huey = runtime.huey

    @huey.task(name=PROCESS_TASK_NAME)
    def process_item(item_id: int) -> None:
        run_message(runtime, item_id)

    @huey.periodic_task(crontab(minute="*"), name="batchnb.reap_expired_leases")
    def reap_expired_leases() -> None:
        reclaim_expired(runtime)
        redispatch_stranded(runtime)

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
