"""What an export reads: the selected documents, each with its newest result, page by page.

Reading is keyset-paginated (``documents.id > last``), one short read per page of
:data:`PAGE_SIZE` documents, so an export of any size holds one page at a time and never keeps a
transaction open while the file is written. :func:`combined_schema` gives the columns: the
union of the schemas of every result of the selection.

Corrections people made (the ``corrections`` table) are laid over the stored values here, and
only here, so every way of reading results (export files, ``batch.results()``,
``to_dataframe``) shows the corrected values; ``Selection(originals=True)`` reads the values as
extracted. A page costs one more query for its corrections, whatever their number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Text, bindparam, cast, func, or_, select

from batchnb.db.engine import Database
from batchnb.db.models import Document, ExtractedData, FieldCorrection
from batchnb.db.statuses import DocumentStatus
from batchnb.errors import ExportError
from batchnb.formats import ExportRecord
from batchnb.jobs.documents import DOCUMENT_INFO_KEY

PAGE_SIZE = 1000
"""Documents read from the database per query (and rows handed to a writer per chunk)."""
MAX_DOCUMENT_IDS = 10_000
"""Most documents a selection may name one by one; larger selections go by batch."""


@dataclass(frozen=True)
class Selection:
    """Which documents an export takes: every document of ``batch_ids`` plus ``document_ids``.

    ``originals`` reads the values as they were extracted, leaving out people's corrections.
    """

    batch_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()
    originals: bool = False

    def __post_init__(self) -> None:
        if not self.batch_ids and not self.document_ids:
            raise ExportError("nothing selected: give a batch id, a list of them, or document ids")
        if len(self.document_ids) > MAX_DOCUMENT_IDS:
            raise ExportError(
                f"{len(self.document_ids)} documents named one by one; at most "
                f"{MAX_DOCUMENT_IDS} can be, select whole batches instead"
            )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``exports.selection`` (``originals`` only when set)."""
        found: dict[str, Any] = {
            "batch_ids": list(self.batch_ids),
            "document_ids": list(self.document_ids),
        }
        if self.originals:
            found["originals"] = True
        return found

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Selection:
        return cls(
            tuple(int(i) for i in value.get("batch_ids", ())),
            tuple(int(i) for i in value.get("document_ids", ())),
            bool(value.get("originals", False)),
        )

    def condition(self) -> ColumnElement[bool]:
        """The ``documents`` rows selected."""
        parts: list[ColumnElement[bool]] = []
        if self.batch_ids:
            parts.append(Document.batch_id.in_(self.batch_ids))
        if self.document_ids:
            parts.append(Document.id.in_(self.document_ids))
        return or_(*parts) if len(parts) > 1 else parts[0]


def exported_statuses(include_failed: bool, include_open: bool = False) -> tuple[str, ...]:
    """Documents with a result are exported; failed and cancelled ones only when asked.

    Documents still waiting or running are never written to a file (their values do not
    exist yet); ``include_open`` lists them too, for a batch's results while it runs.
    """
    statuses = [DocumentStatus.COMPLETED.value]
    if include_failed:
        statuses += [DocumentStatus.FAILED.value, DocumentStatus.CANCELLED.value]
    if include_open:
        statuses += [DocumentStatus.PENDING.value, DocumentStatus.PROCESSING.value]
    return tuple(statuses)


def count_documents(connection: Connection, selection: Selection, include_failed: bool) -> int:
    """How many documents the export will take."""
    return int(
        connection.scalar(
            select(func.count())
            .select_from(Document)
            .where(selection.condition(), Document.status.in_(exported_statuses(include_failed)))
        )
        or 0
    )


def selected_batch_ids(connection: Connection, selection: Selection) -> list[int]:
    """Every batch the selection touches (for the ownership check)."""
    found = set(selection.batch_ids)
    if selection.document_ids:
        rows = connection.execute(
            select(Document.id, Document.batch_id).where(Document.id.in_(selection.document_ids))
        ).all()
        missing = set(selection.document_ids) - {row.id for row in rows}
        if missing:
            shown = ", ".join(map(str, sorted(missing)[:5]))
            raise ExportError(f"document {shown} does not exist")
        found.update(row.batch_id for row in rows)
    return sorted(found)


def combined_schema(connection: Connection, selection: Selection) -> dict[str, Any]:
    """One schema covering every result of the selection, fields in order of first appearance.

    Batches with a prompt per document or "auto" types hold several schemas: the export's
    columns are their union. A field with the same name but different types in two schemas
    becomes a text column (values written as stored); arrays with the same name merge their
    item fields the same way.
    """
    schemas = connection.execute(
        select(ExtractedData.schema, func.min(ExtractedData.id).label("first"))
        .join(Document, Document.id == ExtractedData.document_id)
        .where(selection.condition())
        .group_by(ExtractedData.schema)
        .order_by("first")
    ).scalars()
    fields: list[dict[str, Any]] = []
    for schema in schemas:
        fields = merge_fields(fields, (schema or {}).get("fields", ()))
    return {"fields": fields}


def merge_fields(
    known: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``known`` followed by the fields of ``extra`` it lacks; clashing types become text."""
    merged = {str(spec["name"]): dict(spec) for spec in known}
    for spec in extra:
        name = str(spec["name"])
        current = merged.get(name)
        if current is None:
            merged[name] = dict(spec)
        elif current.get("type") == "array" and spec.get("type") == "array":
            current["fields"] = merge_fields(current.get("fields", ()), spec.get("fields", ()))
        elif current.get("type", "string") != spec.get("type", "string"):
            merged[name] = {**current, "type": "string"}
            merged[name].pop("fields", None)
    return list(merged.values())


# The JSON columns are read as their text and decoded only when their record is consumed: a
# page of decoded results kept alive while it is written cost the cyclic garbage collector
# about as much as the decoding itself (it scans every surviving container, again and again).
_RESULT_COLUMNS = (
    ExtractedData.document_id,
    cast(ExtractedData.data, Text).label("data"),
    ExtractedData.confidence,
)
_PAGE_IDS = ExtractedData.document_id.in_(bindparam("ids", expanding=True))
_PAGE_RESULTS = select(*_RESULT_COLUMNS).where(_PAGE_IDS).order_by(ExtractedData.id)
_PAGE_RESULTS_WITH_EVIDENCE = (
    select(*_RESULT_COLUMNS, cast(ExtractedData.evidence, Text).label("evidence"))
    .where(_PAGE_IDS)
    .order_by(ExtractedData.id)
)


_PAGE_CORRECTIONS = (
    select(FieldCorrection.document_id, FieldCorrection.field, FieldCorrection.new_value)
    .where(FieldCorrection.document_id.in_(bindparam("ids", expanding=True)))
    .order_by(FieldCorrection.id)
)


@dataclass(frozen=True)
class FieldPath:
    """Where a correction goes: a field (``total``) or an array item's field
    (``line_items.2.amount``, ``index`` 0-based)."""

    name: str
    index: int | None = None
    item_field: str | None = None

    def __str__(self) -> str:
        if self.index is None:
            return self.name
        return f"{self.name}.{self.index}.{self.item_field}"


def parse_field_path(path: str) -> FieldPath:
    """Read ``"total"`` or ``"line_items.2.amount"``; :class:`ValueError` for anything else."""
    parts = str(path).strip().split(".")
    if len(parts) == 1 and parts[0]:
        return FieldPath(parts[0])
    if len(parts) == 3 and all(parts) and parts[1].isdigit():
        return FieldPath(parts[0], int(parts[1]), parts[2])
    raise ValueError(
        f"{path!r} is not a field path: give a field name ('total') or an array item's field "
        "('line_items.2.amount', items counted from 0)"
    )


def apply_corrections(
    data: Mapping[str, Any], corrections: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    """``data`` with each (field path, value) applied in order: the last one of a field wins.

    An item correction patches that item of the array (a copy: ``data`` is left as it was);
    one naming an item the array does not have is skipped.
    """
    patched = dict(data)
    for path, value in corrections:
        where = parse_field_path(path)
        if where.index is None:
            patched[where.name] = value
            continue
        items = patched.get(where.name)
        if not isinstance(items, list) or where.index >= len(items):
            continue
        items = list(items)
        item = items[where.index]
        items[where.index] = {
            **(item if isinstance(item, Mapping) else {}),
            where.item_field: value,
        }
        patched[where.name] = items
    return patched


def read_corrections(
    connection: Connection, document_ids: Sequence[int]
) -> dict[int, list[tuple[str, Any]]]:
    """Each document's corrections as (field path, new value), oldest first (one query)."""
    found: dict[int, list[tuple[str, Any]]] = {}
    if not document_ids:
        return found
    for row in connection.execute(_PAGE_CORRECTIONS, {"ids": list(document_ids)}):
        found.setdefault(row.document_id, []).append((row.field, row.new_value))
    return found


def iter_export_records(
    db: Database,
    selection: Selection,
    include_failed: bool,
    *,
    include_open: bool = False,
    with_evidence: bool = False,
    page_size: int = PAGE_SIZE,
) -> Iterator[ExportRecord]:
    """The selected documents in id order, each with its newest result, one page at a time.

    Records carry no schema: the export's columns come from :func:`combined_schema`, which
    covers every result of the selection. Evidence is read only when ``with_evidence``. Values
    are corrected (see :func:`apply_corrections`) unless the selection asks for ``originals``.
    """
    documents = (
        select(Document.id, Document.file_name, Document.batch_id, Document.status, Document.error)
        .where(
            selection.condition(),
            Document.status.in_(exported_statuses(include_failed, include_open)),
            Document.id > bindparam("last"),
        )
        .order_by(Document.id)
        .limit(page_size)
    )
    results_query = _PAGE_RESULTS_WITH_EVIDENCE if with_evidence else _PAGE_RESULTS
    last = 0
    while True:
        with db.connect() as connection:
            page = connection.execute(documents, {"last": last}).all()
            if not page:
                return
            ids = [d.id for d in page]
            results = {
                row.document_id: row  # ordered by id: the newest result of a document wins
                for row in connection.execute(results_query, {"ids": ids})
            }
            corrections = {} if selection.originals else read_corrections(connection, ids)
        for document in page:
            result = results.get(document.id)
            evidence: dict[str, Any] = {}
            if with_evidence and result is not None:
                evidence = json.loads(result.evidence) or {}
                evidence.pop(DOCUMENT_INFO_KEY, None)
            data = json.loads(result.data) if result is not None else {}
            if result is not None and document.id in corrections:
                data = apply_corrections(data, corrections[document.id])
            yield ExportRecord(
                document_id=document.id,
                file_name=document.file_name,
                batch_id=document.batch_id,
                status=document.status,
                error=document.error,
                data=data,
                confidence=result.confidence if result is not None else None,
                evidence=evidence,
            )
        last = page[-1].id
