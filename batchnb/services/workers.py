"""Starting workers: in the foreground (``batchnb worker``) or inside a notebook kernel."""

from __future__ import annotations

import threading
import weakref

from batchnb.queue.worker import Worker
from batchnb.services.workspace import Workspace, acting

# One in-process worker per workspace: a second one would share the runtime's identity and
# stop signal, so start_worker() hands back the running one instead.
_in_process: weakref.WeakKeyDictionary[Workspace, Worker] = weakref.WeakKeyDictionary()
_in_process_lock = threading.Lock()


def make_worker(
    workspace: Workspace,
    *,
    threads: int | None = None,
    periodic: bool = True,
    in_process: bool = False,
) -> Worker:
    """A worker for the workspace's queue (not started)."""
    settings = workspace.settings
    return Worker(
        workspace.runtime,
        threads=threads or settings.worker_threads,
        heartbeat_seconds=settings.heartbeat_seconds,
        periodic=periodic,
        in_process=in_process,
        shutdown_timeout=max(settings.lease_seconds, 5.0),
        recovery_seconds=settings.recovery_seconds,
    )


def start_worker(
    workspace: Workspace | None = None, *, threads: int | None = None, periodic: bool = True
) -> Worker:
    """Start a worker in background threads of this process and return it.

    Meant for notebook kernels: the kernel's own signal handlers are left alone. Call
    ``worker.stop()`` when done; running items are finished or released. Calling it again
    while that worker runs returns the same worker.
    """
    workspace, _ = acting(workspace, None)
    with _in_process_lock:
        running = _in_process.get(workspace)
        if running is not None and running.running:
            return running
        worker = make_worker(workspace, threads=threads, periodic=periodic, in_process=True)
        worker.start()
        _in_process[workspace] = worker
        return worker
