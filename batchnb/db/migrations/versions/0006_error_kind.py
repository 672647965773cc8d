"""Failures carry their kind, and a failed job keeps the last frames of its traceback.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

The kind of a failure ("encrypted", "corrupt", "unknown_extractor", "TimeoutError", ...) is now
decided where the error is raised and stored beside its message, on the document and on the
job, so that rewording a message cannot move failures between kinds in the analytics. Rows
written before this revision get the kind the analytics used to read off the message text,
by the rules frozen below. Failed jobs also keep a concise traceback (``error_traceback``).

The ``cleanup`` queue of revision 0001 goes: housekeeping runs as periodic tasks, and no job
ever used it. An item on it could never have run, so one still there is a bug to look at, and
the queue is then kept.

Written out literally: this revision does not import batchnb.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The message rules of analytics.classify_error as they stood before this revision.
_ATTEMPTS_SUFFIX = re.compile(r" \(after \d+ attempts\)$")
_EXCEPTION_PREFIX = re.compile(
    r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Timeout|Warning))(?::|$)"
)
_MESSAGE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encrypted", ("encrypted", "password")),
    ("unsupported", ("no parser for", "unsupported")),
    ("too_large", ("too many", "too large", "zip bomb")),
    ("empty", ("empty", "no text", "no visible text", "no pages")),
    ("corrupt", ("not a readable", "corrupt", "truncated", "not valid")),
    ("ocr", ("ocr",)),
    ("worker_lost", ("stopped responding",)),
)


def _kind_of_message(error: str) -> str | None:
    text = _ATTEMPTS_SUFFIX.sub("", error.strip())
    if not text:
        return None
    found = _EXCEPTION_PREFIX.match(text)
    if found:
        return found.group(1).rsplit(".", 1)[-1]
    lowered = text.lower()
    for kind, words in _MESSAGE_KINDS:
        if any(word in lowered for word in words):
            return kind
    return "other"


def _backfill(table: str) -> None:
    connection = op.get_bind()
    errors = connection.execute(
        sa.text(f"SELECT DISTINCT error FROM {table} WHERE status = 'failed' AND error IS NOT NULL")
    ).scalars()
    update = sa.text(
        f"UPDATE {table} SET error_kind = :kind WHERE status = 'failed' AND error = :error"
    )
    for error in list(errors):
        kind = _kind_of_message(error)
        if kind is not None:
            connection.execute(update, {"kind": kind, "error": error})


def upgrade() -> None:
    op.add_column("documents", sa.Column("error_kind", sa.String(length=64), nullable=True))
    op.add_column("extraction_jobs", sa.Column("error_kind", sa.String(length=64), nullable=True))
    op.add_column("extraction_jobs", sa.Column("error_traceback", sa.Text(), nullable=True))
    if not op.get_context().as_sql:  # offline SQL scripts get the columns; data needs a database
        _backfill("documents")
        _backfill("extraction_jobs")
    op.execute(
        "DELETE FROM processing_queues WHERE name = 'cleanup' "
        "AND NOT EXISTS (SELECT 1 FROM queue_items WHERE queue_name = 'cleanup')"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO processing_queues (name, concurrency_limit, max_attempts, "
        "retry_delay_seconds, retry_backoff, active, created_at, updated_at) "
        "SELECT 'cleanup', 1, 1, 60.0, 1.0, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP "
        "WHERE NOT EXISTS (SELECT 1 FROM processing_queues WHERE name = 'cleanup')"
    )
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_column("error_traceback")
        batch.drop_column("error_kind")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("error_kind")
