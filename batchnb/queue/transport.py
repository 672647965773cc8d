"""The Huey instance that carries queue-item ids between producers and workers.

Huey is only the transport: a message says "item N may be ready". Losing a message costs time
(the reaper re-sends it), never a document, because the ``queue_items`` row is the truth.

The queue URL picks the storage: ``sqlite:///path`` (default, SqliteHuey) or ``redis://...``
(a Redis-backed Huey with priorities). A ``huey_name`` query parameter overrides the Huey
name, so several workspaces can share one Redis.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from huey import Huey
from huey.storage import PriorityRedisStorage, SqliteStorage

from batchnb.errors import ConfigurationError, MissingDependencyError

DEFAULT_HUEY_NAME = "batchnb"
_ENQUEUE_ATTEMPTS = 5


class BatchnbSqliteStorage(SqliteStorage):
    """SqliteHuey's storage, able to enqueue many messages in one transaction.

    Submitting a 10,000-document batch one transaction per message takes seconds; one
    ``executemany`` takes milliseconds.
    """

    def enqueue_many(self, messages: Sequence[tuple[bytes, int]]) -> None:
        """Enqueue (serialized task, priority) pairs as :meth:`enqueue` would, in one go."""
        rows = [(self.name, self.to_blob(data), priority) for data, priority in messages]
        with self.db(commit=True) as cursor:
            cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)", rows)


class BatchnbRedisStorage(PriorityRedisStorage):
    """Huey's priority Redis storage, able to enqueue many messages in one round trip.

    Each message is stored exactly as :meth:`RedisPriorityQueue.enqueue` stores it (a test pins
    this against the installed Huey): an 8-byte big-endian microsecond timestamp before the
    data, keeping messages of one priority in order, and the negated priority as the score.
    Consecutive timestamps keep the messages of one call distinct and in order.
    """

    def enqueue_many(self, messages: Sequence[tuple[bytes, int]]) -> None:
        """Enqueue (serialized task, priority) pairs as :meth:`enqueue` would, in one go."""
        pipe = self.conn.pipeline(transaction=False)
        base = int(time.time() * 1e6)
        for offset, (data, priority) in enumerate(messages):
            prefix = struct.pack(">Q", base + offset)
            pipe.zadd(self.queue_key, {prefix + data: -priority})
        pipe.execute()


class BatchnbSqliteHuey(Huey):
    """SqliteHuey with :class:`BatchnbSqliteStorage` (the embedded default)."""

    storage_class = BatchnbSqliteStorage


class BatchnbRedisHuey(Huey):
    """PriorityRedisHuey with :class:`BatchnbRedisStorage`."""

    storage_class = BatchnbRedisStorage


def _split_name(url: str) -> tuple[str, str]:
    """Take the ``huey_name`` query parameter off the URL (string surgery keeps its slashes)."""
    base, _, query = url.partition("?")
    params = parse_qs(query)
    name = params.pop("huey_name", [DEFAULT_HUEY_NAME])[0]
    rest = "&".join(f"{key}={value}" for key, values in params.items() for value in values)
    return (f"{base}?{rest}" if rest else base), name


def create_huey(queue_url: str, *, busy_timeout_ms: int = 30000, immediate: bool = False) -> Huey:
    """Build the Huey instance for ``queue_url`` (tasks are registered by the caller).

    Parameters
    ----------
    queue_url:
        ``sqlite:///path/queue.db`` or ``redis://host:port/db``; ``memory://`` gives Huey's
        immediate mode, where a message runs inline as soon as it is sent (fast unit tests).
    immediate:
        Force immediate mode whatever the URL.
    """
    url, name = _split_name(queue_url)
    scheme = urlsplit(url).scheme
    if immediate or scheme == "memory":
        return Huey(name, results=False, immediate=True)
    if scheme == "sqlite":
        path = Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None
        if path is None or not str(path):
            raise ConfigurationError(f"queue URL {queue_url!r}: use sqlite:///path/to/queue.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        return BatchnbSqliteHuey(
            name, results=False, filename=str(path), timeout=busy_timeout_ms / 1000
        )
    if scheme in ("redis", "rediss", "unix"):
        try:
            import redis  # noqa: F401
        except ModuleNotFoundError:
            raise MissingDependencyError("redis", "redis", "a redis:// queue URL") from None
        return BatchnbRedisHuey(name, results=False, url=url)
    raise ConfigurationError(
        f"queue URL {queue_url!r} is not supported: use sqlite:///path, redis://host:port/db "
        "or memory:// (immediate mode, for tests)"
    )


def send_messages(huey: Huey, tasks: Sequence[Any]) -> None:
    """Send Huey task instances, in one storage transaction where the storage allows it.

    SQLite producers can meet "database is locked" under contention; sending is retried.
    """
    if not tasks:
        return
    storage = huey.storage
    if huey.immediate or not hasattr(storage, "enqueue_many"):
        for task in tasks:
            huey.enqueue(task)
        return
    serialized = [(huey.serialize_task(task), task.priority or 0) for task in tasks]
    for attempt in range(_ENQUEUE_ATTEMPTS):
        try:
            storage.enqueue_many(serialized)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _ENQUEUE_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
