"""Work that may take seconds, run without freezing the kernel.

In a kernel, widget handlers run on its asyncio event loop; :func:`in_background` hands the
work to the loop's thread pool and calls back on the loop when it is done, so the kernel keeps
answering (and a busy indicator shows) meanwhile. Without a running loop (a script, a test)
the work simply runs at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_background(
    work: Callable[[], T],
    done: Callable[[T], None],
    failed: Callable[[Exception], None],
) -> None:
    """Run ``work`` off the event loop; then ``done(result)`` or ``failed(error)`` on it.

    ``work`` must not touch widgets (it runs in another thread); ``done`` and ``failed`` may.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        try:
            result = work()
        except Exception as error:
            failed(error)
            return
        done(result)
        return

    def finish(future: asyncio.Future[T]) -> None:
        error = future.exception()
        if error is None:
            done(future.result())
        elif isinstance(error, Exception):
            failed(error)
        else:  # KeyboardInterrupt, SystemExit: not ours to swallow
            raise error

    loop.run_in_executor(None, work).add_done_callback(finish)
