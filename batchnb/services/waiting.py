"""Waiting for work to finish: one polling loop for batches, exports and anything else."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float | None,
    poll_seconds: float,
    subject: str,
    describe: Callable[[T], str],
    on_progress: Callable[[T], None] | None = None,
) -> T:
    """Call ``read`` every ``poll_seconds`` until ``done`` says yes; return the last state.

    ``on_progress`` sees every state read (the last one included).

    Raises
    ------
    TimeoutError
        Not done after ``timeout`` seconds; the message names ``subject`` and ``describe``s
        the last state.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = read()
        if on_progress is not None:
            on_progress(state)
        if done(state):
            return state
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{subject} not finished after {timeout}s: {describe(state)}")
        time.sleep(poll_seconds)
