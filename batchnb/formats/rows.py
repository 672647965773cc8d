"""The row model of exports: extraction records in, flat typed rows out, in schema order.

Writers never see the database. They take :class:`ExportRecord` objects (one per document) and
turn them into rows here, lazily, so an export of any size holds one chunk at a time.

Three modes:

``normal``
    One row per document. Array fields stay whole: a list of flattened item dicts.
``multi-row``
    One row per item of one array field (``array_field``); the document's other columns repeat
    on each row and other arrays stay whole. A document whose array is empty or missing still
    gives one row, with empty item columns. A schema without any array field has no items to
    expand: each document is one row, as in ``normal`` mode.
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
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
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

    @cached_property
    def empty_row(self) -> dict[str, Any]:
        """Every column, empty, in column order: each row starts as a copy of it.

        Rows therefore keep the column order (the key order JSON writes), item columns of
        multi-row mode included, whatever order their values are filled in.
        """
        return dict.fromkeys(self.names)

    @cached_property
    def flatteners(self) -> tuple[Flattener, ...]:
        """One compiled flattener per field, the array expanded by multi-row mode excepted."""
        return tuple(flattener(s) for s in self.fields if str(s["name"]) != self.array_field)

    @cached_property
    def item_flatteners(self) -> tuple[Flattener, ...]:
        """Multi-row mode: the flatteners of the expanded array's item columns."""
        prefix = f"{self.array_field}{ITEM_SEPARATOR}"
        return tuple(
            flattener(sub, prefix)
            for spec in self.fields
            if str(spec["name"]) == self.array_field
            for sub in spec.get("fields", ())
        )


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
        Unknown mode, or multi-row mode with an ``array_field`` that is not an array field, or
        without one when the schema has several (with exactly one it is chosen by default; with
        none every document is one row).
    """
    if mode not in MODES:
        raise ExportError(f"unknown export mode {mode!r}; use one of {', '.join(MODES)}")
    fields = tuple(schema.get("fields", ()))
    arrays = [str(spec["name"]) for spec in fields if spec.get("type") == "array"]
    if mode == "multi-row":
        if array_field is None and len(arrays) == 1:
            array_field = arrays[0]
        if array_field is None and len(arrays) > 1:
            raise ExportError(
                f"multi-row mode expands one array field and this schema has several: choose "
                f"one with array_field= ({', '.join(arrays)})"
            )
        if array_field is not None and array_field not in arrays:
            choices = ", ".join(arrays) or "none in this schema"
            raise ExportError(
                f"array_field= must name an array field ({choices}); got {array_field!r}"
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
    checked: Any = None  # records usually share one schema object: it is checked once
    for record in records:
        fields = record.schema.get("fields") if record.schema else None
        if fields and fields is not checked:
            extra = [str(spec["name"]) for spec in fields if spec["name"] not in known]
            if extra:
                raise ExportError(
                    f"document {record.document_id} has fields {', '.join(extra)} that the export "
                    "schema lacks; pass schema= with every field of the exported documents"
                )
            checked = fields
        yield from record_rows(record, layout)


def record_rows(record: ExportRecord, layout: RowLayout) -> Iterator[dict[str, Any]]:
    """The rows of one record: one per array item in multi-row mode, else exactly one."""
    row = layout.empty_row.copy()
    row["document_id"] = record.document_id
    row["file_name"] = record.file_name
    row["batch_id"] = record.batch_id
    row["status"] = record.status
    row["error"] = record.error
    data = record.data
    for flatten in layout.flatteners:
        flatten(data, row)
    if layout.include_confidence:
        row["confidence"] = _number(record.confidence)
        row["evidence"] = dict(record.evidence) if record.evidence else None
    items = data.get(layout.array_field) if layout.array_field is not None else None
    if not isinstance(items, list) or not items:
        yield row  # normal mode, or no items: one row (with empty item columns)
        return
    for item in items:
        item_row = row.copy()
        values = item if type(item) is dict or isinstance(item, Mapping) else {}
        for flatten in layout.item_flatteners:
            flatten(values, item_row)
        yield item_row


Flattener = Callable[[Mapping[str, Any], dict[str, Any]], None]
"""Reads one field from a record's values and puts its typed value(s) into a row."""


def flattener(spec: Mapping[str, Any], prefix: str = "") -> Flattener:
    """The flattener of one schema field, compiled once per export rather than per value.

    Its columns are those of :func:`field_columns`: money gives an amount and a currency,
    numbers drop NaN and infinity, dates become :class:`datetime.date` when they parse, arrays
    a list of flattened item dicts; other values are kept as stored.
    """
    key = str(spec["name"])
    name = prefix + key
    kind = spec.get("type", "string")
    if kind == "money":
        currency = f"{name}_currency"

        def put_money(values: Mapping[str, Any], row: dict[str, Any]) -> None:
            value = values.get(key)
            if type(value) is dict or isinstance(value, Mapping):
                row[name] = _number(value.get("amount"))
                row[currency] = value.get("currency")
            else:
                row[name] = _number(value)
                row[currency] = None

        return put_money
    if kind == "array":
        items = tuple(flattener(sub) for sub in spec.get("fields", ()))

        def put_items(values: Mapping[str, Any], row: dict[str, Any]) -> None:
            row[name] = _flat_items(values.get(key), items)

        return put_items
    convert = {"number": _number, "date": to_date}.get(kind)
    if convert is not None:

        def put_converted(values: Mapping[str, Any], row: dict[str, Any]) -> None:
            row[name] = convert(values.get(key))

        return put_converted

    def put_value(values: Mapping[str, Any], row: dict[str, Any]) -> None:
        row[name] = values.get(key)

    return put_value


def _flat_items(value: Any, items: tuple[Flattener, ...]) -> Any:
    """An array's items as flat dicts (an item that is not an object gives empty columns)."""
    if not isinstance(value, list):
        return value  # None, or a value kept as stored rather than dropped
    flat_items = []
    for item in value:
        values = item if type(item) is dict or isinstance(item, Mapping) else {}
        flat: dict[str, Any] = {}
        for flatten in items:
            flatten(values, flat)
        flat_items.append(flat)
    return flat_items


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


def chunked(rows: Iterable[Any], size: int) -> Iterator[Iterator[Any]]:
    """Chunks of at most ``size`` items of ``rows``, each an iterator consumed in turn.

    A chunk is never gathered in a list here: a writer that streams its rows lets each die as
    soon as it is written, instead of keeping ``size`` of them alive for Python's cyclic garbage
    collector to scan again and again (a writer that needs them together, such as Parquet's,
    makes the list itself). A chunk left unfinished leaves its rows to the next one.
    """
    if size < 1:
        raise ExportError(f"chunk_size must be at least 1, got {size}")
    iterator = iter(rows)
    for first in iterator:
        yield itertools.chain((first,), itertools.islice(iterator, size - 1))
