"""What travels through the queue: typed payloads stored on items, and the messages Huey carries.

A job type declares its payload as a frozen dataclass subclassing :class:`Payload`, naming its
``job_type`` and ``queue``; :func:`batchnb.queue.items.enqueue` stores it as JSON on a new
``queue_items`` row and :meth:`LeasedItem.payload_as` reads it back typed. A :class:`Message`
is what Huey carries once the row is committed: "item N may be ready", with its priority and,
for a retry, when it is due.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self


class Payload:
    """Base of a job type's payload: subclass as a frozen dataclass of JSON-able fields."""

    job_type: ClassVar[str]
    queue: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``queue_items.payload``."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The payload stored by :meth:`to_json`; missing keys take their defaults."""
        names = [spec.name for spec in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{name: data[name] for name in names if name in data})


@dataclass(frozen=True)
class Message:
    """One Huey message: item ``item_id`` may be ready (sent after its row is committed)."""

    item_id: int
    priority: int = 0
    eta: datetime | None = None
    """When the item becomes due (a retry's backoff); ``None``: now."""
