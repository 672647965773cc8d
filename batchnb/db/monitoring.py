"""Slow-query log: SQL statements slower than a threshold are logged with their duration.

The timing hooks are SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute`` engine
events, so every statement is measured whatever issued it (ORM session, Core connection,
migrations). A slow statement is logged at WARNING on the logger ``batchnb.db.slow`` with its
duration, its text (whitespace collapsed, shortened) and how many parameters it had, but never
the parameter values: they may hold document data (extracted fields, file names, prompts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, event

#: The logger slow statements go to; route or silence it with the logging configuration.
SLOW_QUERY_LOGGER = "batchnb.db.slow"

#: Statements longer than this are cut (a batch insert's VALUES list can run to megabytes).
MAX_STATEMENT_CHARS = 500

_START = "_batchnb_query_started"

log = logging.getLogger(SLOW_QUERY_LOGGER)


def shorten_statement(statement: str, limit: int = MAX_STATEMENT_CHARS) -> str:
    """The statement on one line, cut to ``limit`` characters (marked with an ellipsis)."""
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_parameters(parameters: Any, executemany: bool) -> str:
    """How many parameters a statement had, e.g. ``"3 parameters"`` or ``"500 x 4 parameters"``.

    Only counts: the values themselves may be document data and are never logged.
    """
    if executemany and isinstance(parameters, Sequence) and not isinstance(parameters, str):
        first = parameters[0] if parameters else ()
        return f"{len(parameters)} x {_plural(_count(first))}"
    return _plural(_count(parameters))


def _plural(count: int) -> str:
    return f"{count} parameter" if count == 1 else f"{count} parameters"


def _count(parameters: Any) -> int:
    if parameters is None:
        return 0
    try:
        return len(parameters)
    except TypeError:
        return 1


def attach_slow_query_log(engine: Engine, threshold_ms: float) -> None:
    """Log every statement run on ``engine`` that takes ``threshold_ms`` or longer.

    Parameters
    ----------
    engine:
        The engine to watch (listeners are attached to it, so every connection is covered).
    threshold_ms:
        Duration from which a statement counts as slow; 0 or less attaches nothing.
    """
    if threshold_ms <= 0:
        return
    threshold = threshold_ms / 1000.0

    # The start time rides on the statement's execution context: it is created per statement
    # and thrown away afterwards, so a statement that fails (and never reaches
    # after_cursor_execute) leaves nothing behind on the long-lived connection.
    def _before(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context is not None:
            setattr(context, _START, time.perf_counter())

    def _after(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        started = getattr(context, _START, None)
        if started is None:
            return
        setattr(context, _START, None)
        elapsed = time.perf_counter() - started
        if elapsed < threshold:
            return
        duration_ms = elapsed * 1000.0
        counted = describe_parameters(parameters, many)
        log.warning(
            "slow query: %.1f ms, %s: %s",
            duration_ms,
            counted,
            shorten_statement(statement),
            extra={"duration_ms": duration_ms, "parameters": counted},
        )

    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
