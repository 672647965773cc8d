"""The row model of exports: extraction records in, flat typed rows out, in schema order.

Writers never see the database. They take :class:`ExportRecord` objects (one per document) and
turn them into rows here, lazily, so an export of any size holds one chunk at a time.

Three modes:

``normal``
    One row per document. Array fields stay whole: a list of flattened item dicts.
``multi-row``
    One row per item of one array field (``array_field``); the document's other columns repeat
    on each row and other arrays stay whole. A document whose array is empty or missing still
    gives one row, with empty item columns.
``sheets``
    The rows of ``normal`` mode, for Excel only: its writer puts the document columns on a
    ``Documents`` sheet and the flattened items of each array field on a sheet of their own,
    linked by ``document_id`` (see :class:`batchnb.formats.writers.ExcelWriter`).

Values are typed: money becomes two columns (``total`` with the amount and ``total_currency``),
dates become :class:`datetime.date` when they parse (writers of text formats write them back as
ISO strings), numbers and booleans stay numbers and booleans. A value of the wrong type (text in a
number field) is kept as it is, never dropped, except by Parquet whose typed columns cannot hold it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from batchnb.errors import ExportError

Mode = Literal["normal", "multi-row", "sheets"]
MODES: tuple[str, ...] = get_args(Mode)

ColumnKind = Literal["integer", "string", "number", "date", "boolean", "array", "object"]
"""How a column is typed. ``array`` holds a list of item dicts, ``object`` any JSON-able dict."""

FAILED_STATUS = "failed"

ITEM_SEPARATOR = "."
"""Item columns of multi-row mode are ``<array>.<sub-field>``: field names never hold a dot."""


@dataclass(frozen=True)
class ExportRecord:
    """One document as exports see it: its metadata and its newest extraction result.

    Parameters
    ----------
    data:
        Values by field name, as stored: money ``{"amount", "currency"}``, dates ISO strings,
        arrays lists of item dicts.
    schema:
        The :meth:`batchnb.extract.Schema.to_dict` form the values were extracted with; empty for
        a document that failed before extraction.
    evidence:
        Where each value was found, by field name (written only with ``include_confidence``).
    """

    document_id: int
    file_name: str
    batch_id: int
    status: str
    error: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    schema: Mapping[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """One output column. ``items`` lists the (already flattened) item columns of an array."""

    name: str
    kind: ColumnKind
    items: tuple[Column, ...] = ()


@dataclass(frozen=True)
class RowLayout:
    """The columns of an export and how to fill them from a record.

    ``array_field`` is the array expanded to one row per item (multi-row mode only); in the
    other modes every array column holds its items whole.
    """

    columns: tuple[Column, ...]
    fields: tuple[Mapping[str, Any], ...]
    mode: Mode
    array_field: str | None
    include_confidence: bool

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


DOCUMENT_COLUMNS: tuple[Column, ...] = (
    Column("document_id", "integer"),
    Column("file_name", "string"),
    Column("batch_id", "integer"),
    Column("status", "string"),
    Column("error", "string"),
)
CONFIDENCE_COLUMNS: tuple[Column, ...] = (
    Column("confidence", "number"),
    Column("evidence", "object"),
)


def field_columns(spec: Mapping[str, Any], prefix: str = "") -> list[Column]:
    """The columns one schema field becomes: money gives two, an array one (with its items)."""
    name = prefix + str(spec["name"])
    kind = spec.get("type", "string")
    if kind == "money":
        return [Column(name, "number"), Column(f"{name}_currency", "string")]
    if kind == "array":
        items = tuple(c for sub in spec.get("fields", ()) for c in field_columns(sub))
        return [Column(name, "array", items)]
    if kind in ("number", "date", "boolean"):
        return [Column(name, kind)]
    return [Column(name, "string")]


def build_layout(
    schema: Mapping[str, Any],
    mode: Mode = "normal",
    array_field: str | None = None,
    include_confidence: bool = False,
) -> RowLayout:
    """Columns in schema order for ``mode``; checks that ``array_field`` names an array field.

    ``array_field`` matters in multi-row mode only: normal and sheets modes keep every array
    whole in one column (the Excel writer of sheets mode moves those columns to sheets).

    Raises
    ------
    ExportError
        Unknown mode, or multi-row mode without a valid ``array_field`` (when the schema has
        exactly one array field it is chosen by default).
    """
    if mode not in MODES:
        raise ExportError(f"unknown export mode {mode!r}; use one of {', '.join(MODES)}")
    fields = tuple(schema.get("fields", ()))
    arrays = [str(spec["name"]) for spec in fields if spec.get("type") == "array"]
    if mode == "multi-row":
        if array_field is None and len(arrays) == 1:
            array_field = arrays[0]
        if array_field not in arrays:
            choices = ", ".join(arrays) or "none in this schema"
            raise ExportError(
                f"multi-row mode needs array_field= naming an array field ({choices}); "
                f"got {array_field!r}"
            )
    else:
        array_field = None
    columns = list(DOCUMENT_COLUMNS)
    for spec in fields:
        if spec["name"] == array_field:
            prefix = f"{array_field}{ITEM_SEPARATOR}"
            columns.extend(c for sub in spec.get("fields", ()) for c in field_columns(sub, prefix))
        else:
            columns.extend(field_columns(spec))
    if include_confidence:
        columns.extend(CONFIDENCE_COLUMNS)
    return RowLayout(tuple(columns), fields, mode, array_field, include_confidence)


def select_records(records: Iterable[ExportRecord], include_failed: bool) -> Iterator[ExportRecord]:
    """The records to export: failed documents only when ``include_failed``."""
    for record in records:
        if include_failed or record.status != FAILED_STATUS:
            yield record


def iter_rows(records: Iterable[ExportRecord], layout: RowLayout) -> Iterator[dict[str, Any]]:
    """Flat typed rows for ``layout``, one record at a time (one or more rows per record).

    Raises
    ------
    ExportError
        A record was extracted with a field the layout has no column for: its values would be
        lost silently, so the export stops and asks for a schema that covers every record.
    """
    known = {str(spec["name"]) for spec in layout.fields}
    for record in records:
        fields = record.schema.get("fields") if record.schema else None
        if fields and list(fields) != list(layout.fields):
            extra = [str(spec["name"]) for spec in fields if spec["name"] not in known]
            if extra:
                raise ExportError(
                    f"document {record.document_id} has fields {', '.join(extra)} that the export "
                    "schema lacks; pass schema= with every field of the exported documents"
                )
        yield from record_rows(record, layout)


def record_rows(record: ExportRecord, layout: RowLayout) -> Iterator[dict[str, Any]]:
    """The rows of one record: one per array item in multi-row mode, else exactly one."""
    row: dict[str, Any] = {
        "document_id": record.document_id,
        "file_name": record.file_name,
        "batch_id": record.batch_id,
        "status": record.status,
        "error": record.error,
    }
    for spec in layout.fields:
        name = str(spec["name"])
        if name == layout.array_field:
            prefix = f"{name}{ITEM_SEPARATOR}"
            # Placeholders keep the item columns at the array's place in the row's key order.
            row.update(
                dict.fromkeys(c.name for sub in spec["fields"] for c in field_columns(sub, prefix))
            )
            continue
        flatten_value(spec, record.data.get(name), row)
    if layout.include_confidence:
        row["confidence"] = _number(record.confidence)
        row["evidence"] = dict(record.evidence) if record.evidence else None
    if layout.array_field is None:
        yield row
        return
    items = record.data.get(layout.array_field)
    array_spec = next(spec for spec in layout.fields if spec["name"] == layout.array_field)
    if not isinstance(items, list) or not items:
        yield row
        return
    for item in items:
        item_row = dict(row)
        values = item if isinstance(item, Mapping) else {}
        prefix = f"{layout.array_field}{ITEM_SEPARATOR}"
        for sub in array_spec.get("fields", ()):
            flatten_value(sub, values.get(sub["name"]), item_row, prefix)
        yield item_row


def flatten_value(
    spec: Mapping[str, Any], value: Any, row: dict[str, Any], prefix: str = ""
) -> None:
    """Put one field's typed value(s) into ``row`` under its column name(s)."""
    name = prefix + str(spec["name"])
    kind = spec.get("type", "string")
    if kind == "money":
        if isinstance(value, Mapping):
            row[name] = _number(value.get("amount"))
            row[f"{name}_currency"] = value.get("currency")
        else:
            row[name] = _number(value)
            row[f"{name}_currency"] = None
    elif kind == "array":
        row[name] = _items(spec, value)
    elif kind == "number":
        row[name] = _number(value)
    elif kind == "date":
        row[name] = to_date(value)
    else:
        row[name] = value


def _items(spec: Mapping[str, Any], value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        return value  # kept as stored rather than dropped
    items = []
    for item in value:
        flat: dict[str, Any] = {}
        values = item if isinstance(item, Mapping) else {}
        for sub in spec.get("fields", ()):
            flatten_value(sub, values.get(sub["name"]), flat)
        items.append(flat)
    return items


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinity have no place in JSON, CSV readers or Excel
    return value


def to_date(value: Any) -> Any:
    """A :class:`datetime.date` from an ISO date (or date-time) string; other values unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        return value


def chunked(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` items, consuming ``rows`` lazily."""
    if size < 1:
        raise ExportError(f"chunk_size must be at least 1, got {size}")
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
