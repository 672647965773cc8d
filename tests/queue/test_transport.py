"""Huey storages that enqueue many messages at once store each exactly as Huey's own enqueue.

The bulk paths write Huey's storage formats themselves (one transaction, one round trip), so
these tests pin them against the installed Huey: a message sent in bulk must be stored, and
come back out, exactly like the same message sent through ``Huey.enqueue``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from batchnb.queue.transport import (
    BatchnbRedisStorage,
    BatchnbSqliteStorage,
    create_huey,
    send_messages,
)


def _huey(kind: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        return create_huey(f"sqlite:///{tmp_path / 'queue.db'}")
    url = request.getfixturevalue("redis_url")
    return create_huey(f"{url}?huey_name=batchnb-pin-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_bulk_enqueue_stores_what_hueys_enqueue_stores(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    huey = _huey(kind, tmp_path, request)
    expected = BatchnbSqliteStorage if kind == "sqlite" else BatchnbRedisStorage
    assert isinstance(huey.storage, expected)

    @huey.task(name="pin")
    def pin(n: int) -> None:  # pragma: no cover - never run
        pass

    try:
        one_by_one = [pin.s(n) for n in range(3)]
        for task, priority in zip(one_by_one, (5, 0, 5), strict=True):
            task.priority = priority
            huey.enqueue(task)  # Huey's own path
        stored_by_huey = _stored(huey)
        huey.flush()

        in_bulk = [pin.s(n) for n in range(3)]
        for task, original in zip(in_bulk, one_by_one, strict=True):
            task.id, task.priority = original.id, original.priority
        send_messages(huey, in_bulk)
        assert _stored(huey) == stored_by_huey

        # And they come out as Huey reads them: highest priority first, then in order sent.
        taken = [huey.dequeue() for _ in range(3)]
        assert [(t.id, t.args) for t in taken] == [
            (in_bulk[0].id, (0,)),
            (in_bulk[2].id, (2,)),
            (in_bulk[1].id, (1,)),
        ]
    finally:
        huey.flush()


def _stored(huey):  # type: ignore[no-untyped-def]
    """What the storage holds, as comparable values: (data, priority) in storage order."""
    storage = huey.storage
    if isinstance(storage, BatchnbSqliteStorage):
        with storage.db() as cursor:
            rows = cursor.execute("select queue, data, priority from task order by id").fetchall()
        return [(queue, bytes(data), priority) for queue, data, priority in rows]
    members = storage.conn.zrange(storage.queue_key, 0, -1, withscores=True)
    # Each member is an 8-byte timestamp prefix (for order) and the message; the score is
    # the negated priority. The prefix differs per send, so only its size is compared.
    return [(len(member[:8]), member[8:], score) for member, score in members]
