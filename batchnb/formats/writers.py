"""Streaming export writers: JSON, JSON Lines, CSV, Excel and Parquet with constant memory.

:func:`write` is the entry point. It turns records into rows (:mod:`batchnb.formats.rows`) and
hands them to one :class:`Writer` per format in chunks of ``chunk_size`` rows, so peak memory does
not grow with the number of documents: an export of a million rows must fit where one of a
hundred does. A chunk is an iterator: the row
formats write each row as it comes and keep none, Parquet gathers a chunk into an Arrow record
batch. Rows that die as soon as they are written also spare Python's cyclic garbage collector,
which otherwise scans every row still held, again and again. Each writer writes to a hidden
``.part`` file beside ``path`` and moves it into place only when complete: a failed export never
leaves a half-written file under the requested name.

Every format takes the modes ``normal`` and ``multi-row``; Excel also takes ``sheets`` (a
``Documents`` sheet plus one sheet per array field, linked by ``document_id``).
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, get_args

from batchnb.errors import ExportError
from batchnb.formats.arrow import arrow_array, arrow_type
from batchnb.formats.cells import (
    CSV_AS_IS,
    XLSX_AS_IS,
    json_text,
    neutralise,
    sheet_title,
    text_cell,
    xlsx_cell,
)
from batchnb.formats.rows import (
    MODES,
    ExportRecord,
    Mode,
    RowLayout,
    build_layout,
    chunked,
    iter_rows,
    select_records,
)

Format = Literal["json", "jsonl", "csv", "xlsx", "parquet"]
FORMATS: tuple[str, ...] = get_args(Format)

EXCEL_MAX_ROWS = 1_048_576
"""Rows of one Excel sheet, header included; past it the export continues on a new sheet."""
PARQUET_ROW_GROUP_ROWS = 8_192
"""Rows gathered before a Parquet row group is written (whole chunks: a group may hold a few
more). One group is held in memory, so it sets the writer's peak. Measured on 100,000 invoices:
a group per 1,000-row chunk nearly doubled the file and let memory grow with the export; 16,384
rows saved 6-13% of the file, but a normal-mode peak then still rose by 10 MB from 10,000 to
100,000 documents; 65,536 rows doubled the peak."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: data rows (headers excluded) and the file size in bytes.

    In Excel's sheets mode ``rows`` counts the rows of every sheet: documents and items.
    """

    rows: int
    bytes: int


class Writer:
    """Base class of the format writers: open a file, take chunks of rows, close.

    Subclasses set :attr:`format` (and :attr:`modes` when they take more than the common ones)
    and implement :meth:`open`, :meth:`write_rows` and :meth:`close`. Rows are dicts holding
    every column of the layout, keyed by name, as :func:`iter_rows` makes them.
    """

    format: ClassVar[str]
    modes: ClassVar[tuple[str, ...]] = ("normal", "multi-row")

    def __init__(self, path: Path, layout: RowLayout) -> None:
        self.path = path
        self.layout = layout
        self.rows = 0

    def open(self) -> None:
        """Create the file and write any header."""
        raise NotImplementedError

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Write one chunk of rows, an iterator to consume as it is written."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (footer, sheet, metadata) and release it."""
        raise NotImplementedError


class JSONWriter(Writer):
    """A JSON array of row objects, written one object at a time; arrays stay nested."""

    format = "json"

    def open(self) -> None:
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self._file.write("[")

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._file.write((",\n" if self.rows else "\n") + json_text(row))
            self.rows += 1

    def close(self) -> None:
        self._file.write("\n]\n" if self.rows else "]\n")
        self._file.close()


class JSONLinesWriter(Writer):
    """One JSON object per line."""

    format = "jsonl"

    def open(self) -> None:
        self._file: IO[str] = self.path.open("w", encoding="utf-8")

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._file.write(json_text(row) + "\n")
            self.rows += 1

    def close(self) -> None:
        self._file.close()


class CSVWriter(Writer):
    """CSV (UTF-8, Excel dialect) with neutralised formulas; arrays as JSON text."""

    format = "csv"

    def open(self) -> None:
        self._file: IO[str] = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.layout.names)
        self._values = _row_values(self.layout.names)

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for values in map(self._values, rows):
            self._writer.writerow(
                [value if type(value) in CSV_AS_IS else text_cell(value) for value in values]
            )
            self.rows += 1

    def close(self) -> None:
        self._file.close()


class ExcelWriter(Writer):
    """An .xlsx workbook through openpyxl's write-only mode, with typed cells.

    Numbers, dates and booleans keep their type; text is neutralised against formulas and cut
    at Excel's 32,767 characters with a visible marker. A sheet holds at most
    :data:`EXCEL_MAX_ROWS` rows (header included); the rest continue on "Documents (2)", ...

    In sheets mode the array columns leave the ``Documents`` sheet: each array field gets a sheet
    named after it, with ``document_id`` and the item columns, one row per item (a document with
    no items has none there). An array value that is not a list has no place on either sheet and
    is left out, as Parquet does. Every sheet is a write-only stream to its own temporary file,
    so appending to several in turn keeps memory constant.
    """

    format = "xlsx"
    modes = MODES

    def open(self) -> None:
        from openpyxl import Workbook

        self._workbook = Workbook(write_only=True)
        titles: set[str] = set()
        columns = self.layout.columns
        # Sheets mode moves each array to sheets of its own; the other modes keep it in a cell.
        arrays = [c for c in columns if c.kind == "array"] if self.layout.mode == "sheets" else []
        self._names = [column.name for column in columns if column not in arrays]
        self._values = _row_values(self._names)
        base = self.layout.array_field or "Documents"
        self._documents = _SheetSeries(self._workbook, base, self._names, titles)
        self._arrays = [
            (
                column,
                _SheetSeries(
                    self._workbook,
                    column.name,
                    ["document_id", *(item.name for item in column.items)],
                    titles,
                ),
            )
            for column in arrays
        ]

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._documents.append(_xlsx_cells(self._values(row)))
            self.rows += 1
            for column, series in self._arrays:
                items = row.get(column.name)
                if not isinstance(items, list):
                    continue
                for item in items:
                    cells = _xlsx_cells(item.get(c.name) for c in column.items)
                    series.append([row["document_id"], *cells])
                    self.rows += 1

    def close(self) -> None:
        self._workbook.save(self.path)


def _xlsx_cells(values: Iterable[Any]) -> list[Any]:
    """Excel cells of ``values``; numbers, dates, booleans and ``None`` pass untouched."""
    return [value if type(value) in XLSX_AS_IS else xlsx_cell(value) for value in values]


class _SheetSeries:
    """One table of a write-only workbook, continued on "<base> (2)", ... past the row limit.

    A continuation sheet is placed right after the table's previous sheet, so the parts of one
    table stay together however the tables are interleaved.
    """

    def __init__(self, workbook: Any, base: str, header: list[str], titles: set[str]) -> None:
        self._workbook = workbook
        self._base = base
        self._header = [neutralise(name) for name in header]
        self._titles = titles
        self._count = 0
        self._sheet: Any = None
        self._sheet_rows = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._count += 1
        title = sheet_title(self._base, self._count, self._titles)
        self._titles.add(title.lower())
        index = None if self._sheet is None else self._workbook.index(self._sheet) + 1
        self._sheet = self._workbook.create_sheet(title, index)
        self._sheet.append(self._header)
        self._sheet_rows = 1

    def append(self, cells: list[Any]) -> None:
        """Add one row, on a new sheet when the current one is full."""
        if self._sheet_rows >= EXCEL_MAX_ROWS:
            self._new_sheet()
        self._sheet.append(cells)
        self._sheet_rows += 1


class ParquetWriter(Writer):
    """Parquet through pyarrow, typed from the batchnb schema, in row groups of
    :data:`PARQUET_ROW_GROUP_ROWS` rows.

    Each chunk becomes a record batch at once (Arrow holds it far smaller than the rows);
    batches are written as one row group when enough have gathered. Small row groups would make
    the file larger and slower to write, and the writer's metadata would grow with their number.
    """

    format = "parquet"

    def open(self) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        self._pa = pa
        self._schema = pa.schema([(c.name, arrow_type(pa, c)) for c in self.layout.columns])
        self._writer = pq.ParquetWriter(str(self.path), self._schema)
        self._values = _row_values(self.layout.names)
        self._batches: list[Any] = []
        self._batched_rows = 0

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        chunk = list(rows)
        by_column = zip(*map(self._values, chunk), strict=True)
        arrays = [
            arrow_array(self._pa, list(values), column, field.type)
            for values, column, field in zip(
                by_column, self.layout.columns, self._schema, strict=True
            )
        ]
        self._batches.append(self._pa.record_batch(arrays, schema=self._schema))
        self._batched_rows += len(chunk)
        self.rows += len(chunk)
        if self._batched_rows >= PARQUET_ROW_GROUP_ROWS:
            self._write_row_group()

    def _write_row_group(self) -> None:
        table = self._pa.Table.from_batches(self._batches, schema=self._schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._batches = []
        self._batched_rows = 0

    def close(self) -> None:
        if self._batches:
            self._write_row_group()
        self._writer.close()


def _row_values(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function from a row to the tuple of its values of ``names``, in that order.

    Every layout has the document columns, so ``names`` holds more than one name (for a single
    one ``itemgetter`` would give a bare value) and rows from :func:`iter_rows` hold them all.
    """
    return itemgetter(*names)


WRITERS: dict[str, type[Writer]] = {
    cls.format: cls for cls in (JSONWriter, JSONLinesWriter, CSVWriter, ExcelWriter, ParquetWriter)
}


def writer_for(fmt: Format | str, mode: Mode | str) -> type[Writer]:
    """The writer class of ``fmt``, after checking that it can write ``mode``.

    Raises
    ------
    ExportError
        Unknown format, or a mode the format cannot take (``sheets`` is Excel's only).
    """
    writer_class = WRITERS.get(str(fmt))
    if writer_class is None:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if mode in MODES and mode not in writer_class.modes:
        able = ", ".join(name for name, cls in WRITERS.items() if mode in cls.modes)
        raise ExportError(
            f"mode {mode!r} needs format {able}; for {fmt} use mode='multi-row' with "
            "array_field= (one row per array item) or mode='normal'"
        )
    return writer_class


def write(
    records: Iterable[ExportRecord],
    fmt: Format | str,
    path: str | os.PathLike[str],
    *,
    mode: Mode = "normal",
    array_field: str | None = None,
    include_failed: bool = False,
    include_confidence: bool = False,
    chunk_size: int = 1000,
    schema: Mapping[str, Any] | None = None,
) -> ExportSummary:
    """Write ``records`` to ``path`` as ``fmt``, streaming, and say how much was written.

    Parameters
    ----------
    records:
        Any iterable, typically a database cursor: it is consumed once, ``chunk_size`` rows at a
        time, never held whole.
    fmt:
        ``json``, ``jsonl``, ``csv``, ``xlsx`` or ``parquet``.
    mode, array_field:
        ``normal`` (one row per document), ``multi-row`` (one row per item of ``array_field``;
        optional when the schema has a single array field) or, for ``xlsx`` only, ``sheets``
        (a ``Documents`` sheet plus one sheet per array field, linked by ``document_id``).
    include_failed:
        Also export documents whose status is ``failed`` (their field columns are empty).
    include_confidence:
        Add the document's ``confidence`` and its ``evidence`` (where each value was found).
    schema:
        The ``Schema.to_dict()`` form fixing the columns; by default the schema of the first
        exported document that has one. A document with fields outside it stops the export.

    Raises
    ------
    ExportError
        Unknown format or mode, a mode the format cannot take, a bad ``array_field``, or
        records the schema does not cover.
    """
    writer_class = writer_for(fmt, mode)
    if chunk_size < 1:
        raise ExportError(f"chunk_size must be at least 1, got {chunk_size}")
    selected = select_records(records, include_failed)
    if schema is None:
        schema, selected = _first_schema(selected)
    layout = build_layout(schema, mode, array_field, include_confidence)
    target = Path(path)
    partial = target.with_name(f".{target.name}.part")
    writer = writer_class(partial, layout)
    try:
        writer.open()
        try:
            for chunk in chunked(iter_rows(selected, layout), chunk_size):
                writer.write_rows(chunk)
        finally:
            writer.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportSummary(rows=writer.rows, bytes=target.stat().st_size)


def _first_schema(
    records: Iterator[ExportRecord],
) -> tuple[Mapping[str, Any], Iterator[ExportRecord]]:
    """The first schema with fields, and the records again (those read so far put back).

    Only documents that failed before extraction come before it, so the look-ahead is short.
    """
    head: list[ExportRecord] = []
    for record in records:
        head.append(record)
        if record.schema and record.schema.get("fields"):
            return record.schema, itertools.chain(head, records)
    return {"fields": []}, iter(head)
