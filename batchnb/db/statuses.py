"""The statuses of batches, documents, queue items and exports, as stored in their rows."""

from __future__ import annotations

import enum


class ItemStatus(enum.StrEnum):
    """Status of a queue item. ``retrying`` waits for its scheduled time."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRYING = "retrying"


class DocumentStatus(enum.StrEnum):
    """Status of a document; mirrors its current queue item."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchStatus(enum.StrEnum):
    """Status of a batch, derived from its documents when they change."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExportStatus(enum.StrEnum):
    """Values of ``exports.status``."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
