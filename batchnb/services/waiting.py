"""Waiting for work to finish: one polling loop for batches, exports and anything else.

While it waits it draws a progress bar (``tqdm.auto``: a widget in Jupyter, text elsewhere)
and, when nothing is being done because no worker runs, says so once with the fix.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from batchnb.services.health import live_workers
from batchnb.services.workspace import Workspace

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")

NO_WORKER_WARNING_SECONDS = 5.0
"""How long a wait goes on before it checks that a worker is alive (and again as often
after that, until it has warned once). Short enough to help, long enough that a worker
just being started is seen."""


LATE_HEARTBEAT_GRACE_SECONDS = 10.0
"""A worker whose last heartbeat is this much later than due still counts as working for the
warning: on a loaded machine a heartbeat can be late, and a wrong warning misleads."""


class NoWorkerWarning(RuntimeWarning):
    """A wait is waiting for work that no running worker will do."""


def interactive_session() -> bool:
    """Whether someone watches: a Jupyter/IPython session, the Python prompt, or a terminal."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is not None and get_ipython() is not None:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def wait_until(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float | None,
    poll_seconds: float,
    subject: str,
    describe: Callable[[T], str],
    count: Callable[[T], tuple[int, int]],
    workspace: Workspace,
    on_progress: Callable[[T], None] | None = None,
    progress: bool | None = None,
) -> T:
    """Call ``read`` every ``poll_seconds`` until ``done`` says yes; return the last state.

    Parameters
    ----------
    describe:
        A state in a few words, for the bar and the timeout message.
    count:
        A state as (documents done, documents in all), for the bar.
    workspace:
        Where the work is queued: when no worker of it is alive after
        :data:`NO_WORKER_WARNING_SECONDS`, a :class:`NoWorkerWarning` says so, once.
    on_progress:
        Sees every state read (the last one included).
    progress:
        Draw a progress bar: ``True`` always, ``False`` never, ``None`` in an interactive
        session when there is something to wait for and no ``on_progress`` callback (whoever
        passes one usually draws their own).

    Raises
    ------
    TimeoutError
        Not done after ``timeout`` seconds; the message names ``subject`` and ``describe``s
        the last state.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    state = read()
    if progress is None:
        progress = on_progress is None and not done(state) and interactive_session()
    bar = _open_bar(subject, count(state)[1]) if progress else None
    next_check: float | None = started + NO_WORKER_WARNING_SECONDS
    try:
        while True:
            if on_progress is not None:
                on_progress(state)
            if bar is not None:
                _show(bar, count(state), describe(state))
            if done(state):
                return state
            now = time.monotonic()
            # Before the timeout: a wait that gives up should still have said why it waited.
            if next_check is not None and now >= next_check:
                warned = _warn_if_nobody_works(workspace, subject)
                next_check = None if warned else now + NO_WORKER_WARNING_SECONDS
            if deadline is not None and now > deadline:
                raise TimeoutError(f"{subject} not finished after {timeout}s: {describe(state)}")
            time.sleep(poll_seconds)
            state = read()
    finally:
        if bar is not None:
            bar.close()


def _warn_if_nobody_works(workspace: Workspace, subject: str) -> bool:
    """Warn when no worker is alive to do the work; return whether it warned."""
    # Huey's immediate mode does the work inside the call that queues it: no worker needed.
    if getattr(workspace.runtime.huey, "immediate", False) or live_workers(
        workspace, grace_seconds=LATE_HEARTBEAT_GRACE_SECONDS
    ):
        return False
    warnings.warn(
        f"{subject} is waiting, but no worker is running: start one with "
        "batchnb.start_worker() or `batchnb worker`",
        NoWorkerWarning,
        # The user's line: it calls Batch.wait() or ExportHandle.wait(), which call wait_until.
        stacklevel=4,
    )
    return True


def _open_bar(subject: str, total: int) -> tqdm[Any]:
    # Imported on first use: tqdm.auto probes for IPython and ipywidgets, a cost that
    # `import batchnb` and the CLI should not pay.
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=subject, unit="doc", leave=True)


def _show(bar: tqdm[Any], counted: tuple[int, int], description: str) -> None:
    done, total = counted
    if bar.total != total:
        bar.total = total
    bar.set_postfix_str(description, refresh=False)
    bar.update(done - bar.n)
    bar.refresh()
