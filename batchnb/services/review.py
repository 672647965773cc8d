"""Review and correction: people fix extracted values and mark documents as checked.

A correction is a row of ``corrections`` (who, when, the value before and after, which
document, which field path); the extracted result is never changed, and every reader of
results lays the newest correction of each field over it (see
:func:`batchnb.jobs.export_records.apply_corrections`), so exports, ``batch.results()`` and
``to_dataframe`` show corrected values and ``originals=True`` the values as extracted.

Like the operations of :mod:`batchnb.services.manage`, every change is made by the acting
user (default: the workspace user), allowed to the batch's owner or an admin only (a refusal
is audited and changes nothing), audited in the same transaction, and followed by the
invalidation of cached summaries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from batchnb.cache import ANALYTICS, BATCHES, PROGRESS
from batchnb.db.models import (
    Document,
    ExtractedData,
    FieldCorrection,
    utcnow,
)
from batchnb.db.statuses import DocumentStatus
from batchnb.errors import BatchStateError, NotFoundError, SchemaError
from batchnb.extract import Field, schema_from_dict
from batchnb.jobs.export_records import (
    FieldPath,
    apply_corrections,
    parse_field_path,
    read_corrections,
)
from batchnb.services import display
from batchnb.services.access import authorize
from batchnb.services.audit import record_event
from batchnb.services.review_status import ReviewStatus, review_status
from batchnb.services.review_values import coerce_value
from batchnb.services.workspace import Workspace, acting

_CHUNK = 500
_SHOWN_IDS = 100

__all__ = [
    "Correction",
    "ReviewStatus",
    "correct_value",
    "list_corrections",
    "mark_reviewed",
    "review_marks",
    "review_status",
]


def _shown(value: Any) -> str:
    """A stored value as people read it: JSON for dicts and lists, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True, repr=False)
class Correction:
    """One correction of one value: ``field`` went from ``old_value`` to ``new_value``.

    ``field`` is a path: ``"total"`` or an array item's field ``"line_items.2.amount"``
    (items counted from 0). Values are stored as extraction stores them (money as
    ``{"amount", "currency"}``, dates as ISO text).
    """

    id: int
    batch_id: int
    document_id: int
    field: str
    old_value: Any
    new_value: Any
    corrected_by: str
    corrected_at: datetime

    def __repr__(self) -> str:
        old = display.shorten(_shown(self.old_value), 40)
        new = display.shorten(_shown(self.new_value), 40)
        return (
            f"Correction(id={self.id}, document_id={self.document_id}, "
            f"field={display.shorten(self.field)!r}, {old} -> {new}, "
            f"by={display.shorten(self.corrected_by)!r}, "
            f"at={display.format_time(self.corrected_at)!r})"
        )

    def _repr_html_(self) -> str:
        facts = [
            ("document", f"{self.document_id} (batch {self.batch_id})"),
            ("field", self.field),
            ("was", _shown(self.old_value)),
            ("now", _shown(self.new_value)),
            ("by", self.corrected_by),
            ("at", self.corrected_at),
        ]
        return display.card(f"Correction {self.id}", facts)


def _invalidate(workspace: Workspace) -> None:
    workspace.cache.invalidate(BATCHES, PROGRESS, ANALYTICS)


def _field_of(schema: dict[str, Any], where: FieldPath) -> tuple[Field, Field | None]:
    """The (top-level field, item field) the path names in a stored schema."""
    if not schema.get("fields") and not schema.get("properties"):
        raise SchemaError("the document's result has no schema to check a correction against")
    top = schema_from_dict(schema).field(where.name)
    if where.index is None:
        return top, None
    if top.type != "array":
        raise SchemaError(
            f"field {where.name!r} is a {top.type}, not an array: correct it as {where.name!r}"
        )
    for sub in top.fields:
        if sub.name == where.item_field:
            return top, sub
    names = ", ".join(sub.name for sub in top.fields)
    raise SchemaError(f"the items of {where.name!r} have no field {where.item_field!r}: {names}")


def _document(workspace: Workspace, document_id: int) -> tuple[int, str, str]:
    """(batch id, status, owner) of a document."""
    with workspace.db.connect() as connection:
        row = connection.execute(
            select(Document.batch_id, Document.status, Document.owner).where(
                Document.id == document_id
            )
        ).one_or_none()
    if row is None:
        raise NotFoundError(f"document {document_id} does not exist")
    return int(row.batch_id), str(row.status), str(row.owner)


def _current(connection: Connection, document_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document's newest result as (values with its corrections applied, schema)."""
    result = connection.execute(
        select(ExtractedData.data, ExtractedData.schema)
        .where(ExtractedData.document_id == document_id)
        .order_by(ExtractedData.id.desc())
        .limit(1)
    ).one_or_none()
    if result is None:
        raise BatchStateError(f"document {document_id} has no extracted values to correct")
    corrections = read_corrections(connection, [document_id]).get(document_id, [])
    return apply_corrections(result.data or {}, corrections), dict(result.schema or {})


def correct_value(
    document_id: int,
    field: str,
    value: Any,
    *,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> Correction:
    """Correct one extracted value of a completed document; returns the stored correction.

    Parameters
    ----------
    field:
        A field name (``"total"``) or an array item's field (``"line_items.2.amount"``,
        items counted from 0).
    value:
        The right value, typed or as text: it is checked and typed against the field's type
        in the document's schema ("12.50" for a number, "2024-03-01" for a date, "EUR 12.50"
        or ``{"amount": 12.5, "currency": "EUR"}`` for money); ``None`` clears the value.
        Correcting a value back to what was extracted is a correction too.

    Raises
    ------
    NotFoundError
        The document does not exist.
    PermissionDeniedError
        ``actor`` neither owns the batch nor is an admin (audited; nothing is stored).
    BatchStateError
        The document did not complete: it has no values to correct.
    SchemaError
        No such field or item, or ``value`` is not of the field's type (nothing is stored).
    """
    workspace, actor = acting(workspace, actor)
    try:
        where = parse_field_path(field)
    except ValueError as exc:
        raise SchemaError(str(exc)) from None
    batch_id, status, owner = _document(workspace, document_id)
    authorize(workspace, actor, "correct", [batch_id], {"document": document_id, "field": field})
    if status != DocumentStatus.COMPLETED:
        raise BatchStateError(
            f"document {document_id} is {status}: only completed documents have values to "
            "correct (retry a failed one first)"
        )
    now = utcnow()
    with workspace.db.begin() as connection:
        # Two people correcting one document at once: the second waits, then reads the first's
        # value as its old value (SQLite's write transactions are serial already).
        connection.execute(select(Document.id).where(Document.id == document_id).with_for_update())
        current, schema = _current(connection, document_id)
        top, sub = _field_of(schema, where)
        if sub is None:
            old = current.get(where.name)
            new = coerce_value(top, value, previous=old)
        else:
            items = current.get(where.name)
            count = len(items) if isinstance(items, list) else 0
            if where.index is None or where.index >= count:
                held = f"items 0 to {count - 1}" if count else "no items"
                raise SchemaError(
                    f"{where.name!r} of document {document_id} has {held}, not item "
                    f"{where.index}; to add items, correct the whole list as {where.name!r}"
                )
            item = items[where.index] if isinstance(items, list) else {}
            old = item.get(sub.name) if isinstance(item, dict) else None
            new = coerce_value(sub, value, previous=old, where=str(where))
        correction_id = connection.execute(
            insert(FieldCorrection).returning(FieldCorrection.id),
            {
                "batch_id": batch_id,
                "document_id": document_id,
                "field": str(where),
                "old_value": old,
                "new_value": new,
                "corrected_by": actor,
                "corrected_at": now,
            },
        ).scalar_one()
        record_event(
            connection,
            actor,
            "correct",
            "document",
            document_id,
            # The owner is named so that they see an admin's corrections in their audit trail.
            {"batch_id": batch_id, "owner": owner, "field": str(where), "old": old, "new": new},
        )
    _invalidate(workspace)
    return Correction(int(correction_id), batch_id, document_id, str(where), old, new, actor, now)


_CORRECTION_COLUMNS = (
    FieldCorrection.id,
    FieldCorrection.batch_id,
    FieldCorrection.document_id,
    FieldCorrection.field,
    FieldCorrection.old_value,
    FieldCorrection.new_value,
    FieldCorrection.corrected_by,
    FieldCorrection.corrected_at,
)


def list_corrections(
    *,
    batch_id: int | None = None,
    document_id: int | None = None,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> list[Correction]:
    """The corrections of a batch or of one document, newest first.

    Only the batch's owner or an admin may read them (values are the batch's data).
    """
    workspace, actor = acting(workspace, actor)
    if batch_id is None and document_id is None:
        raise NotFoundError("say whose corrections to list: batch_id= or document_id=")
    if document_id is not None:
        owning, _, _ = _document(workspace, document_id)
        if batch_id is not None and owning != batch_id:
            raise NotFoundError(f"batch {batch_id} has no document {document_id}")
        batch_id = owning
    assert batch_id is not None
    authorize(workspace, actor, "view", [batch_id])
    query = select(*_CORRECTION_COLUMNS).order_by(FieldCorrection.id.desc())
    if document_id is not None:
        query = query.where(FieldCorrection.document_id == document_id)
    else:
        query = query.where(FieldCorrection.batch_id == batch_id)
    with workspace.db.connect() as connection:
        rows = connection.execute(query).all()
    return [Correction(*row) for row in rows]


def mark_reviewed(
    document_id_or_ids: int | Sequence[int],
    reviewed: bool = True,
    *,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> int:
    """Mark documents as reviewed (checked by a person), or not any more with ``reviewed=False``.

    Returns how many documents changed (one already marked stays as it was, with its first
    reviewer and time). All or none: every document must exist and have completed, and the
    actor must own (or administer) every batch they belong to.

    Raises
    ------
    NotFoundError
        A document does not exist.
    PermissionDeniedError
        ``actor`` may not change one of their batches (audited; nothing changes).
    BatchStateError
        A document did not complete.
    """
    workspace, actor = acting(workspace, actor)
    ids = [document_id_or_ids] if isinstance(document_id_or_ids, int) else list(document_id_or_ids)
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    found: dict[int, tuple[int, str]] = {}
    with workspace.db.connect() as connection:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for row in connection.execute(
                select(Document.id, Document.batch_id, Document.status).where(
                    Document.id.in_(chunk)
                )
            ):
                found[row.id] = (row.batch_id, row.status)
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFoundError(f"document {', '.join(map(str, missing[:10]))} does not exist")
    action = "review" if reviewed else "unreview"
    authorize(workspace, actor, action, {batch for batch, _ in found.values()})
    open_ones = {i: status for i, (_, status) in found.items() if status != "completed"}
    if open_ones:
        shown = ", ".join(f"{i} ({s})" for i, s in sorted(open_ones.items())[:10])
        raise BatchStateError(f"only completed documents can be reviewed; these are not: {shown}")
    return _set_reviewed(workspace, actor, found, reviewed)


def _set_reviewed(
    workspace: Workspace, actor: str, found: dict[int, tuple[int, str]], reviewed: bool
) -> int:
    now = utcnow()
    by_batch: dict[int, list[int]] = {}
    for document_id, (batch_id, _) in sorted(found.items()):
        by_batch.setdefault(batch_id, []).append(document_id)
    changed = 0
    with workspace.db.begin() as connection:
        for batch_id, document_ids in sorted(by_batch.items()):
            batch_changed = 0
            for start in range(0, len(document_ids), _CHUNK):
                chunk = document_ids[start : start + _CHUNK]
                statement = update(Document).where(Document.id.in_(chunk))
                if reviewed:
                    statement = statement.where(Document.reviewed_at.is_(None)).values(
                        reviewed_at=now, reviewed_by=actor
                    )
                else:
                    statement = statement.where(Document.reviewed_at.is_not(None)).values(
                        reviewed_at=None, reviewed_by=None
                    )
                batch_changed += connection.execute(statement).rowcount or 0
            record_event(
                connection,
                actor,
                "review" if reviewed else "unreview",
                "batch",
                batch_id,
                {"documents": batch_changed, "document_ids": document_ids[:_SHOWN_IDS]},
            )
            changed += batch_changed
    _invalidate(workspace)
    return changed


def review_marks(workspace: Workspace, batch_id: int) -> tuple[dict[int, list[str]], set[int]]:
    """(corrected field paths per document, reviewed document ids) of a batch: what a grid
    marks. Two queries for the whole batch."""
    with workspace.db.connect() as connection:
        corrected: dict[int, list[str]] = {}
        for document_id, path in connection.execute(
            select(FieldCorrection.document_id, FieldCorrection.field)
            .where(FieldCorrection.batch_id == batch_id)
            .distinct()
            .order_by(FieldCorrection.document_id, FieldCorrection.field)
        ):
            corrected.setdefault(document_id, []).append(path)
        reviewed = set(
            connection.scalars(
                select(Document.id).where(
                    Document.batch_id == batch_id, Document.reviewed_at.is_not(None)
                )
            )
        )
    return corrected, reviewed
