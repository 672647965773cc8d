"""Several worker processes under one supervisor: ``batchnb worker --processes N``.

One worker process uses about one core: pypdfium2 parses under a process-wide lock and OCR is
CPU-bound. The supervisor starts N ``batchnb worker --processes 1`` children, starts a child
again when it dies (a crash, the OOM killer, a SIGKILL), and on SIGTERM or SIGINT asks every
child to stop gracefully (each finishes or releases its items), then exits.

On Linux each child is told by the kernel to stop (SIGTERM) when the supervisor dies, even by
SIGKILL, so no worker is left without its supervisor. Elsewhere a supervisor killed outright
leaves its children running until they are stopped.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("batchnb.supervisor")

POLL_SECONDS = 0.5
"""How often the supervisor looks at its children."""

RESTART_DELAY_SECONDS = 1.0
"""Pause before a dead child is started again."""

CRASH_WINDOW_SECONDS = 30.0
CRASHES_BEFORE_BACKOFF = 5
BACKOFF_SECONDS = 30.0
"""A child that died this many times within the window waits this long before its restart."""

_PR_SET_PDEATHSIG = 1


def default_processes() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# Loaded at import, not in the forked child: the child only makes the prctl(2) system call.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """In a child, between fork and exec: SIGTERM when its parent dies (Linux only)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class _Child:
    slot: int
    process: subprocess.Popen[bytes]


class Supervisor:
    """Keeps ``processes`` copies of ``command`` running until asked to stop.

    Parameters
    ----------
    command:
        The child's command line (a ``batchnb worker --processes 1`` invocation).
    processes:
        How many children run at once.
    shutdown_timeout:
        Seconds each child gets to stop gracefully before it is killed.
    """

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        shutdown_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.command = list(command)
        self.processes = processes
        self.shutdown_timeout = shutdown_timeout
        self._clock = clock
        self._children: dict[int, _Child] = {}
        self._waiting: dict[int, float] = {}  # slot -> when its restart is due
        self._history: dict[int, list[float]] = {}
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        """Process ids of the children running now, by slot."""
        return [self._children[slot].process.pid for slot in sorted(self._children)]

    def run(self) -> int:
        """Start the children and look after them until SIGTERM or SIGINT; returns 0."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for slot in range(self.processes):
                self._start(slot)
            while not self._stopping:
                self._look_after()
                time.sleep(POLL_SECONDS)  # polling interval: children are watched, not awaited
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info(
            "supervisor: %s, stopping %d workers", signal.Signals(signum).name, len(self._children)
        )
        self._stopping = True

    def _start(self, slot: int) -> None:
        process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            # preexec_fn only makes one system call (see die_with_parent).
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._children[slot] = _Child(slot, process)
        log.info("supervisor: worker %d started (pid %d)", slot, process.pid)

    def _look_after(self) -> None:
        now = self._clock()
        for slot, child in list(self._children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self._children[slot]
            history = [t for t in self._history.get(slot, []) if now - t < CRASH_WINDOW_SECONDS]
            history.append(now)
            self._history[slot] = history
            delay = (
                BACKOFF_SECONDS if len(history) >= CRASHES_BEFORE_BACKOFF else RESTART_DELAY_SECONDS
            )
            log.warning(
                "supervisor: worker %d (pid %d) exited with %s; starting another in %.0f s",
                slot,
                child.process.pid,
                _describe(code),
                delay,
            )
            self._waiting[slot] = now + delay
        for slot, due in list(self._waiting.items()):
            if now >= due:
                del self._waiting[slot]
                self._start(slot)

    def _stop_all(self) -> None:
        """SIGTERM to every child, then wait; SIGKILL the ones still running after the timeout."""
        children = list(self._children.values())
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + self.shutdown_timeout
        for child in children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("supervisor: worker %d did not stop in time: killed", child.slot)
                child.process.kill()
                child.process.wait(5)
        self._children.clear()
        self._waiting.clear()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
