"""Removing stored files no document uses, without racing a submit that is about to use them.

Storage is content-addressed and shared: a submit's intake may reuse a file that a delete of
another batch is about to remove. Two rules keep every committed document's file in place:

1. **One lock.** Removing files (:func:`remove_unreferenced`) and inserting a submit's document
   rows (:func:`lock_for_new_references`) happen in transactions that exclude each other: on
   SQLite both are ``BEGIN IMMEDIATE`` write transactions; on PostgreSQL the removal holds the
   transaction-level advisory lock :data:`LOCK_KEY` exclusively and each submit holds it shared
   (submits do not wait for each other). So a removal either sees the new rows (and keeps the
   file) or has finished, and recorded what it removed, before the submit's rows go in.
2. **A record of removals.** The removal writes the keys it removed to an audit event
   (:data:`REMOVE_FILES_ACTION`) *after* removing them, in its locked transaction. A submit
   notes the newest audit event id before its intake (:func:`removal_watermark`) and, in its
   locked transaction, looks only at removal events newer than that
   (:func:`check_still_stored`): usually none, so the common case costs one indexed query and
   no storage call. Ids rather than clocks decide "newer": an event id at or below the
   watermark was allocated before the watermark was read, and its files were removed before
   the id was allocated, hence before the intake started (which then stored them again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, func, select

from batchnb.db.engine import Database
from batchnb.db.models import AuditEvent, Document
from batchnb.db.sql import advisory_lock
from batchnb.documents.intake import IncomingFile
from batchnb.documents.storage import Storage
from batchnb.errors import IntakeError
from batchnb.services.audit import record_event

log = logging.getLogger(__name__)

#: PostgreSQL advisory lock between removing files and inserting rows that name files:
#: "batchgc" in ASCII (migrations use "batchnb"), recognisable in pg_locks.
LOCK_KEY = 0x62_61_74_63_68_67_63
#: Audit action of the events listing the storage keys a delete removed.
REMOVE_FILES_ACTION = "remove_files"
#: Keys handled per locked transaction (and per audit event): bounds how long a removal on
#: slow remote storage holds up submits, and keeps IN lists within SQLite's parameter limit.
CHUNK = 500


def removal_watermark(db: Database) -> int:
    """The newest audit event id now (0 if none): read it before a submit's intake starts."""
    with db.connect() as connection:
        return int(connection.scalar(select(func.max(AuditEvent.id))) or 0)


def lock_for_new_references(connection: Connection) -> None:
    """Keep removals out until the caller's transaction ends (call it first in the transaction).

    On PostgreSQL this takes :data:`LOCK_KEY` shared; on SQLite the caller's write transaction
    (``BEGIN IMMEDIATE``) already excludes every other writer.
    """
    advisory_lock(connection, LOCK_KEY, shared=True)


def check_still_stored(
    connection: Connection, storage: Storage, files: Sequence[IncomingFile], since: int
) -> None:
    """Refuse files that a delete removed after ``since`` (a :func:`removal_watermark`).

    Call it in the transaction that inserts the rows, after :func:`lock_for_new_references`.
    Only a file named by a newer removal event is looked up in storage: it may have been
    stored again since (by this intake or another), which is fine.

    Raises
    ------
    IntakeError
        A file is gone: the caller must roll back and the user submit again.
    """
    removed: set[str] = set()
    for details in connection.scalars(
        select(AuditEvent.details).where(
            AuditEvent.id > since, AuditEvent.action == REMOVE_FILES_ACTION
        )
    ):
        removed.update(details.get("keys", ()))
    if not removed:
        return
    missing = [
        f.file_name for f in files if f.storage_key in removed and not storage.exists(f.storage_key)
    ]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise IntakeError(
            f"{', '.join(missing[:5])}{more}: the stored copy was removed while this batch was "
            "being submitted, by a delete of another batch holding the same bytes; nothing "
            "was created: submit again"
        )


def remove_unreferenced(
    db: Database,
    storage: Storage,
    keys: Iterable[str],
    *,
    actor: str,
    batch_id: int,
    owner: str,
) -> int:
    """Remove the stored files among ``keys`` that no document names; how many were removed.

    Runs after the rows of the deleted batch are committed, one locked transaction per
    :data:`CHUNK` keys: it checks again which keys are unreferenced (a submit may have
    committed rows naming them since), removes those files and records their keys in an
    audit event on ``batch_id`` that names ``owner``. A file that cannot be removed is logged,
    not raised (it is recorded all the same: it may be partly gone).
    """
    wanted = sorted(set(keys))
    removed_count = 0
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        with db.begin() as connection:
            advisory_lock(connection, LOCK_KEY)
            used = set(
                connection.scalars(
                    select(Document.storage_key).where(Document.storage_key.in_(chunk)).distinct()
                )
            )
            # Existence is checked so that the record names only files this call removed.
            attempted = [key for key in chunk if key not in used and storage.exists(key)]
            for key in attempted:
                try:
                    storage.delete(key)
                except Exception:
                    # The rows are gone already; an orphaned file wastes space but breaks nothing.
                    log.warning(
                        "batch %s deleted, but its file %s was not removed",
                        batch_id,
                        key,
                        exc_info=True,
                    )
                else:
                    removed_count += 1
            if attempted:
                # After the removals: the event's id must be allocated once they are done
                # (see the module docstring).
                record_event(
                    connection,
                    actor,
                    REMOVE_FILES_ACTION,
                    "batch",
                    batch_id,
                    {"owner": owner, "keys": attempted},
                )
    return removed_count
